/**
 * The edge mesh's control side against the real store (SQLite and a real
 * PostgreSQL): two edges on one database, each with a recording data plane.
 * Handshakes seen at an edge become that device's location, each edge's
 * mesh peer for the other carries the devices located there, a failover
 * moves a device (a late claim from the edge it left cannot take it back),
 * and an edge that stops heartbeating loses its mesh peer.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import {
  EdgeMesh,
  LOCATION_STALE_MS,
  LOCATIONS_CHANNEL,
  type MeshPeerSpec,
} from "../../src/fleet/mesh.ts";
import { UNHEALTHY_AFTER_MS } from "../../src/fleet/edge_registry.ts";
import type { Store } from "../../src/store/mod.ts";
import { key32 } from "../http/helpers.ts";
import { deviceRecord, storeTest } from "../store/backends.ts";

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 3000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A data plane that keeps the specs it was given. */
class RecordingPlane {
  peers = new Map<string, MeshPeerSpec>();
  setMeshPeer(spec: MeshPeerSpec): void {
    this.peers.set(spec.edgeId, spec);
  }
  removeMeshPeer(edgeId: string): void {
    this.peers.delete(edgeId);
  }
  /** Addresses routed to edge `id`, or null when it has no peer. */
  to(id: string): string[] | null {
    return this.peers.get(id)?.addresses ?? null;
  }
}

function register(store: Store, id: string, name: string, host: string, at: number) {
  const key = key32();
  store.edges.register({
    id,
    name,
    region: "",
    wgPublicKey: key,
    endpoints: [{ transport: "tls", host, port: 443 }, { transport: "udp", host, port: 4443 }],
    apiUrl: `https://${host}:8443`,
    bootstrapUrl: `http://${host}:8081`,
    caPem: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
    version: "0.1.0",
    startedAt: at,
    heartbeatAt: at,
  });
  return key;
}

