/** An edge (test/http/helpers.ts fixture) with its console, a cookie jar and form helpers. */
import assert from "node:assert/strict";
import { totpAt } from "../../../src/identity/totp.ts";
import { createEdgeConsole } from "../../../src/http/console/edge_console.tsx";
import { fixture } from "../helpers.ts";

/** An edge fixture with its console and a logged-in cookie jar. */
export async function consoleFixture() {
  const f = await fixture({ sseKeepaliveMs: 50 });
  const ui = createEdgeConsole({
    api: f.app,
    notifier: f.notifier,
    clock: f.clock,
    sseKeepaliveMs: 50,
  });
  const jar = new Map<string, string>();
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const keep = (res: Response) => {
    for (const sc of res.headers.getSetCookie()) {
      const [pair] = sc.split(";");
      const i = pair.indexOf("=");
      const v = pair.slice(i + 1);
      if (v === "" || /max-age=0/i.test(sc)) jar.delete(pair.slice(0, i));
      else jar.set(pair.slice(0, i), v);
    }
    return res;
  };
  const get = async (path: string, headers: Record<string, string> = {}) =>
    keep(await ui.request(path, { headers: { cookie: cookieHeader(), ...headers } }));
  const post = async (path: string, form: Record<string, string>) =>
    keep(
      await ui.request(path, {
        method: "POST",
        headers: {
          cookie: cookieHeader(),
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams(form).toString(),
      }),
    );
  const login = async () => {
    const u = f.store.users.byUsername("root")!;
    const res = await post("/login", {
      username: "root",
      password: "correct horse battery",
      totp: totpAt(u.totpSecret, f.clock.now()),
      next: "/",
    });
    assert.equal(res.status, 303);
    assert.ok(jar.has("pc_session"), "login sets the session cookie");
  };
  const csrf = async () => {
    const html = await (await get("/")).text();
    const m = /name="_csrf" value="([^"]+)"/.exec(html);
    assert.ok(m, "pages carry the CSRF token");
    return m[1];
  };
  return { ...f, ui, jar, get, post, login, csrf };
}
