/**
 * OIDC sign-in on the edge against a real IdP: `oidc-provider` under Node
 * (test/identity/oidc_idp.ts) with its own login form. The code flow with
 * PKCE is driven by headless Chromium from the edge's start URL through the
 * IdP's form and back through the edge's callback to a loopback return
 * address; the device flow is completed by entering the user code at the
 * IdP. Grants are one-time; a replayed callback is refused and audited.
 */
import assert from "node:assert/strict";
import { setLogSinks } from "../../src/log.ts";
import { createEdgeConsole } from "../../src/http/console/edge_console.tsx";
import { createEnrollmentKey } from "../../src/edge/enrollment_keys.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { hasChromium, openBrowser } from "../e2e/browser.ts";
import { fixture } from "../http/helpers.ts";
import { nodeAvailable, OidcIdp } from "./oidc_idp.ts";

setLogSinks([]);

const SECRET = "edge-client-secret-0123456789abcdef";

Deno.test({
  name: "oidc sign-in: code flow in Chromium and device flow against oidc-provider",
  ignore: !hasChromium || !nodeAvailable(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const edge = await fixture({ clockStart: Date.now() });
    const edgeServer = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req, info) => edge.app.fetch(req, { remoteAddr: info.remoteAddr }),
    );
    const E = `http://127.0.0.1:${edgeServer.addr.port}`;
    // Where the browser lands at the end (the connector's console in real use).
    const landed: URL[] = [];
    const back = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
      const u = new URL(req.url);
      if (u.pathname === "/signin/done") landed.push(u);
      return new Response("<!doctype html><p id=done>signed in</p>", {
        headers: { "content-type": "text/html" },
      });
    });
    const RETURN = `http://127.0.0.1:${back.addr.port}/signin/done`;
    try {
      await using idp = await OidcIdp.start({
        clients: [{
          client_id: "portcullis-edge",
          client_secret: SECRET,
          redirect_uris: [`${E}/api/v1/signin/oidc/callback`],
          grant_types: ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
          response_types: ["code"],
        }],
      });
      const created = await edge.adminReq("POST", "/api/v1/admin/identity-providers", {
        name: "Corp",
        kind: "oidc",
        domains: ["corp.example"],
        groupsClaim: "groups",
        groupMap: { eng: "engineering" },
        oidc: { issuer: idp.issuer, clientId: "portcullis-edge", clientSecret: SECRET },
      });
      assert.equal(created.status, 201, await created.text());
      await using b = await openBrowser();
      const { page } = b;

      let callbackUrl = "";
      let anaToken = "";
      await t.step("code flow: start → IdP login form → callback → loopback return", async () => {
        page.on("request", (r) => {
          if (r.url().includes("/api/v1/signin/oidc/callback")) callbackUrl = r.url();
        });
        const state = "connector-state-0123456789";
        await page.goto(
          `${E}/api/v1/signin/start?email=ana%40corp.example&return=${
            encodeURIComponent(RETURN)
          }&state=${state}`,
        );
        await page.waitForSelector("#login");
        await b.shot("oidc-idp-login", { labels: false });
        await page.fill("#login", "ana@corp.example");
        await page.fill("#password", "wrong");
        await page.click("#submit");
        await page.waitForSelector("#error");
        await page.fill("#login", "ana@corp.example");
        await page.fill("#password", "ana-password-1");
        await page.click("#submit");
        await page.waitForSelector("#done");
        assert.equal(landed.length, 1);
        const u = landed[0];
        assert.equal(u.pathname, "/signin/done");
        assert.equal(u.searchParams.get("state"), state);
        const grant = u.searchParams.get("grant")!;
        const r = await edge.req("POST", "/api/v1/signin/redeem", { grant });
        const j = await r.json();
        assert.equal(r.status, 200, JSON.stringify(j));
        assert.match(j.token, /^pcs_/);
        // The default profile's sign-in lifetime (12 h).
        const life = Date.parse(j.expiresAt) - edge.clock.now();
        assert.ok(Math.abs(life - 12 * 3600_000) < 60_000, `lifetime ${life} ms`);
        anaToken = j.token;
        assert.equal(j.user.username, "ana@corp.example");
        assert.equal(j.user.provider, "Corp");
        assert.deepEqual(j.user.groups, [
          { name: "engineering", source: "idp" },
          { name: "staff", source: "idp" },
        ]);
        const again = await edge.req("POST", "/api/v1/signin/redeem", { grant });
        assert.equal(again.status, 400);
        assert.equal((await again.json()).error.code, "grant_invalid");
        const user = edge.store.users.byUsername("ana@corp.example")!;
        assert.deepEqual(user.idpGroups, ["engineering", "staff"]);
        assert.equal(edge.store.userSignIns.forUser(user.id).length, 1);
      });

      await t.step("a replayed callback is refused, audited, and creates nothing", async () => {
        assert.ok(callbackUrl, "the callback was seen");
        const before = edge.store.userSignIns.forUser(
          edge.store.users.byUsername("ana@corp.example")!.id,
        ).length;
        const audits = edge.store.audit.count("signin.refused");
        const r = await fetch(callbackUrl, { redirect: "manual" });
        const j = await r.json();
        assert.equal(r.status, 400, JSON.stringify(j));
        assert.equal(j.error.code, "oidc_state_unknown");
        assert.equal(edge.store.audit.count("signin.refused"), audits + 1);
        assert.equal(
          edge.store.userSignIns.forUser(edge.store.users.byUsername("ana@corp.example")!.id)
            .length,
          before,
        );
      });

      await t.step("device flow: user code entered at the IdP, the edge polls", async () => {
        const r = await edge.req("POST", "/api/v1/signin/device", { email: "bo@corp.example" });
        const d = await r.json();
        assert.equal(r.status, 200, JSON.stringify(d));
        assert.match(d.userCode, /^[A-Z]{4}-[A-Z]{4}$/);
        assert.ok(d.verificationUri.startsWith(idp.issuer));
        const poll = async () =>
          await (await edge.req("POST", "/api/v1/signin/device/poll", { handle: d.handle })).json();
        assert.deepEqual(await poll(), { status: "pending" });
        // Another person, on another browser: no IdP session yet.
        await b.context.clearCookies();
        // The user types the code at the IdP's device page, then signs in.
        await page.goto(d.verificationUri);
        await b.shot("oidc-idp-device", { labels: false });
        await page.fill("input[name=user_code]", d.userCode);
        await page.click("button[type=submit]");
        // The IdP asks to confirm that this is the code the device shows.
        assert.match(await page.textContent("code") ?? "", new RegExp(d.userCode));
        await page.click("button[autofocus]");
        await page.waitForSelector("#login");
        await page.fill("#login", "bo@corp.example");
        await page.fill("#password", "bo-password-2");
        await page.click("#submit");
        await page.waitForLoadState("networkidle");
        await b.shot("oidc-idp-device-done", { labels: false });
        const end = Date.now() + 20_000;
        let done: { status: string; grant?: string } = { status: "pending" };
        while (done.status === "pending" && Date.now() < end) {
          await new Promise((res) => setTimeout(res, 250));
          done = await poll();
        }
        assert.equal(done.status, "done", JSON.stringify(done));
        const red = await (await edge.req("POST", "/api/v1/signin/redeem", { grant: done.grant }))
          .json();
        assert.equal(red.user.username, "bo@corp.example");
        assert.deepEqual(red.user.groups, [{ name: "sales", source: "idp" }]);
      });
      await t.step(
        "the device enrols under ana; the edge console shows her groups; disable",
        async () => {
          const { key } = createEnrollmentKey(edge.store, edge.clock, {
            reusable: false,
            expiresInMs: 3600_000,
            group: null,
            machine: false,
            createdBy: "test",
            apiUrl: edge.ctx.apiUrl,
            caSha256: edge.ctx.caSha256,
          });
          const r = await edge.req(
            "POST",
            "/api/v1/enroll",
            edge.enrollBody(key, { signIn: anaToken, hostname: "ana-laptop" }),
          );
          const j = await r.json();
          assert.equal(r.status, 200, JSON.stringify(j));
          assert.equal(j.user, "ana@corp.example");
          const ui = createEdgeConsole({
            api: edge.app,
            notifier: edge.notifier,
            clock: edge.clock,
          });
          const cs = Deno.serve(
            { hostname: "127.0.0.1", port: 0, onListen: () => {} },
            (req, info) => ui.fetch(req, { remoteAddr: info.remoteAddr }),
          );
          try {
            const C = `http://127.0.0.1:${cs.addr.port}`;
            await page.goto(`${C}/users`);
            await page.fill("#username", "root");
            await page.fill("#password", "correct horse battery");
            await page.fill("#totp", totpAt(edge.admin.totpSecret, edge.clock.now()));
            await page.click("#login-submit");
            await page.waitForSelector("#users-table");
            const ana = edge.store.users.byUsername("ana@corp.example")!;
            const row = await page.textContent(`#user-${ana.id}`) ?? "";
            assert.match(row, /ana@corp\.example/);
            assert.match(row, /signs in through Corp/);
            assert.match(row, /engineering \(identity provider\)/);
            assert.match(row, /staff \(identity provider\)/);
            assert.match(row, /ana-laptop/);
            await b.shot("users-idp");
            const wg = edge.store.devices.byId(j.deviceId)!.wgPublicKey;
            assert.ok(edge.tunnel.peers.has(wg));
            await Promise.all([
              page.waitForURL(/msg=user_disabled/),
              page.click(`#user-${ana.id} form[action$="/disable"] button`),
            ]);
            assert.match(await page.textContent(`#user-${ana.id}`) ?? "", /disabled/);
            assert.ok(!edge.tunnel.peers.has(wg), "her device left the tunnel");
            await b.shot("users-disabled");
            await page.goto(`${C}/lang?lang=de&next=%2Fusers`);
            assert.match(await page.textContent(`#user-${ana.id}`) ?? "", /Identitätsanbieter/);
            await b.shot("users-idp-de");
            await page.goto(`${C}/lang?lang=fr&next=%2Fusers`);
            assert.match(await page.textContent(`#user-${ana.id}`) ?? "", /fournisseur d’identité/);
            await b.shot("users-idp-fr");
          } finally {
            // Leave the console first: its live-event stream holds the server open.
            await page.goto("about:blank");
            await cs.shutdown();
          }
        },
      );
    } finally {
      await edgeServer.shutdown();
      await back.shutdown();
    }
  },
});
