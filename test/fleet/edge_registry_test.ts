/**
 * The edge registry against the real store (SQLite and a real PostgreSQL):
 * registration,
 * heartbeats, a lapse marked unhealthy exactly once, recovery, a clean stop,
 * and what the policy bundle lists at each step.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import {
  EdgeRegistry,
  type EdgeRegistryOptions,
  HEARTBEAT_MS,
  UNHEALTHY_AFTER_MS,
} from "../../src/fleet/edge_registry.ts";
import { PolicyService } from "../../src/edge/policy.ts";
import { Notifier } from "../../src/notify/mod.ts";
import { openStore, type Store } from "../../src/store/mod.ts";
import { pgBinDir, startPgCluster } from "../../src/store/pg/cluster.ts";
import { key32 } from "../http/helpers.ts";
import { storeTest } from "../store/backends.ts";

/** Waits until `cond` holds (feed delivery is asynchronous), at most 2 s. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 2000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function registry(
  store: Store,
  clock: ManualClock,
  name: string,
  region: string,
  over: Partial<EdgeRegistryOptions> = {},
) {
  return new EdgeRegistry({
    store,
    clock,
    notifier: new Notifier(store, clock),
    identity: {
      name,
      region,
      wgPublicKey: key32(),
      endpoints: [
        { transport: "udp", host: `${name}.test`, port: 443 },
        { transport: "tls", host: `${name}.test`, port: 443 },
      ],
      apiUrl: `https://${name}.test:8443`,
      bootstrapUrl: `http://${name}.test:8081`,
      caPem: `-----BEGIN CERTIFICATE-----\n${btoa(name)}\n-----END CERTIFICATE-----\n`,
      version: "0.1.0",
    },
    // Ticks are driven by the test; the interval must never fire on its own.
    heartbeatMs: 3600_000,
    ...over,
  });
}

storeTest(
  "edge registry: register, heartbeat, lapse marked once, recovery, stop; bundles follow",
  async (open) => {
    const store = open();
    const clock = new ManualClock();
    let connected = 3;
    const a = registry(store, clock, "edge-a", "eu-west");
    const b = registry(store, clock, "edge-b", "us-east");
    const notifier = new Notifier(store, clock);
    const policy = new PolicyService(store, clock, notifier, {
      edgeAddress: "100.64.0.1",
      edges: () => a.healthy(),
    });
    a.onChange(() => policy.edgesChanged());
    try {
      a.start({ devicesConnected: () => connected });
      b.start();
      // B's registration reaches A through the feed.
      await until(() => a.healthy().length === 2, "edge A to see edge B");
      assert.deepEqual(a.healthy().map((e) => [e.name, e.region]), [
        ["edge-a", "eu-west"],
        ["edge-b", "us-east"],
      ]);
      const row = store.edges.get(b.id)!;
      assert.equal(row.status, "up");
      assert.equal(row.bootstrapUrl, "http://edge-b.test:8081");
      let bundle = policy.bundleFor(null);
      assert.deepEqual(bundle.edges.map((e) => e.name), ["edge-a", "edge-b"]);
      assert.equal(bundle.edges[1].endpoints[0].host, "edge-b.test");
      assert.match(bundle.edges[1].caPem, /BEGIN CERTIFICATE/);
      const v1 = bundle.version;

      // A heartbeat carries the number of connected devices; the bundle does not change.
      clock.advance(HEARTBEAT_MS);
      a.tick();
      b.tick();
      assert.equal(store.edges.get(a.id)!.devicesConnected, 3);
      assert.equal(policy.bundleFor(null).version, v1);

      // B stops heartbeating: once its last one is older than 15 s, A marks it unhealthy.
      clock.advance(UNHEALTHY_AFTER_MS);
      a.tick();
      assert.equal(store.edges.get(b.id)!.status, "up", "15 s is not yet a lapse");
      clock.advance(1);
      connected = 5;
      a.tick();
      assert.equal(store.edges.get(b.id)!.status, "unhealthy");
      // A second edge noticing the same lapse does not notify again.
      const c = registry(store, clock, "edge-c", "");
      c.start();
      c.tick();
      const lapses = store.notifications.list({ kind: "edge_health" });
      assert.equal(lapses.length, 1);
      assert.equal(lapses[0].data.health, "unhealthy");
      assert.equal(lapses[0].data.name, "edge-b");
      assert.equal(lapses[0].severity, "warning");
      await until(
        () => a.healthy().map((e) => e.name).join() === "edge-a,edge-c",
        "edge B to leave the list and edge C to join it",
      );
      bundle = policy.bundleFor(null);
      assert.deepEqual(bundle.edges.map((e) => e.name), ["edge-a", "edge-c"]);
      assert.notEqual(bundle.version, v1);
      const viewB = a.views().find((v) => v.name === "edge-b")!;
      assert.equal(viewB.health, "unhealthy");
      assert.equal(viewB.heartbeatAgeMs, UNHEALTHY_AFTER_MS + 1);
      assert.equal(a.views().find((v) => v.self)!.devicesConnected, 5);

      // B comes back: its own heartbeat marks it up again and says so once.
      b.tick();
      const health = store.notifications.list({ kind: "edge_health" });
      assert.equal(health.length, 2);
      assert.equal(health.find((n) => n.data.health === "healthy")?.data.name, "edge-b");
      await until(() => a.healthy().length === 3, "edge B to be listed again");

      // A clean stop takes B out of every edge's list at once (no 15 s wait).
      b.stop();
      assert.equal(store.edges.get(b.id)!.status, "stopped");
      await until(() => a.healthy().length === 2, "the stopped edge to leave the list");
      assert.equal(a.views().find((v) => v.name === "edge-b")!.health, "stopped");
      assert.equal(a.views().find((v) => v.name === "edge-b")!.devicesConnected, 0);
      c.stop();

      // An admin removing a running edge's row: its next heartbeat registers it again.
      assert.equal(store.edges.delete(a.id), true);
      a.tick();
      assert.equal(store.edges.get(a.id)?.status, "up");
    } finally {
      a.stop();
      b.stop();
    }
  },
);

Deno.test("edge registry: a second process on the same database file sees the edges (no feed between them)", async () => {
  const dir = await Deno.makeTempDir();
  const s1 = openStore(`${dir}/edge.db`);
  const s2 = openStore(`${dir}/edge.db`);
  const clock = new ManualClock();
  const a = registry(s1, clock, "edge-a", "");
  const b = registry(s2, clock, "edge-b", "");
  try {
    a.start();
    b.start();
    // Separate feeds: A learns of B from its own periodic re-read of the store.
    assert.equal(a.healthy().length, 1);
    a.tick();
    assert.deepEqual(a.healthy().map((e) => e.name), ["edge-a", "edge-b"]);
    assert.equal(s1.edges.list().length, 2);
  } finally {
    a.stop();
    b.stop();
    s1.close();
    s2.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "edge registry: two edges on one PostgreSQL database list each other",
  ignore: pgBinDir() === null,
  async fn() {
    const cluster = await startPgCluster();
    const url = await cluster.createDatabase("fleet");
    const s1 = openStore(url);
    const s2 = openStore(url);
    const clock = new ManualClock();
    const a = registry(s1, clock, "edge-a", "eu-west");
    const b = registry(s2, clock, "edge-b", "us-east");
    try {
      a.start({ devicesConnected: () => 2 });
      b.start();
      a.tick();
      b.tick();
      assert.deepEqual(a.healthy().map((e) => e.name), ["edge-a", "edge-b"]);
      assert.deepEqual(b.healthy().map((e) => e.name), ["edge-a", "edge-b"]);
      assert.equal(s2.edges.get(a.id)?.devicesConnected, 2);
      // A lapses; both notice, one marks it (and notifies).
      clock.advance(UNHEALTHY_AFTER_MS + 1);
      b.tick();
      const bv = b.views().find((v) => v.name === "edge-a")!;
      assert.equal(bv.health, "unhealthy");
      assert.equal(s1.notifications.list({ kind: "edge_health" }).length, 1);
      assert.deepEqual(b.healthy().map((e) => e.name), ["edge-b"]);
    } catch (err) {
      console.error(cluster.log().slice(-4000));
      throw err;
    } finally {
      a.stop();
      b.stop();
      s1.close();
      s2.close();
      await cluster.stop();
    }
  },
});
