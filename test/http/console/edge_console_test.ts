import assert from "node:assert/strict";
import { consoleFixture } from "./edge_fixture.ts";

/** Reads a stream until it ends; false if it is still open after `ms`. */
async function endsWithin(body: ReadableStream<Uint8Array>, ms: number): Promise<boolean> {
  const reader = body.getReader();
  const deadline = Date.now() + ms;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    while (Date.now() < deadline) {
      const r = await Promise.race([
        reader.read(),
        new Promise<"timeout">((res) =>
          timer = setTimeout(() => res("timeout"), deadline - Date.now())
        ),
      ]);
      clearTimeout(timer);
      if (r === "timeout") return false;
      if (r.done) return true;
    }
    return false;
  } finally {
    clearTimeout(timer);
    void reader.cancel().catch(() => {});
  }
}

Deno.test("edge console: the live events stream ends at logout", async () => {
  const f = await consoleFixture();
  await f.login();
  const token = await f.csrf();
  const res = await f.get("/events");
  assert.equal(res.status, 200);
  const [a, b] = res.body!.tee();
  assert.equal(await endsWithin(a, 150), false, "open while the session lives");
  const out = await f.post("/logout", { _csrf: token });
  assert.equal(out.status, 303);
  assert.equal(await endsWithin(b, 2000), true, "closed after logout");
});

Deno.test("edge console: pages need a session and redirect to the login form", async () => {
  const f = await consoleFixture();
  for (const path of ["/", "/devices", "/keys", "/users", "/notifications", "/audit", "/support"]) {
    const res = await f.get(path);
    assert.equal(res.status, 303, path);
    assert.match(res.headers.get("location")!, /^\/login\?next=/);
  }
  const login = await f.get("/login");
  assert.equal(login.status, 200);
  const html = await login.text();
  assert.match(html, /<label for="totp">One-time code<\/label>/);
  assert.match(html, /Content-Security-Policy|<!DOCTYPE html>/);
  assert.equal(login.headers.get("x-frame-options"), "DENY");
});

Deno.test("edge console: a wrong code is refused and a right one logs in", async () => {
  const f = await consoleFixture();
  const bad = await f.post("/login", {
    username: "root",
    password: "correct horse battery",
    totp: "000000",
  });
  assert.equal(bad.status, 401);
  assert.match(await bad.text(), /Wrong username, password or one-time code/);
  assert.equal(f.jar.has("pc_session"), false);
  await f.login();
  const dash = await f.get("/");
  assert.equal(dash.status, 200);
  const html = await dash.text();
  assert.match(html, /Devices enrolled/);
  assert.match(html, /root/);
});

Deno.test("edge console: dashboard and devices show enrolled devices from the API", async () => {
  const f = await consoleFixture();
  await f.login();
  const a = await f.enroll({ hostname: "alpha", connectorVersion: "0.1.0", os: "linux" });
  await f.enroll({ hostname: "beta", connectorVersion: "0.2.0", os: "windows" });
  const dash = await (await f.get("/")).text();
  assert.match(dash, /id="fleet-stats"/);
  assert.match(dash, />2<\/div>/); // enrolled
  assert.match(dash, /alpha<\/strong>/, "alpha runs an outdated connector");
  assert.match(dash, /windows/);
  const list = await (await f.get("/devices")).text();
  assert.match(list, /alpha/);
  assert.match(list, /beta/);
  const table = await f.get("/devices/table");
  assert.doesNotMatch(await table.text(), /<!DOCTYPE/);
  const detail = await (await f.get(`/devices/${a.json.deviceId}`)).text();
  assert.match(detail, /Hardware fingerprint/);
  assert.ok(detail.includes(f.store.devices.byId(a.json.deviceId)!.fingerprint));
});

