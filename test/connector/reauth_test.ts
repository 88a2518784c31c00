/**
 * Re-authentication every N hours, end to end: real connectors, the edge
 * app on https loopback, `oidc-provider` under Node, headless Chromium.
 * Time passes by injected clocks — the edge's, the IdP's and the
 * connectors' wall clocks move 13 h ahead together — so the users' sign-ins
 * (the default profile's 12 h) end:
 * - the connector shows "Sign-in required for ana@corp.example", its
 *   tunnel goes, the edge takes the device out of the tunnel, and nothing
 *   loops: no re-enrolment, no forgotten enrolment, heartbeats keep being
 *   refused quietly;
 * - ana signs in again from the console's Sign in card (browser code flow):
 *   the same device (id, address, key) is back in the tunnel, without a new
 *   enrolment, "Authenticated as ana@corp.example";
 * - bo's headless box (started with a sign-in e-mail) runs the device flow
 *   by itself: the person enters the new code, the same device reconnects.
 */
import assert from "node:assert/strict";
import type { Clock } from "../../src/clock.ts";
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
import { fixture } from "../http/helpers.ts";
import { nodeAvailable, OidcIdp } from "../identity/oidc_idp.ts";

setLogSinks([]);

const H = 3600_000;

/** A wall clock `offset` ms ahead of the real one (time passing for the connector). */
class OffsetClock implements Clock {
  offset = 0;
  monotonic(): number {
    return performance.now();
  }
  now(): number {
    return Date.now() + this.offset;
  }
}

