/**
 * The engine over a fleet of two edges (fake edge API, fake data plane, a
 * network port whose bootstrap probe answers from a table): it moves its
 * tunnel, API client and probes to the nearer edge, keeps every edge outside
 * the tunnel, fails back over when that edge stops answering, and shows the
 * choice in its status.
 */
import assert from "node:assert/strict";
import { ManualClock, ManualTimers } from "../../../src/clock.ts";
import { Engine } from "../../../src/connector/engine/mod.ts";
import { FakeEdgeApiFactory } from "../../../src/connector/fake_edge_api.ts";
import { FakeNetworkPort } from "../../../src/connector/network_port.ts";
import type { CaptiveProbeResult } from "../../../src/connector/network/captive.ts";
import { NotificationHub } from "../../../src/connector/notifications.ts";
import { FakeTunnelPort } from "../../../src/connector/tunnel_port.ts";
import { edgeIdOf } from "../../../src/fleet/edge_registry.ts";
import { setLogSinks } from "../../../src/log.ts";
import { PolicyBundle } from "../../../src/policy/types.ts";
import { keyFor, makeIdentity, memoryState, until } from "./helpers.ts";

setLogSinks([]);

/** The fake network with a bootstrap probe: latency by URL, or unreachable. */
class ProbedNetwork extends FakeNetworkPort {
  rtt = new Map<string, number | null>();
  probed: string[] = [];
  probeEdge(url: string): Promise<CaptiveProbeResult> {
    this.probed.push(url);
    const ms = this.rtt.get(url) ?? null;
    return Promise.resolve(
      ms === null ? { kind: "unreachable", detail: "timed out" } : { kind: "clear", latencyMs: ms },
    );
  }
}

const FAR_KEY = "A".repeat(43) + "="; // the fake edge API's enrolment answer
const NEAR_KEY = "B".repeat(43) + "=";
const FAR_BOOT = "http://192.0.2.1:8081";
const NEAR_BOOT = "http://198.51.100.7:8081";

function fleetBundle(version: string, withNear = true) {
  const far = {
    id: edgeIdOf(FAR_KEY),
    name: "edge-far",
    region: "us-east",
    publicKey: FAR_KEY,
    endpoints: [{ transport: "udp", host: "192.0.2.1", port: 443 }],
    apiUrl: "https://192.0.2.1:8443",
    bootstrapUrl: FAR_BOOT,
    caPem: "far-ca",
  };
  const near = {
    id: edgeIdOf(NEAR_KEY),
    name: "edge-near",
    region: "eu-west",
    publicKey: NEAR_KEY,
    endpoints: [
      { transport: "udp", host: "198.51.100.7", port: 443 },
      { transport: "tls", host: "198.51.100.7", port: 443 },
    ],
    apiUrl: "https://198.51.100.7:8443",
    bootstrapUrl: NEAR_BOOT,
    caPem: "near-ca",
  };
  return PolicyBundle.parse({
    version,
    generatedAt: new Date().toISOString(),
    appProfile: { name: "default", forwarding: { name: "fp" } },
    edges: withNear ? [far, near] : [far],
  });
}