storeTest(
  "edge mesh: locations from handshakes, peers per edge, failover, late claims, lapsed edges",
  async (open) => {
    const store = open();
    const clock = new ManualClock(1_700_000_000_000);
    const keyB = register(store, "ea", "edge-a", "192.0.2.1", clock.now());
    register(store, "eb", "edge-b", "198.51.100.1", clock.now());
    const addr = new Map<string, string>();
    for (const [i, id] of ["d1", "d2", "d3"].entries()) {
      store.devices.insert(deviceRecord(id));
      const host = store.leases.allocate(id, clock.now(), 1000)!;
      addr.set(id, `100.64.0.${host}`);
      assert.ok(host >= 2, `lease ${i}`);
    }
    const planeA = new RecordingPlane(), planeB = new RecordingPlane();
    let movedA = 0, movedB = 0;
    const mk = (selfId: string, plane: RecordingPlane, moved: () => void) =>
      new EdgeMesh({
        store,
        clock,
        selfId,
        plane,
        addresses: () => addr,
        onMoved: moved,
        refreshMs: 3600_000,
      });
    const a = mk("ea", planeA, () => movedA++);
    const b = mk("eb", planeB, () => movedB++);
    try {
      a.start();
      b.start();
      // Each has a peer for the other (its UDP endpoint, its registered key), carrying nobody yet.
      assert.deepEqual(planeA.to("eb"), []);
      assert.deepEqual(planeB.to("ea"), []);
      assert.deepEqual(planeA.peers.get("eb")!.endpoint, { host: "198.51.100.1", port: 4443 });
      assert.equal(planeB.peers.get("ea")!.publicKey, keyB);
      assert.equal(planeA.to("ea"), null, "no peer for itself");

      // d1 and d3 handshake with A, d2 with B.
      a.noteHandshake("d1", clock.now());
      a.noteHandshake("d3", clock.now());
      b.noteHandshake("d2", clock.now());
      a.flush();
      b.flush();
      await until(() => planeA.to("eb")?.length === 1, "A to route d2 to B");
      await until(() => planeB.to("ea")?.length === 2, "B to route d1 and d3 to A");
      assert.deepEqual(planeA.to("eb"), [addr.get("d2")]);
      assert.deepEqual(planeB.to("ea"), [addr.get("d1"), addr.get("d3")].sort());
      assert.equal(store.deviceLocations.get("d2")!.edgeId, "eb");
      assert.equal(a.locationOf("d2"), "eb");

      // d2 fails over to A: A routes it locally at once, B routes it to A.
      const before = movedA;
      clock.advance(1000);
      a.noteHandshake("d2", clock.now());
      a.flush();
      assert.deepEqual(planeA.to("eb"), [], "A holds d2 itself now");
      assert.ok(movedA > before, "A's cached flows are routed again");
      await until(() => planeB.to("ea")?.length === 3, "B to route d2 to A");
      assert.ok(movedB > 0);

      // A late claim from B with an older handshake does not take d2 back.
      assert.equal(store.deviceLocations.claim("d2", "eb", clock.now() - 500), false);
      b.noteHandshake("d2", clock.now() - 500);
      b.flush();
      b.refresh();
      assert.equal(store.deviceLocations.get("d2")!.edgeId, "ea");
      assert.equal(planeB.to("ea")?.length, 3);

      // Rekeys (every two minutes a device) of devices located at A already write
      // the newer time and announce nothing: no edge's mesh changes.
      let announced = 0;
      const publish = store.feed.publish.bind(store.feed);
      store.feed.publish = (channel, payload) => {
        if (channel === LOCATIONS_CHANNEL) announced++;
        publish(channel, payload);
      };
      try {
        clock.advance(120_000);
        store.edges.heartbeat("ea", clock.now(), 3);
        store.edges.heartbeat("eb", clock.now(), 0);
        a.refresh();
        const moves = movedA;
        a.noteHandshake("d1", clock.now());
        a.noteHandshake("d2", clock.now());
        a.flush();
        assert.equal(announced, 0, "a rekey is not announced");
        assert.equal(movedA, moves);
        assert.equal(store.deviceLocations.get("d1")!.handshakeAt, clock.now());
        // Past the staleness of the first handshakes, B still routes the rekeyed
        // two to A (its own re-read sees the new time); d3 did not rekey.
        clock.advance(LOCATION_STALE_MS - 60_000);
        store.edges.heartbeat("ea", clock.now(), 3);
        store.edges.heartbeat("eb", clock.now(), 0);
        b.refresh();
        assert.deepEqual(planeB.to("ea"), [addr.get("d1"), addr.get("d2")].sort());
        // A device coming to A from elsewhere is still announced at once.
        assert.ok(store.deviceLocations.claim("d3", "eb", clock.now()));
        a.refresh();
        a.noteHandshake("d3", clock.now() + 1);
        a.flush();
        assert.equal(announced, 1, "a move is announced");
      } finally {
        store.feed.publish = publish;
      }

      // B stops heartbeating: A drops its mesh peer once B counts as unhealthy.
      clock.advance(UNHEALTHY_AFTER_MS + 1);
      store.edges.heartbeat("ea", clock.now(), 3);
      a.refresh();
      assert.equal(planeA.to("eb"), null);
      // And locations older than a live tunnel are nobody's.
      clock.advance(LOCATION_STALE_MS);
      store.edges.heartbeat("ea", clock.now(), 0);
      store.edges.heartbeat("eb", clock.now(), 0);
      b.refresh();
      assert.deepEqual(planeB.to("ea"), []);
    } finally {
      a.stop();
      b.stop();
    }
  },
);

storeTest(
  "edge mesh: an endpoint given by name is resolved before the data plane gets it",
  async (open) => {
    const store = open();
    const clock = new ManualClock(1_700_000_000_000);
    register(store, "ea", "edge-a", "192.0.2.1", clock.now());
    register(store, "eb", "edge-b", "edge-b.example", clock.now());
    const plane = new RecordingPlane();
    const asked: string[] = [];
    const a = new EdgeMesh({
      store,
      clock,
      selfId: "ea",
      plane,
      addresses: () => new Map(),
      refreshMs: 3600_000,
      resolve: (host) => {
        asked.push(host);
        return Promise.resolve(host === "edge-b.example" ? "198.51.100.7" : null);
      },
    });
    try {
      a.start();
      assert.equal(plane.peers.get("eb")!.endpoint, null, "no address yet");
      await until(() => plane.peers.get("eb")!.endpoint !== null, "the name to be resolved");
      assert.deepEqual(plane.peers.get("eb")!.endpoint, { host: "198.51.100.7", port: 4443 });
      a.refresh();
      assert.deepEqual(asked, ["edge-b.example"], "answers are kept for a while");
    } finally {
      a.stop();
    }
  },
);
