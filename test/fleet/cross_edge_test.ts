/**
 * Two edges on one real PostgreSQL database (two stores opened on the same
 * URL, as two edge processes do), joined only by the database: the change
 * feed carries messages between them (and drops those of a rolled-back
 * transaction), a notification stored by one edge reaches the other's
 * subscribers (so a policy change wakes devices' streams there), and a
 * device's peer added on one edge appears in the other's tunnel.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import type { EdgeContext } from "../../src/edge/context.ts";
import { MemoryTunnelPort } from "../../src/edge/dataplane_port.ts";
import { FleetTunnelPort } from "../../src/edge/peer_sync.ts";
import { hostAddress, MAX_HOST } from "../../src/edge/addresses.ts";
import { Notifier } from "../../src/notify/mod.ts";
import { openStore, type Store } from "../../src/store/mod.ts";
import { pgBinDir, startPgCluster } from "../../src/store/pg/cluster.ts";
import { deviceRecord } from "../store/backends.ts";

async function until(cond: () => boolean, what: string, ms = 2000): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - t0;
}

/** The parts of an edge context the peer sync reads (machine devices: no users, no sign-ins). */
function edgeCtx(store: Store, tunnel: MemoryTunnelPort, clock: ManualClock): EdgeContext {
  return { store, tunnel, clock, network: "100.64.0.0/16" } as unknown as EdgeContext;
}

Deno.test({
  name: "two edges on one PostgreSQL: feed, notifications and tunnel peers cross between them",
  ignore: pgBinDir() === null,
  async fn() {
    const cluster = await startPgCluster();
    const url = await cluster.createDatabase("fleet");
    const a = openStore(url);
    const b = openStore(url);
    const clock = new ManualClock();
    try {
      // The feed: a message from A reaches B; one in a rolled-back transaction never does.
      const got: string[] = [];
      b.feed.listen("test_channel", (p) => got.push(p));
      await b.feed.ready();
      assert.throws(() =>
        a.transaction(() => {
          a.feed.publish("test_channel", "rolled back");
          throw new Error("abort");
        }), /abort/);
      a.feed.publish("test_channel", "hello");
      const feedMs = await until(() => got.length === 1, "the message on edge B");
      assert.deepEqual(got, ["hello"]);

      // A policy change notified on A reaches B's subscribers (its device streams).
      const na = new Notifier(a, clock);
      const nb = new Notifier(b, clock);
      await b.feed.ready();
      const sub = nb.subscribe({ kinds: ["policy_updated"] });
      const next = sub.next();
      const t0 = performance.now();
      na.publish({ kind: "policy_updated", revision: 7, objectKind: "segment", by: "admin" });
      const n = await next;
      const notifyMs = performance.now() - t0;
      assert.equal(n.value?.kind, "policy_updated");
      assert.equal(n.value?.data.revision, 7);
      assert.ok(notifyMs < 2000, `took ${notifyMs} ms`);
      sub.close();

      // A device enrolled through A (its row and lease in the shared store) is a peer on B.
      const tunnelA = new MemoryTunnelPort();
      const tunnelB = new MemoryTunnelPort();
      const pa = new FleetTunnelPort(tunnelA, edgeCtx(a, tunnelA, clock), "edge-a", []);
      const pb = new FleetTunnelPort(tunnelB, edgeCtx(b, tunnelB, clock), "edge-b", []);
      await b.feed.ready();
      const d = deviceRecord("dev_1");
      const host = a.transaction(() => {
        a.devices.insert(d);
        return a.leases.allocate(d.id, clock.now(), MAX_HOST)!;
      });
      const address = hostAddress("100.64.0.0/16", host);
      pa.upsertPeer({ id: d.id, wgPublicKey: d.wgPublicKey, address });
      const peerMs = await until(() => tunnelB.peers.has(d.wgPublicKey), "the peer on edge B");
      assert.equal(tunnelB.peers.get(d.wgPublicKey)?.address, address);
      a.devices.setDisabled(d.id, true, clock.now());
      pa.removePeer(d.wgPublicKey);
      await until(() => tunnelB.peers.size === 0, "the disabled device to leave edge B");
      pa.close();
      pb.close();
      console.log(
        `cross-edge latency on PostgreSQL: feed ${feedMs.toFixed(0)} ms, notification ${
          notifyMs.toFixed(0)
        } ms, peer ${peerMs.toFixed(0)} ms`,
      );
    } catch (err) {
      console.error(cluster.log().slice(-4000));
      throw err;
    } finally {
      await a.close();
      await b.close();
      await cluster.stop();
    }
  },
});
