/**
 * Real connectors sign their users in against `oidc-provider` under Node,
 * through an edge on https loopback with its own CA, in headless Chromium:
 * - without a sign-in a user key is refused and the console says "Sign-in
 *   required"; its Sign in card sends the browser to the edge, the IdP's
 *   form, back to the console's /signin/done, and the device enrols as
 *   ana's ("Authenticated as ana@corp.example"); a forged return is refused;
 * - `portcullis connect --email` runs the device flow: the person enters
 *   the printed code at the IdP, the device enrols as bo's.
 */
import assert from "node:assert/strict";
import { ensureCa } from "../../src/edge/ca.ts";
import { type ConnectorHandle, startConnector } from "../../src/connector/mod.ts";
import { FakeNetworkPort } from "../../src/connector/network_port.ts";
import { FakeTunnelPort } from "../../src/connector/tunnel_port.ts";
import { createEnrollmentKey } from "../../src/edge/enrollment_keys.ts";
import { createConnectorApp } from "../../src/http/connector_app.ts";
import { createConnectorConsole } from "../../src/http/console/connector_console.tsx";
import { httpEdgeApi } from "../../src/http/edge_client.ts";
import { RingSink, setLogSinks } from "../../src/log.ts";
import { hasChromium, openBrowser } from "../e2e/browser.ts";
import { waitFor } from "../http/console/harness.ts";
import { createUser } from "../../src/identity/users.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { fixture } from "../http/helpers.ts";
import { nodeAvailable, OidcIdp } from "../identity/oidc_idp.ts";

setLogSinks([]);