Deno.test("edge console: disable, enable and delete go through the API with CSRF", async () => {
  const f = await consoleFixture();
  await f.login();
  const a = await f.enroll({ hostname: "gamma" });
  const id = a.json.deviceId;
  const token = await f.csrf();
  const forged = await f.post(`/devices/${id}/disable`, { _csrf: "wrong" });
  assert.equal(forged.status, 200);
  assert.match(await forged.text(), /too old or came from elsewhere/);
  assert.equal(f.store.devices.byId(id)!.disabled, false);

  const dis = await f.post(`/devices/${id}/disable`, { _csrf: token });
  assert.equal(dis.status, 303);
  assert.equal(f.store.devices.byId(id)!.disabled, true);
  assert.ok(f.store.audit.list({}).some((e) => e.action === "device.disable"));
  const en = await f.post(`/devices/${id}/enable`, { _csrf: token });
  assert.equal(en.status, 303);
  assert.equal(f.store.devices.byId(id)!.disabled, false);
  const confirm = await (await f.get(`/devices/${id}/delete`)).text();
  assert.match(confirm, /id="confirm-delete"/);
  const del = await f.post(`/devices/${id}/delete`, { _csrf: token });
  assert.equal(del.headers.get("location"), "/devices?msg=device_deleted");
  assert.equal(f.store.devices.byId(id), undefined);
});

Deno.test("edge console: enrolment keys are shown once and can be revoked", async () => {
  const f = await consoleFixture();
  await f.login();
  const token = await f.csrf();
  const res = await f.post("/keys", {
    _csrf: token,
    expires: "7d",
    group: "branch",
    reusable: "on",
  });
  assert.equal(res.status, 201);
  const html = await res.text();
  const m = /id="new-key"[^>]*>(pc1\.[A-Za-z0-9_-]+)</.exec(html);
  assert.ok(m, "the new key is on the page");
  const keys = f.store.enrollmentKeys.list();
  assert.equal(keys.length, 1);
  assert.equal(keys[0].reusable, true);
  assert.equal(keys[0].group, "branch");
  const list = await (await f.get("/keys")).text();
  assert.ok(!list.includes(m[1]), "the key is not shown again");
  const bad = await f.post("/keys", { _csrf: token, group: "no spaces" });
  assert.equal(bad.status, 400);
  const rev = await f.post(`/keys/${keys[0].id}/revoke`, { _csrf: token });
  assert.equal(rev.status, 303);
  assert.notEqual(f.store.enrollmentKeys.byId(keys[0].id)!.revokedAt, null);
});

Deno.test("edge console: users, notifications, audit and support pages render", async () => {
  const f = await consoleFixture();
  await f.login();
  const token = await f.csrf();
  const created = await f.post("/users", {
    _csrf: token,
    username: "bob",
    password: "a long enough password",
    role: "user",
  });
  assert.equal(created.status, 201);
  assert.match(await created.text(), /otpauth:\/\//);
  await f.enroll({ hostname: "delta" });
  const notes = await (await f.get("/notifications?type=device_enrolled")).text();
  assert.match(notes, /Device “delta” enrolled\./);
  const audit = await (await f.get("/audit")).text();
  assert.match(audit, /auth\.login/);
  assert.match(audit, /user\.create/);
  const support = await (await f.get("/support")).text();
  assert.match(support, /No support requests/);
  assert.match(support, /id="export-diagnostics"[^>]*href="\/support\/diagnostics"/);
  const zip = await f.get("/support/diagnostics");
  assert.equal(zip.status, 200);
  assert.equal(zip.headers.get("content-type"), "application/zip");
  assert.match(zip.headers.get("content-disposition") ?? "", /portcullis-edge-.*\.zip/);
  const bytes = new Uint8Array(await zip.arrayBuffer());
  assert.deepEqual([...bytes.subarray(0, 2)], [0x50, 0x4b]);
});

Deno.test("edge console: language follows Accept-Language and the switcher cookie", async () => {
  const f = await consoleFixture();
  const de = await (await f.get("/login", { "accept-language": "de-DE,de;q=0.9,en;q=0.5" })).text();
  assert.match(de, /<html lang="de">/);
  const sw = await f.get("/lang?lang=fr&next=/login");
  assert.equal(sw.status, 303);
  assert.equal(sw.headers.get("location"), "/login");
  const fr = await (await f.get("/login", { "accept-language": "de" })).text();
  assert.match(fr, /<html lang="fr">/);
  const evil = await f.get("/lang?lang=en&next=//evil.example/");
  assert.equal(evil.headers.get("location"), "/");
});