Deno.test({
  name:
    "re-authentication: a lapsed sign-in asks for sign-in (no re-enrolment); signing in again restores the same device",
  ignore: !hasChromium || !nodeAvailable(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pc-reauth-" });
    const edge = await fixture({ clockStart: Date.now() });
    const time = new OffsetClock();
    const clockSync = setInterval(() => edge.clock.setWall(time.now()), 50);
    const ca = await ensureCa(`${dir}/ca`);
    edge.ctx.caSha256 = ca.caSha256;
    const edgeFetch = async (req: Request): Promise<Response> => {
      if (new URL(req.url).pathname === "/ca.pem") return new Response(ca.caCertPem);
      return await edge.app.request(req);
    };
    const SECRET = "reauth-test-secret-0123456789abc";
    const edgeServer = Deno.serve(
      {
        hostname: "127.0.0.1",
        port: 0,
        cert: ca.serverCertPem,
        key: ca.serverKeyPem,
        onListen() {},
      },
      (req, info) => edge.app.fetch(req, { remoteAddr: info.remoteAddr }),
    );
    edge.ctx.apiUrl = `https://127.0.0.1:${edgeServer.addr.port}`;
    const connectors: ConnectorHandle[] = [];
    const servers: Deno.HttpServer[] = [];
    try {
      await using idp = await OidcIdp.start({
        clients: [{
          client_id: "portcullis-edge",
          client_secret: SECRET,
          redirect_uris: [`${edge.ctx.apiUrl}/api/v1/signin/oidc/callback`],
          grant_types: ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
        }],
      });
      /** Moves every clock (edge, IdP, connectors) to `ms` ahead of real time. */
      const timePasses = async (ms: number) => {
        await idp.setClockOffset(ms);
        time.offset = ms;
        edge.clock.setWall(time.now());
      };
      const p = await edge.adminReq("POST", "/api/v1/admin/identity-providers", {
        name: "Corp",
        kind: "oidc",
        domains: ["corp.example"],
        oidc: { issuer: idp.issuer, clientId: "portcullis-edge", clientSecret: SECRET },
      });
      assert.equal(p.status, 201, await p.text());
      const { key } = createEnrollmentKey(edge.store, edge.clock, {
        reusable: true,
        expiresInMs: null,
        group: null,
        machine: false,
        createdBy: "test",
        apiUrl: edge.ctx.apiUrl,
        caSha256: edge.ctx.caSha256,
      });
      const host = async (n: number) => {
        await Deno.writeTextFile(`${dir}/machine-id-${n}`, crypto.randomUUID().replaceAll("-", ""));
        await Deno.mkdir(`${dir}/net${n}/eth0`, { recursive: true });
        await Deno.writeTextFile(`${dir}/net${n}/eth0/address`, `02:00:00:00:30:0${n}\n`);
        return {
          dataDir: `${dir}/connector-${n}`,
          enrollmentKey: key,
          machineIdPath: `${dir}/machine-id-${n}`,
          sysNetPath: `${dir}/net${n}`,
          heartbeatSec: 1,
          postureSec: 3600,
          policyRefreshSec: 3600,
          streamBackoffMs: { min: 60_000, max: 60_000 },
        };
      };
      const ports = () => ({
        tunnel: new FakeTunnelPort(),
        network: new FakeNetworkPort(),
        edge: httpEdgeApi({ fetch: edgeFetch, clock: time }),
        clock: time,
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
        const s = Deno.serve(
          { hostname: "127.0.0.1", port: 0, onListen: () => {} },
          (req, info) => ui.fetch(req, { remoteAddr: info.remoteAddr }),
        );
        servers.push(s);
        return `http://127.0.0.1:${s.addr.port}`;
      };
      const audits = (action: string) => edge.store.audit.count(action);
      await using b = await openBrowser({ ignoreHTTPSErrors: true });
      const { page } = b;
      const idpLogin = async (email: string, password: string) => {
        await page.waitForSelector("#login");
        await page.fill("#login", email);
        await page.fill("#password", password);
        await page.click("#submit");
      };

      // ana enrols through the console's Sign in card.
      const ana = await startConnector({ ...await host(1), hostname: "ana-laptop" }, ports());
      connectors.push(ana);
      await waitFor("the refusal", () => ana.engine.status().reason !== null, 10_000);
      const C = consoleFor(ana);
      const signInFromConsole = async () => {
        await page.goto(`${C}/private-access`);
        await page.fill("#signin-email", "ana@corp.example");
        await page.click("#signin-submit");
        await page.waitForSelector("#signin-continue");
        await page.click("#signin-continue");
        await idpLogin("ana@corp.example", "ana-password-1");
        await page.waitForURL(/\/private-access$/);
      };
      await signInFromConsole();
      await waitFor("ana connected", () => ana.engine.state.kind === "connected", 20_000);
      const device = edge.store.devices.list()[0];
      assert.equal(device.user, "ana@corp.example");
      const status0 = ana.engine.status();
      assert.ok(edge.tunnel.peers.has(device.wgPublicKey));
      const enrolAudits = audits("device.enroll") + audits("device.reenroll");
      const enrolNotices = () =>
        ana.store.listNotifications({ limit: 500 }).filter((n) =>
          n.type === "enrollment_forgotten" || n.type === "enroll_failed" || n.type === "enrolled"
        ).length;
      const noticesBefore = enrolNotices();
      await b.context.clearCookies();

      // 13 hours later: past the default profile's 12 h.
      await timePasses(13 * H);
      await waitFor(
        "sign-in required",
        () => ana.engine.state.kind === "signin_required",
        15_000,
      );
      assert.ok(!edge.tunnel.peers.has(device.wgPublicKey), "the edge dropped the peer");
      // Nothing loops: a few more heartbeats are refused, nothing is enrolled or forgotten.
      const beats = edge.store.devices.byId(device.id)!.lastSeenAt;
      await new Promise((r) => setTimeout(r, 3500));
      assert.equal(ana.engine.state.kind, "signin_required");
      assert.equal(edge.store.devices.byId(device.id)!.lastSeenAt, beats, "no accepted call");
      assert.equal(audits("device.enroll") + audits("device.reenroll"), enrolAudits);
      assert.equal(enrolNotices(), noticesBefore, "no enrolment attempt, nothing forgotten");
      assert.equal(ana.engine.status().deviceId, device.id, "the enrolment is kept");
      await page.goto(`${C}/private-access`);
      assert.match(
        await page.textContent("#auth-state") ?? "",
        /Sign-in required for ana@corp\.example/,
      );
      assert.match(await page.textContent("#private-state") ?? "", /Sign-in required/);
      await page.waitForSelector("#signin-card");
      assert.match(await page.textContent("#signin-intro") ?? "", /sign-in as ana@corp\.example/);
      assert.equal(await page.inputValue("#signin-email"), "ana@corp.example");
      await b.shot("connector-reauth-required");
      await page.goto(`${C}/lang?lang=de&next=%2Fprivate-access`);
      assert.match(
        await page.textContent("#auth-state") ?? "",
        /Anmeldung erforderlich für ana@corp\.example/,
      );
      assert.match(await page.textContent("#signin-intro") ?? "", /Anmeldung als ana@corp/);
      await page.goto(`${C}/lang?lang=fr&next=%2Fprivate-access`);
      assert.match(
        await page.textContent("#auth-state") ?? "",
        /Connexion requise pour ana@corp\.example/,
      );
      assert.match(await page.textContent("#signin-intro") ?? "", /connexion en tant que ana@corp/);
      await page.goto(`${C}/lang?lang=en&next=%2Fprivate-access`);

      // Signing in again in the browser restores the same device's tunnel.
      await signInFromConsole();
      await waitFor("ana reconnected", () => ana.engine.state.kind === "connected", 20_000);
      await page.reload();
      assert.match(
        await page.textContent("#auth-state") ?? "",
        /Authenticated as ana@corp\.example/,
      );
      await b.shot("connector-reauth-done");
      const after = ana.engine.status();
      assert.equal(after.deviceId, status0.deviceId);
      assert.equal(after.deviceAddress, status0.deviceAddress);
      assert.equal(after.wgPublicKey, status0.wgPublicKey);
      assert.equal(edge.store.devices.count(), 1);
      assert.equal(
        audits("device.enroll") + audits("device.reenroll"),
        enrolAudits,
        "no enrolment",
      );
      assert.equal(audits("device.signin_renew"), 1);
      assert.ok(edge.tunnel.peers.has(device.wgPublicKey), "back in the tunnel");
      await page.goto("about:blank");
      await b.context.clearCookies();

      // bo's headless box: the device flow, at enrolment and again when the sign-in ends.
      const told: string[] = [];
      const codeOf = async (n: number) => {
        const codes = () =>
          told.flatMap((t) => {
            const m = /open (\S+) and enter the code ([A-Z]{4}-[A-Z]{4})/.exec(t);
            return m ? [m] : [];
          });
        await waitFor(`sign-in instructions #${n}`, () => codes().length >= n, 20_000);
        const m = codes()[n - 1];
        await page.goto(m[1]);
        await page.fill("input[name=user_code]", m[2]);
        await page.click("button[type=submit]");
        await page.click("button[autofocus]");
        await idpLogin("bo@corp.example", "bo-password-2");
        await page.waitForLoadState("networkidle");
        await b.context.clearCookies();
      };
      const starting = startConnector({
        ...await host(2),
        hostname: "bo-box",
        signIn: { email: "bo@corp.example", tell: (m) => told.push(m) },
      }, ports());
      await codeOf(1);
      const bo = await starting;
      connectors.push(bo);
      await waitFor("bo connected", () => bo.engine.state.kind === "connected", 20_000);
      const boDevice = edge.store.devices.list().find((d) => d.hostname === "bo-box")!;
      const boEnrolAudits = audits("device.enroll") + audits("device.reenroll");
      await timePasses(26 * H);
      await waitFor(
        "bo: sign-in required",
        () => bo.engine.state.kind === "signin_required",
        15_000,
      );
      assert.ok(!edge.tunnel.peers.has(boDevice.wgPublicKey));
      await codeOf(2);
      await waitFor("bo reconnected", () => bo.engine.state.kind === "connected", 20_000);
      assert.equal(bo.engine.status().deviceId, boDevice.id);
      assert.equal(bo.engine.status().user, "bo@corp.example");
      assert.equal(audits("device.enroll") + audits("device.reenroll"), boEnrolAudits);
      assert.equal(audits("device.signin_renew"), 2);
      assert.ok(edge.tunnel.peers.has(boDevice.wgPublicKey));
      assert.match(told.at(-1) ?? "", /Signed in as bo@corp\.example/);
    } finally {
      clearInterval(clockSync);
      for (const c of connectors) await c.stop();
      for (const s of servers) await s.shutdown();
      await edgeServer.shutdown();
      edge.store.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