Deno.test("engine: moves to the nearer edge of the fleet, fails back over when it dies", async () => {
  const timers = new ManualTimers(new ManualClock());
  const store = memoryState();
  const edge = new FakeEdgeApiFactory();
  edge.configure = (c) => (c.policy = fleetBundle("v1"));
  const tunnel = new FakeTunnelPort();
  const hub = new NotificationHub(store, () => timers.clock.now());
  const network = new ProbedNetwork();
  network.rtt.set(FAR_BOOT, 60).set(NEAR_BOOT, 12);
  const engine = new Engine({
    store,
    identity: await makeIdentity(),
    tunnel,
    network,
    hub,
    makeClient: (u, ca) => edge.client(u, ca),
    fetchCa: (p) => edge.fetchCa(p),
    device: { hostname: "ws1", os: "debian", osVersion: "12", connectorVersion: "0.1.0" },
    enrollmentKey: keyFor("192.0.2.1"),
    clock: timers.clock,
    timers,
    resolveHost: () => Promise.resolve([]),
  });
  try {
    await engine.start();
    await until("connected", () => engine.state.kind === "connected");
    // The first measurement names the near edge; the one 10 s later confirms it.
    await until("the first measurement", () => engine.status().edgeSelection?.measuredAt != null);
    assert.equal(tunnel.configs.at(-1)?.edgePublicKey, FAR_KEY, "not on one measurement");
    await timers.advance(10_100);
    await until(
      "the move to the near edge",
      () => tunnel.configs.at(-1)?.edgePublicKey === NEAR_KEY,
    );
    const cfg = tunnel.configs.at(-1)!;
    assert.deepEqual(cfg.endpoints.map((e) => `${e.transport}:${e.host}`), [
      "udp:198.51.100.7",
      "tls:198.51.100.7",
    ]);
    assert.equal(cfg.caPem, "near-ca", "the TLS fallback trusts the near edge's CA");
    // Both edges stay outside the tunnel, so either can be measured and reached.
    assert.ok(cfg.routes.bypass4.includes("198.51.100.7/32"), cfg.routes.bypass4.join());
    assert.ok(cfg.routes.bypass4.includes("192.0.2.1/32"), cfg.routes.bypass4.join());
    // The API client follows the tunnel.
    assert.deepEqual(edge.made.at(-1), { apiUrl: "https://198.51.100.7:8443", caPem: "near-ca" });
    const moved = store.listNotifications({ type: "edge_changed" });
    assert.equal(moved.length, 1);
    assert.match(moved[0].message, /edge-near.*eu-west.*nearest/);
    const st = engine.status();
    assert.equal(st.edge, "https://198.51.100.7:8443");
    assert.deepEqual(st.edgeSelection?.current, {
      id: edgeIdOf(NEAR_KEY),
      name: "edge-near",
      region: "eu-west",
      rttMs: 12,
    });
    assert.deepEqual(st.edgeSelection?.alternatives.map((a) => [a.name, a.rttMs]), [
      ["edge-far", 60],
    ]);

    // The near edge stops answering: within 10 s the connector is back on the far one.
    network.rtt.set(NEAR_BOOT, null);
    const before = tunnel.configs.length;
    await timers.advance(10_000);
    assert.ok(tunnel.configs.length > before);
    assert.equal(tunnel.configs.at(-1)!.edgePublicKey, FAR_KEY);
    assert.equal(edge.made.at(-1)!.apiUrl, "https://192.0.2.1:8443");
    assert.equal(engine.status().edgeSelection?.lastMove?.reason, "failover");
    await until("connected again", () => engine.state.kind === "connected");
  } finally {
    await engine.stop();
    store.close();
  }
  assert.equal(timers.pending, 0, "stop leaves no timer behind");
});

Deno.test("engine: an edge of one stays on the enrolment's own API and key", async () => {
  const timers = new ManualTimers(new ManualClock());
  const store = memoryState();
  const edge = new FakeEdgeApiFactory();
  edge.configure = (c) => (c.policy = fleetBundle("v1", false));
  const tunnel = new FakeTunnelPort();
  const network = new ProbedNetwork();
  network.rtt.set(FAR_BOOT, 30);
  const engine = new Engine({
    store,
    identity: await makeIdentity(),
    tunnel,
    network,
    hub: new NotificationHub(store, () => timers.clock.now()),
    makeClient: (u, ca) => edge.client(u, ca),
    fetchCa: (p) => edge.fetchCa(p),
    device: { hostname: "ws1", os: "debian", osVersion: "12", connectorVersion: "0.1.0" },
    enrollmentKey: keyFor("192.0.2.1"),
    clock: timers.clock,
    timers,
    resolveHost: () => Promise.resolve([]),
  });
  try {
    await engine.start();
    await until("connected", () => engine.state.kind === "connected");
    await until("measured", () => engine.status().edgeSelection?.current?.rttMs === 30);
    assert.ok(tunnel.configs.every((c) => c.edgePublicKey === FAR_KEY));
    // The enrolment's own API URL (the key's), not the registry's spelling of it.
    assert.ok(edge.made.every((m) => m.apiUrl === "https://192.0.2.1:8443"));
    assert.equal(store.listNotifications({ type: "edge_changed" }).length, 0);
    network.probed.length = 0;
    await timers.advance(60_000);
    assert.deepEqual(network.probed.filter((u) => u === FAR_BOOT).length, 0, "no liveness probes");
  } finally {
    await engine.stop();
    store.close();
  }
});
