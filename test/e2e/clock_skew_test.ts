/**
 * Clock skew end to end: the real edge app served on loopback (every answer
 * carries X-Server-Time), a real connector enrolled through it over HTTP,
 * whose wall clock is injected 6 min 12 s slow. The connector says so in its
 * status, a notification and its console (in headless Chromium, with a
 * screenshot), with the size and the direction; when the clock is set right
 * the warning goes and a "corrected" notification follows. Raising the
 * policy's tolerance above the skew clears the warning too: the setting is
 * enforced, not just stored.
 */
import assert from "node:assert/strict";
import type { Clock } from "../../src/clock.ts";
import { caFingerprint } from "../../src/connector/ca_pin.ts";
import { type ConnectorHandle, startConnector } from "../../src/connector/mod.ts";
import { FakeNetworkPort } from "../../src/connector/network_port.ts";
import { FakeTunnelPort } from "../../src/connector/tunnel_port.ts";
import { createConnectorApp } from "../../src/http/connector_app.ts";
import { createConnectorConsole } from "../../src/http/console/connector_console.tsx";
import { httpEdgeApi } from "../../src/http/edge_client.ts";
import { RingSink, setLogSinks } from "../../src/log.ts";
import { fixture } from "../http/helpers.ts";
import { FAKE_CA, waitFor } from "../http/console/harness.ts";
import { hasChromium, launchChromium, shot } from "./chromium.ts";

setLogSinks([]);

/** 6 min 12 s, the example. */
const SKEW_MS = 372_000;

/** A wall clock `offset` ms off the real one (the connector's injected clock). */
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
  name: "clock skew: a connector 6 min 12 s slow says so with the size, and stops once corrected",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pc-skew-" });
    const edge = await fixture();
    edge.clock.setWall(Date.now());
    const sync = setInterval(() => edge.clock.setWall(Date.now()), 50);
    edge.ctx.caSha256 = await caFingerprint(FAKE_CA);
    // The edge on a real loopback socket; the connector's requests go there.
    const edgeSrv = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => edge.app.fetch(req),
    );
    const edgeBase = `http://127.0.0.1:${edgeSrv.addr.port}`;
    const edgeFetch = (req: Request): Promise<Response> => {
      const u = new URL(req.url);
      if (u.pathname === "/ca.pem") return Promise.resolve(new Response(FAKE_CA));
      return fetch(new Request(edgeBase + u.pathname + u.search, req));
    };
    const clock = new OffsetClock();
    clock.offset = -SKEW_MS;
    await Deno.writeTextFile(`${dir}/machine-id`, "d".repeat(32) + "\n");
    await Deno.mkdir(`${dir}/net/eth0`, { recursive: true });
    await Deno.writeTextFile(`${dir}/net/eth0/address`, "02:00:00:00:20:01\n");
    let c: ConnectorHandle | null = null;
    let uiSrv: Deno.HttpServer<Deno.NetAddr> | null = null;
    const userDir = await Deno.makeTempDir({ prefix: "pc-chromium-" });
    try {
      c = await startConnector({
        dataDir: `${dir}/connector`,
        enrollmentKey: edge.newKey({ reusable: false }).key,
        hostname: "ws-skew",
        machineIdPath: `${dir}/machine-id`,
        sysNetPath: `${dir}/net`,
        heartbeatSec: 1,
        postureSec: 3600,
        policyRefreshSec: 3600,
        streamBackoffMs: { min: 60_000, max: 60_000 },
      }, {
        tunnel: new FakeTunnelPort(),
        network: new FakeNetworkPort(),
        edge: httpEdgeApi({ fetch: edgeFetch, clock }),
        clock,
      });
      const conn = c;
      await waitFor("connected", () => conn.engine.state.kind === "connected");
      const warned = () => conn.store.listNotifications({ type: "clock_skew" });
      await waitFor("the skew warning", () => warned().length > 0);
      const n = warned()[0];
      assert.equal(
        n.message,
        "Your clock is 6 min 12 s behind the edge; sign-in will fail until it is corrected",
      );
      assert.equal(n.severity, "warn");
      const st = conn.engine.status();
      assert.equal(st.clockSkew?.exceeded, true);
      assert.equal(st.clockSkew?.direction, "behind");
      assert.ok(Math.abs(st.clockSkewMs! - SKEW_MS) < 1000, `skew ${st.clockSkewMs} ms`);

      // The local API shows it too.
      const api = createConnectorApp({ engine: conn.engine, hub: conn.hub, store: conn.store });
      const r = await api.request("/api/v1/status", { headers: { host: "127.0.0.1:9080" } });
      assert.equal(r.status, 200);
      const body = await r.json();
      assert.match(body.clockSkew.message, /6 min 12 s behind the edge/);

      const ui = createConnectorConsole({
        engine: conn.engine,
        api,
        hub: conn.hub,
        store: conn.store,
        version: "0.1.0",
        logs: new RingSink(10),
        config: { dataDir: `${dir}/connector`, enrollmentKey: null, hostname: "ws-skew" },
        clock,
        sseKeepaliveMs: 1000,
      });
      uiSrv = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, ui.fetch);
      const U = `http://127.0.0.1:${uiSrv.addr.port}`;
      const html = await (await ui.request("/", {
        headers: { host: "127.0.0.1:9080", "accept-language": "de" },
      })).text();
      assert.match(html, /Ihre Uhr geht gegenüber der Edge 6 min 12 s nach/);

      if (hasChromium) {
        const ctx = await launchChromium(userDir);
        try {
          const page = ctx.pages()[0] ?? await ctx.newPage();
          page.setDefaultTimeout(10_000);
          await page.goto(`${U}/`);
          await page.waitForSelector("#clock-skew");
          assert.match(
            await page.textContent("#clock-skew") ?? "",
            /Your clock is 6 min 12 s behind the edge; sign-in will fail until it is corrected/,
          );
          await shot(page, "connector-clock-skew");
          await page.click("#tab-more");
          await page.waitForSelector("#clock-skew-value");
          assert.match(
            await page.textContent("#clock-skew-value") ?? "",
            /^6 min 1[12] s behind the edge \(tolerance 2 min 0 s\)$/,
          );
          await page.goBack();
          await page.waitForSelector("#clock-skew");
          // Set the clock right: the card refreshes itself and the warning goes.
          clock.offset = 0;
          await page.waitForSelector("#clock-skew", { state: "detached", timeout: 15_000 });
        } finally {
          await ctx.close();
        }
      } else {
        clock.offset = 0;
      }
      await waitFor(
        "the corrected notice",
        () => conn.store.listNotifications({ type: "clock_skew_cleared" }).length > 0,
      );
      assert.equal(conn.engine.status().clockSkew?.exceeded, false);

      // Slow again, then a policy allowing 10 min of skew: no warning stays.
      clock.offset = -SKEW_MS;
      await waitFor("the second warning", () => warned().length === 2);
      edge.policy.replace("app-profiles", [{
        name: "default",
        forwarding: { name: "default" },
        clockSkewToleranceSec: 600,
      }], "test");
      await conn.engine.updatePolicy();
      assert.equal(conn.engine.status().clockSkew?.toleranceMs, 600_000);
      assert.equal(conn.engine.status().clockSkew?.exceeded, false);
      await waitFor(
        "cleared under the wider tolerance",
        () => conn.store.listNotifications({ type: "clock_skew_cleared" }).length === 2,
      );
    } finally {
      clearInterval(sync);
      await c?.stop();
      await uiSrv?.shutdown();
      await edgeSrv.shutdown();
      edge.store.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(userDir, { recursive: true }).catch(() => {});
    }
  },
});