Deno.test({
  name:
    "connector sign-in: browser code flow from the console and device flow, Authenticated as the user",
  ignore: !hasChromium || !nodeAvailable(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pc-signin-" });
    const edge = await fixture({ clockStart: Date.now() });
    const clockSync = setInterval(() => edge.clock.setWall(Date.now()), 100);
    // The edge's own CA and a server certificate for 127.0.0.1: the browser
    // goes to the edge's https sign-in URL, the connector pins the CA.
    const ca = await ensureCa(`${dir}/ca`);
    edge.ctx.caSha256 = ca.caSha256;
    const edgeFetch = async (req: Request): Promise<Response> => {
      if (new URL(req.url).pathname === "/ca.pem") return new Response(ca.caCertPem);
      return await edge.app.request(req);
    };
    await Deno.writeTextFile(`${dir}/machine-id`, crypto.randomUUID().replaceAll("-", "") + "\n");
    await Deno.mkdir(`${dir}/net/eth0`, { recursive: true });
    await Deno.writeTextFile(`${dir}/net/eth0/address`, "02:00:00:00:10:02\n");
    const SECRET = "connector-test-secret-0123456789";
    // The edge on a real loopback listener too: the browser goes to its sign-in URL.
    const edgeServer = Deno.serve(
      {
        hostname: "127.0.0.1",
        port: 0,
        cert: ca.serverCertPem,
        key: ca.serverKeyPem,
        onListen: () => {},
      },
      (req, info) => edge.app.fetch(req, { remoteAddr: info.remoteAddr }),
    );
    edge.ctx.apiUrl = `https://127.0.0.1:${edgeServer.addr.port}`;
    const connectors: ConnectorHandle[] = [];
    try {
      await using idp = await OidcIdp.start({
        clients: [{
          client_id: "portcullis-edge",
          client_secret: SECRET,
          redirect_uris: [`${edge.ctx.apiUrl}/api/v1/signin/oidc/callback`],
          grant_types: ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
        }],
      });
      const p = await edge.adminReq("POST", "/api/v1/admin/identity-providers", {
        name: "Corp",
        kind: "oidc",
        domains: ["corp.example"],
        oidc: { issuer: idp.issuer, clientId: "portcullis-edge", clientSecret: SECRET },
      });
      assert.equal(p.status, 201, await p.text());
      const { key } = createEnrollmentKey(edge.store, edge.clock, {
        reusable: true,
        expiresInMs: 3600_000,
        group: null,
        machine: false,
        createdBy: "test",
        apiUrl: edge.ctx.apiUrl,
        caSha256: edge.ctx.caSha256,
      });
      const base = {
        dataDir: `${dir}/connector`,
        enrollmentKey: key,
        hostname: "ana-laptop",
        machineIdPath: `${dir}/machine-id`,
        sysNetPath: `${dir}/net`,
        heartbeatSec: 3600,
        postureSec: 3600,
        policyRefreshSec: 3600,
        streamBackoffMs: { min: 60_000, max: 60_000 },
      };
      const ports = () => ({
        tunnel: new FakeTunnelPort(),
        network: new FakeNetworkPort(),
        edge: httpEdgeApi({ fetch: edgeFetch }),
      });
      const consoleFor = (c: ConnectorHandle) => {
        const ui = createConnectorConsole({
          engine: c.engine,
          api: createConnectorApp({ engine: c.engine, hub: c.hub, store: c.store }),
          hub: c.hub,
          store: c.store,
          version: "0.1.0",
          logs: new RingSink(100),
          sseKeepaliveMs: 1000,
          signIn: c.browserSignIn,
        });
        return Deno.serve(
          { hostname: "127.0.0.1", port: 0, onListen: () => {} },
          (req, info) => ui.fetch(req, { remoteAddr: info.remoteAddr }),
        );
      };
      // The edge CA is this test's own: the browser is told to accept it.
      await using b = await openBrowser({ ignoreHTTPSErrors: true });
      const { page } = b;

      // No sign-in: the user key is refused; the console says so.
      const bare = await startConnector(base, ports());
      connectors.push(bare);
      await waitFor("the refusal", () => bare.engine.status().reason !== null, 10_000);
      assert.match(bare.engine.status().reason ?? "", /sign in first/);
      assert.equal(edge.store.devices.count(), 0);
      const s1 = consoleFor(bare);
      try {
        await page.goto(`http://127.0.0.1:${s1.addr.port}/private-access`);
        assert.match(await page.textContent("#auth-state") ?? "", /Sign-in required/);
        await b.shot("connector-signin-required");
        // Sign in through the browser: the edge, the IdP's form, back to this console.
        await page.fill("#signin-email", "ana@corp.example");
        await page.click("#signin-submit");
        await page.waitForSelector("#signin-continue");
        await b.shot("connector-signin-continue");
        await page.click("#signin-continue");
        await page.waitForSelector("#login");
        await page.fill("#login", "ana@corp.example");
        await page.fill("#password", "ana-password-1");
        await page.click("#submit");
        await page.waitForURL(/\/private-access$/);
        await waitFor(
          "ana's connector to connect",
          () => bare.engine.state.kind === "connected",
          20_000,
        );
        await page.reload();
        assert.match(
          await page.textContent("#auth-state") ?? "",
          /Authenticated as ana@corp\.example/,
        );
        await b.shot("connector-authenticated-browser");
        assert.equal(edge.store.devices.list()[0].user, "ana@corp.example");
        // A forged return (a state this console did not issue) is refused.
        const forged = await fetch(
          `http://127.0.0.1:${s1.addr.port}/signin/done?grant=x&state=forged`,
        );
        assert.equal(forged.status, 400);
        assert.match(await forged.text(), /not started here/);
      } finally {
        // Leave the console first: its live-event stream holds the server open.
        await page.goto("about:blank");
        await s1.shutdown();
      }
      await bare.stop();
      connectors.pop();
      await b.context.clearCookies();

      // With --email: the device flow's message, then the code entered at the IdP.
      const told: string[] = [];
      await Deno.writeTextFile(
        `${dir}/machine-id-2`,
        crypto.randomUUID().replaceAll("-", "") + "\n",
      );
      await Deno.mkdir(`${dir}/net2/eth0`, { recursive: true });
      await Deno.writeTextFile(`${dir}/net2/eth0/address`, "02:00:00:00:10:03\n");
      const starting = startConnector({
        ...base,
        dataDir: `${dir}/connector-2`,
        hostname: "bo-box",
        machineIdPath: `${dir}/machine-id-2`,
        sysNetPath: `${dir}/net2`,
        signIn: { email: "bo@corp.example", tell: (m) => told.push(m) },
      }, ports());
      await waitFor("the sign-in instructions", () => told.length > 0, 15_000);
      const m = /open (\S+) and enter the code ([A-Z]{4}-[A-Z]{4})/.exec(told[0]);
      assert.ok(m, told[0]);
      await page.goto(m[1]);
      await page.fill("input[name=user_code]", m[2]);
      await page.click("button[type=submit]");
      await page.click("button[autofocus]");
      await page.waitForSelector("#login");
      await page.fill("#login", "bo@corp.example");
      await page.fill("#password", "bo-password-2");
      await page.click("#submit");
      const c = await starting;
      connectors.push(c);
      await waitFor("the connector to connect", () => c.engine.state.kind === "connected", 20_000);
      assert.equal(c.engine.status().user, "bo@corp.example");
      assert.match(told.at(-1) ?? "", /Signed in as bo@corp\.example/);
      const dev = edge.store.devices.list().find((d) => d.hostname === "bo-box")!;
      assert.equal(dev.user, "bo@corp.example");
      const s2 = consoleFor(c);
      try {
        await page.goto(`http://127.0.0.1:${s2.addr.port}/private-access`);
        assert.match(
          await page.textContent("#auth-state") ?? "",
          /Authenticated as bo@corp\.example/,
        );
        await b.shot("connector-authenticated");
      } finally {
        // Leave the console first: its live-event stream holds the server open.
        await page.goto("about:blank");
        await s2.shutdown();
      }

      // A local user (no identity provider serves their name): password and one-time code.
      const carol = await createUser(edge.store, edge.clock, {
        username: "carol",
        password: "carol-password-123",
        role: "user",
      }, { N: 1024, r: 8, p: 1 });
      await Deno.writeTextFile(
        `${dir}/machine-id-3`,
        crypto.randomUUID().replaceAll("-", "") + "\n",
      );
      await Deno.mkdir(`${dir}/net3/eth0`, { recursive: true });
      await Deno.writeTextFile(`${dir}/net3/eth0/address`, "02:00:00:00:10:04\n");
      const third = await startConnector({
        ...base,
        dataDir: `${dir}/connector-3`,
        hostname: "carol-pc",
        machineIdPath: `${dir}/machine-id-3`,
        sysNetPath: `${dir}/net3`,
      }, ports());
      connectors.push(third);
      await waitFor("the refusal", () => third.engine.status().reason !== null, 10_000);
      const s3 = consoleFor(third);
      try {
        const C = `http://127.0.0.1:${s3.addr.port}`;
        await page.goto(`${C}/private-access`);
        // An address an identity provider serves cannot use a local password.
        await page.click("#signin-local summary");
        await page.fill("#local-username", "ana@corp.example");
        await page.fill("#local-password", "whatever-password");
        await page.fill("#local-totp", "123456");
        await page.click("#signin-local-submit");
        await page.waitForSelector("#signin-card .flash");
        assert.match(await page.textContent("#signin-card") ?? "", /identity provider "Corp"/);
        await page.click("#signin-local summary");
        await page.fill("#local-username", "carol");
        await page.fill("#local-password", "carol-password-123");
        await page.fill("#local-totp", totpAt(carol.totpSecret, edge.clock.now()));
        await b.shot("connector-signin-local");
        await page.click("#signin-local-submit");
        await page.waitForURL(/\/private-access$/);
        await waitFor(
          "carol's connector to connect",
          () => third.engine.state.kind === "connected",
          20_000,
        );
        await page.reload();
        assert.match(await page.textContent("#auth-state") ?? "", /Authenticated as carol/);
        const d3 = edge.store.devices.list().find((d) => d.hostname === "carol-pc")!;
        assert.equal(d3.user, "carol");
      } finally {
        await page.goto("about:blank");
        await s3.shutdown();
      }
    } finally {
      clearInterval(clockSync);
      for (const c of connectors) await c.stop();
      await edgeServer.shutdown();
      edge.store.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
