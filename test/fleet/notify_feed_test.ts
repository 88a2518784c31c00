/**
 * The change feed over LISTEN/NOTIFY on a real PostgreSQL, with two stores
 * on one database as two edges have: a message goes out only when its
 * transaction commits (never after a rollback, never before COMMIT); the
 * payload limit is exactly NOTIFY's; when an edge's listen connection is
 * killed (pg_terminate_backend) or the server restarts, the feed listens
 * again, messages after that arrive, and what was published while it was
 * deaf reaches its consumers through their resync: the tunnel's peer set is
 * reconciled and the notifications stored meanwhile are delivered.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import type { EdgeContext } from "../../src/edge/context.ts";
import { MemoryTunnelPort } from "../../src/edge/dataplane_port.ts";
import { FleetTunnelPort } from "../../src/edge/peer_sync.ts";
import { hostAddress, MAX_HOST } from "../../src/edge/addresses.ts";
import { Notifier } from "../../src/notify/mod.ts";
import { MAX_PAYLOAD, openStore, type Store } from "../../src/store/mod.ts";
import { pgBinDir, type PgCluster, startPgCluster } from "../../src/store/pg/cluster.ts";
import { deviceRecord } from "../store/backends.ts";

async function until(cond: () => boolean, what: string, ms = 5000): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - t0;
}

/** The next item of `it`, or a failure after `ms`. */
async function nextWithin<T>(it: AsyncIterator<T>, what: string, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out waiting for ${what}`)), ms);
  });
  try {
    const r = await Promise.race([it.next(), timeout]);
    return r.value as T;
  } finally {
    clearTimeout(timer);
  }
}

function edgeCtx(store: Store, tunnel: MemoryTunnelPort, clock: ManualClock): EdgeContext {
  return { store, tunnel, clock, network: "100.64.0.0/16" } as unknown as EdgeContext;
}

/** The backend pid of the listen connection of the store opened as `application`. */
function listenPid(db: Store, application: string): number | undefined {
  const r = db.db.get<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE application_name = ?",
    `${application} feed`,
  );
  return r ? Number(r.pid) : undefined;
}

/** Terminates a backend and returns once the server has no such process any more. */
function terminate(db: Store, pid: number): void {
  db.db.get("SELECT pg_terminate_backend(?) AS t", pid);
  // Synchronous on purpose: the event loop does not run, so the killed
  // connection cannot be replaced before the test publishes into the gap.
  const end = Date.now() + 5000;
  while (db.db.get("SELECT 1 AS x FROM pg_stat_activity WHERE pid = ?", pid)) {
    if (Date.now() > end) throw new Error(`Backend ${pid} did not exit`);
  }
}

async function withTwoEdges(
  fn: (a: Store, b: Store, cluster: PgCluster) => Promise<void>,
): Promise<void> {
  const cluster = await startPgCluster();
  const url = await cluster.createDatabase("feed");
  const a = openStore(url, { application: "edge-a" });
  const b = openStore(url, { application: "edge-b" });
  try {
    await fn(a, b, cluster);
  } catch (err) {
    console.error(cluster.log().slice(-4000));
    throw err;
  } finally {
    await a.close();
    await b.close();
    await cluster.stop();
  }
}

Deno.test({
  name: "pg feed: delivered on COMMIT only, never after a rollback; payload limit is NOTIFY's",
  ignore: pgBinDir() === null,
  async fn() {
    await withTwoEdges(async (a, b) => {
      const got: string[] = [];
      b.feed.listen("test_channel", (p) => got.push(p));
      await b.feed.ready();

      // Rolled back: a whole transaction, and a savepoint inside a committed one.
      assert.throws(() =>
        a.transaction(() => {
          a.feed.publish("test_channel", "rolled back");
          throw new Error("abort");
        }), /abort/);
      a.transaction(() => {
        a.feed.publish("test_channel", "outer");
        assert.throws(() =>
          a.transaction(() => {
            a.feed.publish("test_channel", "savepoint rolled back");
            throw new Error("inner");
          }), /inner/);
      });
      await until(() => got.includes("outer"), "the committed message");

      // Not before COMMIT: a message published later outside the open
      // transaction arrives while the transaction's own has not.
      a.db.exec("BEGIN");
      a.feed.publish("test_channel", "in transaction");
      b.feed.publish("test_channel", "marker");
      await until(() => got.includes("marker"), "the marker");
      assert.ok(!got.includes("in transaction"), got.join(","));
      a.db.exec("COMMIT");
      await until(() => got.includes("in transaction"), "the message after COMMIT");
      assert.deepEqual(got, ["outer", "marker", "in transaction"]);

      // The limit is counted in UTF-8 bytes and is exactly what the server takes.
      got.length = 0;
      const ascii = "x".repeat(MAX_PAYLOAD);
      const multi = "é".repeat((MAX_PAYLOAD - 1) / 2) + "a"; // 7,999 bytes
      a.feed.publish("test_channel", ascii);
      a.feed.publish("test_channel", multi);
      await until(() => got.length === 2, "the largest payloads");
      assert.deepEqual(got, [ascii, multi]);
      for (const bad of ["x".repeat(MAX_PAYLOAD + 1), "é".repeat(4000), "a\0b"]) {
        assert.throws(() => a.feed.publish("test_channel", bad), /bytes|NUL/);
      }
      assert.throws(
        () => a.db.get("SELECT pg_notify(?, ?)", "test_channel", "x".repeat(MAX_PAYLOAD + 1)),
        /payload string too long/,
      );
      assert.throws(() => a.feed.publish("Bad-Channel", "x"), /Invalid feed channel/);
    });
  },
});

Deno.test({
  name: "pg feed: after the listen connection is killed or the server restarts, consumers resync",
  ignore: pgBinDir() === null,
  async fn() {
    await withTwoEdges(async (a, b, cluster) => {
      const clock = new ManualClock();
      const got: string[] = [];
      let reconnects = 0;
      b.feed.listen("test_channel", (p) => got.push(p));
      b.feed.onReconnect(() => reconnects++);
      const na = new Notifier(a, clock);
      const nb = new Notifier(b, clock);
      const tunnelA = new MemoryTunnelPort();
      const tunnelB = new MemoryTunnelPort();
      const pa = new FleetTunnelPort(tunnelA, edgeCtx(a, tunnelA, clock), "edge-a", []);
      const pb = new FleetTunnelPort(tunnelB, edgeCtx(b, tunnelB, clock), "edge-b", []);
      await a.feed.ready();
      await b.feed.ready();
      // Becoming live counts as "may have missed" once (the gap before LISTEN).
      await until(() => reconnects === 1, "the first live report");
      const sub = nb.subscribe({ kinds: ["policy_updated"] });
      try {
        let n = 0;
        const enrolOnA = () => {
          const d = deviceRecord(`dev_${++n}`);
          const host = a.transaction(() => {
            a.devices.insert(d);
            return a.leases.allocate(d.id, clock.now(), MAX_HOST)!;
          });
          pa.upsertPeer({
            id: d.id,
            wgPublicKey: d.wgPublicKey,
            address: hostAddress("100.64.0.0/16", host),
          });
          return d.wgPublicKey;
        };

        // Killed listen connection: everything published in the gap is lost
        // by NOTIFY and made good by the consumers' resync.
        const pid = listenPid(b, "edge-b");
        assert.ok(pid, "edge B's listen connection is in pg_stat_activity");
        let before = reconnects;
        terminate(b, pid);
        a.feed.publish("test_channel", "lost");
        const key1 = enrolOnA();
        na.publish({ kind: "policy_updated", revision: 1, objectKind: "segment", by: "admin" });
        const t0 = performance.now();
        await until(() => reconnects > before, "edge B's feed to listen again");
        const reconnectMs = performance.now() - t0;
        const newPid = listenPid(b, "edge-b");
        assert.ok(newPid && newPid !== pid, `new listen backend ${newPid} (was ${pid})`);
        assert.ok(tunnelB.peers.has(key1), "the peer enrolled in the gap is on edge B");
        const missed = await nextWithin(sub, "the policy change of the gap on edge B");
        assert.equal(missed.data.revision, 1);
        a.feed.publish("test_channel", "after kill");
        await until(() => got.includes("after kill"), "a message after the reconnect");
        assert.deepEqual(got, ["after kill"], "the gap's message itself was not delivered");

        // Server restart: both of B's connections go; the feed comes back.
        before = reconnects;
        await cluster.restart();
        await until(() => reconnects > before, "edge B's feed after the server restart", 15_000);
        const key2 = enrolOnA();
        na.publish({ kind: "policy_updated", revision: 2, objectKind: "segment", by: "admin" });
        await until(() => tunnelB.peers.has(key2), "a peer after the restart on edge B");
        assert.equal(
          (await nextWithin(sub, "the policy change after the restart")).data.revision,
          2,
        );
        a.feed.publish("test_channel", "after restart");
        await until(() => got.includes("after restart"), "a message after the restart");
        console.log(`listen connection back ${reconnectMs.toFixed(0)} ms after being killed`);
      } finally {
        sub.close();
        pa.close();
        pb.close();
      }
    });
  },
});
