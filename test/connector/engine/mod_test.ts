/**
 * The engine as a whole over fakes: the fake edge API, the fake data plane
 * and network port, and manual timers, so minutes of background work run in
 * milliseconds and are counted exactly.
 */
import assert from "node:assert/strict";
import { ManualClock, ManualTimers } from "../../../src/clock.ts";
import { EdgeApiError, EdgeUnreachableError } from "../../../src/connector/edge_api.ts";
import { Engine, type EngineDeps } from "../../../src/connector/engine/mod.ts";
import { FakeEdgeApiFactory } from "../../../src/connector/fake_edge_api.ts";
import { FakeNetworkPort } from "../../../src/connector/network_port.ts";
import { NotificationHub } from "../../../src/connector/notifications.ts";
import { FakeTunnelPort } from "../../../src/connector/tunnel_port.ts";
import { setLogSinks } from "../../../src/log.ts";
import { keyFor, makeBundle, makeIdentity, memoryState, until } from "./helpers.ts";
import { routedThroughTunnel } from "../../../src/policy/routes.ts";
import { SystemNetworkPort } from "../../../src/connector/network/system_port.ts";
import { FakeNetworkMonitor } from "../../../src/connector/network/monitor.ts";
import { StaticFactsSource } from "../../../src/connector/network/facts.ts";
import type { NetworkFacts } from "../../../src/policy/trusted_network.ts";

setLogSinks([]);

async function setup(o: Partial<EngineDeps> = {}) {
  const timers = new ManualTimers(new ManualClock());
  const store = memoryState();
  const identity = await makeIdentity();
  const edge = new FakeEdgeApiFactory();
  edge.configure = (c) => (c.policy = makeBundle("v1"));
  const tunnel = new FakeTunnelPort();
  const hub = new NotificationHub(store, () => timers.clock.now());
  const engine = new Engine({
    store,
    identity,
    tunnel,
    network: new FakeNetworkPort(),
    hub,
    makeClient: (u, ca) => edge.client(u, ca),
    fetchCa: (p) => edge.fetchCa(p),
    device: { hostname: "ws1", os: "debian", osVersion: "12", connectorVersion: "0.1.0" },
    enrollmentKey: keyFor(),
    collectPosture: () => Promise.resolve({ payload: "{}", signature: "" }),
    clock: timers.clock,
    timers,
    // No real DNS: the allow-list of a block resolves nothing.
    resolveHost: () => Promise.resolve([]),
    ...o,
  });
  const close = async () => {
    await engine.stop();
    store.close();
  };
  return { timers, store, identity, edge, tunnel, hub, engine, close };
}

Deno.test("engine: enrols, connects, and runs its loops at their periods", async () => {
  const s = await setup({ heartbeatSec: 30, postureSec: 300 });
  try {
    await s.engine.start();
    await until("connected", () => s.engine.state.kind === "connected");
    assert.equal(s.tunnel.configs.length, 1);
    const client = s.edge.last!;
    assert.equal(client.credential, "cred-fake");
    assert.equal(client.streams, 1, "the policy stream is followed");
    // Ten minutes: heartbeat first within 1 s, then every 30 s; posture at 1 s
    // and every 300 s; the policy poll every 60 s (the bundle's default).
    await s.timers.advance(600_000);
    assert.equal(client.count("heartbeat"), 20);
    assert.equal(client.count("reportPosture"), 2);
    assert.equal(client.count("fetchPolicy"), 10);
    assert.ok(client.heartbeats.every((h) => h.state === "connected" && h.transport === "udp"));
  } finally {
    await s.close();
  }
  assert.equal(s.timers.pending, 0, "stop leaves no timer behind");
});

Deno.test("engine: a refused credential in a heartbeat forgets the enrolment", async () => {
  const s = await setup({ heartbeatSec: 30 });
  try {
    await s.engine.start();
    await until("connected", () => s.engine.state.kind === "connected");
    const client = s.edge.last!;
    client.failures.set("heartbeat", new EdgeApiError("bad_credential", "Unknown device.", 401));
    await s.timers.advance(1000);
    // Forgetting seals the identity anew (WebCrypto): wait for the end of it.
    await until("the client closed", () => client.closed);
    assert.equal(s.engine.state.kind, "unenrolled");
    assert.equal(s.store.getEnrollment(), null);
    assert.equal(s.identity.credential, null);
    assert.equal(client.closed, true);
    assert.equal(s.store.listNotifications({ type: "credential_rejected" }).length, 1);
    const hb = client.count("heartbeat");
    await s.timers.advance(300_000);
    assert.equal(client.count("heartbeat"), hb, "no loops without an enrolment");
  } finally {
    await s.close();
  }
});

