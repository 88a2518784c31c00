/**
 * A whole small system for console tests: the edge app over an in-memory
 * store (test/http/helpers.ts), a real connector (startConnector) enrolled
 * with it through the real API, the connector's local JSON API, a capture
 * controller on a fake pump tap, and both consoles.
 */
import { caFingerprint } from "../../../src/connector/ca_pin.ts";
import {
  type ConnectorConfig,
  type ConnectorHandle,
  startConnector,
} from "../../../src/connector/mod.ts";
import { FakeNetworkPort, type NetworkPort } from "../../../src/connector/network_port.ts";
import { FakeTunnelPort } from "../../../src/connector/tunnel_port.ts";
import { CaptureController, type CaptureTap, type TapSource } from "../../../src/diag/capture.ts";
import { createConnectorApp } from "../../../src/http/connector_app.ts";
import {
  createConnectorConsole,
  edgeSupportSender,
} from "../../../src/http/console/connector_console.tsx";
import { createEdgeConsole } from "../../../src/http/console/edge_console.tsx";
import { EdgeClient, httpEdgeApi } from "../../../src/http/edge_client.ts";
import { addLogSink, RingSink } from "../../../src/log.ts";
import { fixture } from "../helpers.ts";

/** Any PEM works: the key pins its SHA-256 and the in-process fetch never does TLS. */
export const FAKE_CA = "-----BEGIN CERTIFICATE-----\nTUlJQmZha2VjYQ==\n-----END CERTIFICATE-----\n";

/** Stands in for the data-plane pump: the test pushes packets through the tap. */
export class FakePump implements TapSource {
  tap: CaptureTap | null = null;
  /** Installs or removes the tap. */
  setTap(fn: CaptureTap | null): void {
    this.tap = fn;
  }
  /** Hands one packet to the tap, as the pump would. */
  push(dir: "in" | "out", pkt: Uint8Array): void {
    this.tap?.(dir, pkt, 0, pkt.length);
  }
}

/** Waits until `cond` holds. */
export async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Builds the system; call `close()` in a finally. `network` replaces the connector's fake network. */
export async function system(opts: { network?: NetworkPort } = {}) {
  const dir = await Deno.makeTempDir({ prefix: "pc-console-" });
  // With the web proxy, as a real edge started with --web-proxy-port (PAC files, proxy modes).
  const edge = await fixture({
    sseKeepaliveMs: 1000,
    webProxy: { address: "100.64.0.1", port: 3128 },
    dataDir: `${dir}/edge`,
  });
  // The edge's ManualClock follows the wall clock, so times and clock skew look real.
  edge.clock.setWall(Date.now());
  const clockSync = setInterval(() => edge.clock.setWall(Date.now()), 100);
  edge.ctx.caSha256 = await caFingerprint(FAKE_CA);
  const ring = new RingSink(2000);
  addLogSink(ring);

  // The connector reaches the edge in-process; the policy stream is refused so
  // a policy change arrives only when polled or when Update Policy is pressed.
  let blockStream = true;
  const edgeFetch = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    if (url.pathname === "/ca.pem") return new Response(FAKE_CA);
    if (blockStream && url.pathname === "/api/v1/policy/stream") {
      return new Response(JSON.stringify({ error: { code: "unavailable", message: "no" } }), {
        status: 503,
        headers: { "content-type": "application/json" },
      });
    }
    return await edge.app.request(req);
  };

  await Deno.writeTextFile(`${dir}/machine-id`, crypto.randomUUID().replaceAll("-", "") + "\n");
  await Deno.mkdir(`${dir}/net/eth0`, { recursive: true });
  await Deno.writeTextFile(`${dir}/net/eth0/address`, "02:00:00:00:10:01\n");

  let connector: ConnectorHandle | null = null;
  let localApi: ReturnType<typeof createConnectorApp> | null = null;
  const tunnel = new FakeTunnelPort();
  const pump = new FakePump();
  const capture = new CaptureController({
    dir: `${dir}/captures`,
    source: () => (tunnel.active ? pump : null),
  });

  const edgeConsole = createEdgeConsole({
    api: edge.app,
    notifier: edge.notifier,
    clock: edge.clock,
    sseKeepaliveMs: 1000,
  });

  /** Enrols the connector with a fresh key and builds its console. */
  const startConnectorWithKey = async (
    o: { updates?: ConnectorConfig["updates"]; restart?: () => void } = {},
  ) => {
    const key = edge.newKey({ reusable: false }).key;
    connector = await startConnector({
      dataDir: `${dir}/connector`,
      enrollmentKey: key,
      hostname: "ws-console",
      machineIdPath: `${dir}/machine-id`,
      sysNetPath: `${dir}/net`,
      heartbeatSec: 3600,
      postureSec: 3600,
      policyRefreshSec: 3600,
      streamBackoffMs: { min: 60_000, max: 60_000 },
      updates: o.updates,
    }, {
      tunnel,
      network: opts.network ?? new FakeNetworkPort(),
      edge: httpEdgeApi({ fetch: edgeFetch }),
      restart: o.restart,
    });
    const c = connector;
    localApi = createConnectorApp({
      engine: c.engine,
      hub: c.hub,
      store: c.store,
      updates: c.updater,
    });
    const ui = createConnectorConsole({
      engine: c.engine,
      api: localApi,
      hub: c.hub,
      store: c.store,
      version: "0.1.0",
      logs: ring,
      capture,
      support: edgeSupportSender(
        c.store,
        c.identity,
        (apiUrl, caPem) => new EdgeClient({ apiUrl, caPem, fetch: edgeFetch }),
      ),
      config: { dataDir: `${dir}/connector`, enrollmentKey: key, hostname: "ws-console" },
      sseKeepaliveMs: 1000,
      updates: c.updater,
    });
    await waitFor("the connector to connect", () => c.engine.state.kind === "connected");
    return { connector: c, ui, key };
  };

  return {
    dir,
    edge,
    edgeConsole,
    ring,
    tunnel,
    pump,
    capture,
    startConnectorWithKey,
    allowStream: () => (blockStream = false),
    async close() {
      clearInterval(clockSync);
      capture.close();
      await connector?.stop();
      edge.store.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
