/**
 * Signing-key rotation at a real IdP (`oidc-provider` under Node), signed
 * in through Chromium each time. What openid-client does was read in its
 * oauth4webapi layer and is checked here, not assumed: it caches the IdP's
 * JWKS, and on an ID token whose `kid` it does not know it fetches the JWKS
 * again — but only once its copy is at least 60 s old. So:
 * - two sign-ins with the same key fetch the JWKS once;
 * - right after an abrupt rotation (within that minute), a token signed by
 *   the new key is refused (`oidc_signature_invalid`, audited);
 * - a minute later (the clocks of this process, the edge and the IdP all
 *   moved ahead), the new key's token is accepted after a second fetch;
 * - a token signed by a key the IdP no longer publishes is refused with the
 *   code and a sentence, an audit entry, and no sign-in, after a fetch.
 */
import assert from "node:assert/strict";
import { setLogSinks } from "../../src/log.ts";
import { hasChromium, openBrowser } from "../e2e/browser.ts";
import { fixture } from "../http/helpers.ts";
import { nodeAvailable, OidcIdp } from "./oidc_idp.ts";

setLogSinks([]);

const SECRET = "jwks-client-secret-0123456789abcd";

Deno.test({
  name: "oidc key rotation: the JWKS is fetched again for a new kid; an unpublished key is refused",
  ignore: !hasChromium || !nodeAvailable(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // This process's clock, injected: openid-client reads Date.now for the JWKS cache age.
    const realNow = Date.now;
    let shift = 0;
    Date.now = () => realNow() + shift;
    const edge = await fixture({ clockStart: Date.now() });
    const sync = setInterval(() => edge.clock.setWall(Date.now()), 20);
    const edgeServer = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req, info) => edge.app.fetch(req, { remoteAddr: info.remoteAddr }),
    );
    const E = `http://127.0.0.1:${edgeServer.addr.port}`;
    const back = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () =>
        new Response("<!doctype html><p id=done>signed in</p>", {
          headers: { "content-type": "text/html" },
        }),
    );
    const RETURN = `http://127.0.0.1:${back.addr.port}/signin/done`;
    try {
      await using idp = await OidcIdp.start({
        clients: [{
          client_id: "portcullis-edge",
          client_secret: SECRET,
          redirect_uris: [`${E}/api/v1/signin/oidc/callback`],
          grant_types: ["authorization_code"],
          response_types: ["code"],
        }],
      });
      const created = await edge.adminReq("POST", "/api/v1/admin/identity-providers", {
        name: "Corp",
        kind: "oidc",
        domains: ["corp.example"],
        oidc: { issuer: idp.issuer, clientId: "portcullis-edge", clientSecret: SECRET },
      });
      assert.equal(created.status, 201, await created.text());
      /** A minute passes for this process, the edge and the IdP alike. */
      const minutePasses = async () => {
        shift += 61_000;
        await idp.setClockOffset(shift);
        edge.clock.setWall(Date.now());
      };
      await using b = await openBrowser();
      const { page } = b;
      const signIns = () => edge.store.userSignIns.forUser(anaId()).length;
      const anaId = () => edge.store.users.byUsername("ana@corp.example")?.id ?? "";

      /** One code-flow sign-in in Chromium: the callback's status and, when refused, its error. */
      const signIn = async (): Promise<{ status: number; code?: string; message?: string }> => {
        await b.context.clearCookies();
        await page.goto(
          `${E}/api/v1/signin/start?email=ana%40corp.example&return=${
            encodeURIComponent(RETURN)
          }&state=jwks-state-0123456789`,
        );
        await page.waitForSelector("#login");
        await page.fill("#login", "ana@corp.example");
        await page.fill("#password", "ana-password-1");
        const [callback] = await Promise.all([
          page.waitForResponse((r) => r.url().includes("/api/v1/signin/oidc/callback")),
          page.click("#submit"),
        ]);
        if (callback.status() === 302) {
          await page.waitForSelector("#done");
          return { status: 302 };
        }
        const j = await callback.json();
        return { status: callback.status(), code: j.error.code, message: j.error.message };
      };
      const refusedAudits = () => edge.store.audit.count("signin.refused");

      // [what, before the sign-in, callback status, refusal code, JWKS fetches after]
      const rows: [string, () => Promise<void>, number, string | null, number][] = [
        ["first sign-in: the JWKS is fetched", async () => {}, 302, null, 1],
        ["same key again: the cached JWKS serves", async () => {}, 302, null, 1],
        [
          "abrupt rotation, within a minute of the fetch: the new kid is refused (no fetch yet)",
          () => idp.rotateKey(),
          403,
          "oidc_signature_invalid",
          1,
        ],
        [
          "a minute later: the unknown kid makes it fetch again, and the token is accepted",
          minutePasses,
          302,
          null,
          2,
        ],
        [
          "a key the IdP no longer publishes: fetched again, still unknown, refused",
          async () => {
            await idp.rotateKey();
            await idp.retireKey();
            await minutePasses();
          },
          403,
          "oidc_signature_invalid",
          3,
        ],
      ];
      for (const [what, before, status, code, fetches] of rows) {
        await before();
        const sessions = signIns();
        const audits = refusedAudits();
        const r = await signIn();
        assert.equal(r.status, status, `${what}: ${JSON.stringify(r)}`);
        if (code) {
          assert.equal(r.code, code, what);
          assert.match(r.message ?? "", /not signed by a key of the identity provider/, what);
          assert.equal(refusedAudits(), audits + 1, `${what}: audited`);
          const last = edge.store.audit.list({ action: "signin.refused", limit: 1 })[0];
          assert.equal((last.detail as { code: string }).code, code, what);
          assert.equal(signIns(), sessions, `${what}: no sign-in`);
        } else {
          const grant = new URL(page.url()).searchParams.get("grant")!;
          const red = await edge.req("POST", "/api/v1/signin/redeem", { grant });
          assert.equal(red.status, 200, what);
          assert.equal(signIns(), sessions + 1, what);
          assert.equal(refusedAudits(), audits, what);
        }
        assert.equal(await idp.jwksFetches(), fetches, `${what}: JWKS fetches`);
      }
    } finally {
      clearInterval(sync);
      Date.now = realNow;
      await edgeServer.shutdown();
      await back.shutdown();
      edge.store.close();
    }
  },
});