Deno.test("engine: an unreachable edge at enrolment is retried with backoff until it answers", async () => {
  const s = await setup({ enrollRetryMs: { min: 1000, max: 4000 } });
  s.edge.caError = new EdgeUnreachableError("Cannot fetch the edge CA: connection refused");
  try {
    await s.engine.start();
    await until("the first failure", () => s.engine.state.kind === "error");
    assert.match(s.engine.state.reason ?? "", /connection refused/);
    // Retries at 1, 2, 4, 4 s: four more attempts in 11 s, each failing.
    await s.timers.advance(11_000);
    const told = s.store.listNotifications({ type: "enroll_failed" });
    assert.equal(told.length, 1, "the first failure is told, the retries are not");
    assert.match(told[0].message, /retrying in the background$/);
    assert.equal(s.edge.clients.length, 0);
    s.edge.caError = null;
    await s.timers.advance(4000);
    await until("connected", () => s.engine.state.kind === "connected");
    assert.equal(s.edge.clients.length, 1);
  } finally {
    await s.close();
  }
});

Deno.test("engine: a captive portal pauses protection for the policy's window", async () => {
  const s = await setup();
  try {
    await s.engine.start();
    await until("connected", () => s.engine.state.kind === "connected");
    const window = s.engine.failOpenSettings().captivePortalWindowMin;
    assert.equal((await s.engine.captiveDetected()).ok, true);
    assert.equal(s.engine.state.kind, "captive_portal");
    await s.timers.advance(window * 60_000 - 1000);
    assert.equal(s.engine.state.kind, "captive_portal");
    await s.timers.advance(1000);
    assert.notEqual(s.engine.state.kind, "captive_portal", "the window ended");
  } finally {
    await s.close();
  }
});

Deno.test("engine: a named edge is resolved, kept out of the tunnel, and re-resolved every minute", async () => {
  let answer = ["198.51.100.7"];
  const asked: string[] = [];
  const s = await setup({
    edgeResolveSec: 60,
    resolveHost: (h) => {
      asked.push(h);
      return Promise.resolve(answer);
    },
  });
  s.edge.configure = (c) => {
    c.policy = makeBundle("v1");
    c.enrollResponse = {
      ...c.enrollResponse,
      endpoints: [{ transport: "udp", host: "edge.example.test", port: 443 }],
    };
  };
  const routed = (cfg: { routes: { tunnel4: string[] } }, ip: string) =>
    routedThroughTunnel({ ...cfg.routes, tunnel6: [], bypass4: [], bypass6: [] }, ip);
  try {
    await s.engine.start();
    await until("connected", () => s.engine.state.kind === "connected");
    assert.ok(asked.includes("edge.example.test"));
    const first = s.tunnel.configs.at(-1)!;
    assert.ok(!routed(first, "198.51.100.7"), "the resolved edge stays outside");
    assert.ok(routed(first, "198.51.100.8"));
    const n = s.tunnel.configs.length;
    // Same answer a minute later: nothing to do.
    await s.timers.advance(60_000);
    await until("a lookup", () => asked.length >= 2);
    assert.equal(s.tunnel.configs.length, n);
    // The name moves: the next periodic lookup reroutes.
    answer = ["198.51.100.9"];
    await s.timers.advance(60_000);
    await until("the reroute", () => s.tunnel.configs.length === n + 1);
    const moved = s.tunnel.configs.at(-1)!;
    assert.ok(!routed(moved, "198.51.100.9"));
    assert.ok(routed(moved, "198.51.100.7"));
  } finally {
    await s.close();
  }
  assert.equal(s.timers.pending, 0, "stop leaves no timer behind");
});

Deno.test("engine: an edited trusted-network criterion is explained at once, in every state", async (t) => {
  // The real evaluator over fixed facts: a home network that matches no criterion.
  const home: NetworkFacts = {
    dnsServers: ["198.51.100.53"],
    dnsSearchDomains: [],
    resolved: new Map(),
    defaultGateways: ["198.51.100.254"],
    addresses: ["198.51.100.10/24"],
    beaconFingerprints: new Map(),
    vpnDefaultRoute: false,
  };
  const bundle = (version: string, dnsServers: string[], failOpen = {}) =>
    makeBundle(version, {
      forwarding: { name: "fp", trusted: { dnsServers, match: "any" } },
      failOpen,
    });
  const rows: { name: string; before?: (s: Awaited<ReturnType<typeof setup>>) => Promise<void> }[] =
    [
      { name: "connected" },
      {
        name: "fail-open (the edge is not retried for a re-worded verdict)",
        before: async (s) => {
          s.tunnel.emit({ type: "handshake_timeout" });
          await until("fail-open", () => s.engine.state.kind === "fail_open");
        },
      },
    ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const network = new SystemNetworkPort({
        monitor: new FakeNetworkMonitor(),
        facts: new StaticFactsSource(home),
        ourInterface: "pcc0",
        identity: () => Promise.resolve("home"),
      });
      const s = await setup({ network });
      s.edge.configure = (c) => (c.policy = bundle("v1", ["10.9.9.9"]));
      try {
        await s.engine.start();
        await until("connected", () => s.engine.state.kind === "connected");
        const why = (v = s.engine.status().network) => `${v?.explanation} ${v?.unmatched}`;
        assert.match(why(), /10\.9\.9\.9/);
        await row.before?.(s);
        const kind = s.engine.state.kind;
        const bringUps = s.tunnel.configs.length;
        // The admin edits the criterion: still off-trusted, still "tunnel".
        s.edge.last!.policy = bundle("v2", ["10.7.7.7"]);
        await s.engine.updatePolicy();
        await until(
          "the new criterion in the explanation",
          () => /10\.7\.7\.7/.test(why()),
        );
        const st = s.engine.status().network!;
        assert.doesNotMatch(why(), /10\.9\.9\.9/, "the old criterion is gone");
        assert.equal(st.type, "off_trusted");
        assert.equal(s.engine.state.kind, kind, "the same state");
        assert.equal(s.tunnel.configs.length, bringUps, "no new bring-up");
        const told = s.store.listNotifications({ type: "network_changed", limit: 1 })[0];
        assert.match(JSON.stringify(told.data), /10\.7\.7\.7/);
      } finally {
        await s.close();
        await network.close();
      }
    });
  }
});

Deno.test("engine: a tunnel that cannot form applies the fail mode and stays there until it forms", async (t) => {
  const REASON =
    "UDP handshakes to 192.0.2.1:4443 went unanswered for 10 s and TLS fallback is off";
  const rows = [
    { mode: "direct", state: "fail_open", notice: "security_off", told: /NOT protected/ },
    { mode: "blocked", state: "fail_closed", notice: "traffic_blocked", told: /Traffic blocked/ },
  ] as const;
  for (const row of rows) {
    await t.step(`${row.mode} → ${row.state}`, async () => {
      const s = await setup({ heartbeatSec: 30 });
      s.edge.configure = (c) => (c.policy = makeBundle("v1", {
        forwarding: { name: "fp", tlsFallback: false, udpTimeoutSec: 5 },
        failOpen: { edgeUnreachable: row.mode, retries: 2 },
      }));
      s.tunnel.autoUp = null;
      try {
        await s.engine.start();
        await until("connecting", () => s.engine.state.kind === "connecting");
        assert.equal(s.tunnel.configs.at(-1)?.giveUpSec, 10, "UDP timeout × retries");
        s.tunnel.emit({ type: "handshake_timeout", reason: REASON });
        await until(row.state, () => s.engine.state.kind === row.state);
        await until(`fail mode ${row.mode}`, () => s.tunnel.failMode === row.mode);
        assert.equal(s.engine.state.reason, REASON);
        const told = s.store.listNotifications({ type: row.notice, limit: 1 })[0];
        assert.match(told.message, row.told);
        assert.ok(told.message.includes(REASON), told.message);
        // The edge's API answers (heartbeats go through): no flapping back to a black hole.
        const bringUps = s.tunnel.configs.length;
        await s.timers.advance(120_000);
        assert.ok(s.edge.last!.count("heartbeat") >= 3);
        assert.equal(s.engine.state.kind, row.state, "still in the fail mode");
        assert.equal(s.tunnel.configs.length, bringUps, "the tunnel was left to retry on its own");
        // The admin turns TLS fallback on: the tunnel retrying in the background gets it.
        s.edge.last!.policy = makeBundle("v2", {
          forwarding: { name: "fp", tlsFallback: true, udpTimeoutSec: 5 },
          failOpen: { edgeUnreachable: row.mode, retries: 2 },
        });
        await s.engine.updatePolicy();
        await until("reconfigured", () => s.tunnel.configs.length > bringUps);
        assert.equal(s.tunnel.configs.at(-1)?.tlsFallback, true);
        assert.equal(s.engine.state.kind, row.state, "until it forms");
        // The tunnel forms in the background: protected again.
        s.tunnel.emit({ type: "up", transport: "udp" });
        await until("connected", () => s.engine.state.kind === "connected");
        assert.equal(s.tunnel.failMode, null);
      } finally {
        await s.close();
      }
    });
  }
});
