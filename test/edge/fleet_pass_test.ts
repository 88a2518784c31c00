/**
 * Passes over the whole fleet (the 30 s sign-in sweep, the start-up peer
 * load, a reconnected peer feed's reconcile) read what they need in a few
 * queries, not a few per device: on PostgreSQL each query is a round trip
 * on the edge's one thread, and the sweep of 2,000 user devices held it for
 * about 2 s. The fleet's facts must decide every device as the per-device
 * path does, on both store backends.
 */
import assert from "node:assert/strict";
import { fleetPeerFacts, loadPeers, peerOf } from "../../src/edge/devices.ts";
import { sweepLapsedSignIns } from "../../src/edge/signin_lapse.ts";
import { setLogSinks } from "../../src/log.ts";
import type { Store } from "../../src/store/mod.ts";
import { fixture } from "../http/helpers.ts";
import { deviceRecord, userRecord } from "../store/backends.ts";

setLogSinks([]);

const H = 3600_000;

type Edge = Awaited<ReturnType<typeof fixture>>;

/** Profiles: "kiosks" re-authenticate every hour, everyone else every 12 h. */
async function profiles(edge: Edge): Promise<void> {
  const r = await edge.adminReq("PUT", "/api/v1/admin/policy/app-profiles", {
    items: [
      {
        name: "kiosks",
        ruleOrder: 0,
        groups: ["kiosks"],
        forwarding: { name: "f" },
        signInLifetimeHours: 1,
      },
      { name: "default", ruleOrder: 1, forwarding: { name: "f" }, signInLifetimeHours: 12 },
    ],
  });
  assert.equal(r.status, 200, await r.text());
}

interface Row {
  name: string;
  group?: string;
  /** Username on the device (null: a machine device). */
  user?: string | null;
  /** Whether the device's user is disabled. */
  userDisabled?: boolean;
  /** Hours before now of each sign-in bound to the device. */
  signIns?: number[];
  disabled?: boolean;
  lease?: boolean;
  inTunnel: boolean;
}

const ROWS: Row[] = [
  { name: "machine device", user: null, inTunnel: true },
  { name: "machine device of a short group", user: null, group: "kiosks", inTunnel: true },
  { name: "user device with a live sign-in", signIns: [2], inTunnel: true },
  { name: "user device whose sign-in lapsed", signIns: [13], inTunnel: false },
  { name: "the newest sign-in counts", signIns: [13, 3, 20], inTunnel: true },
  { name: "short group: lapsed after an hour", group: "kiosks", signIns: [2], inTunnel: false },
  { name: "short group: within the hour", group: "kiosks", signIns: [0.5], inTunnel: true },
  { name: "user device, no sign-in bound", signIns: [], inTunnel: true },
  { name: "disabled user", signIns: [1], userDisabled: true, inTunnel: false },
  { name: "disabled device", signIns: [1], disabled: true, inTunnel: false },
  { name: "no address lease", signIns: [1], lease: false, inTunnel: false },
];

/** Adds a row's user, device, sign-ins and lease; returns the device id. */
function add(edge: Edge, r: Row, i: number): string {
  const { store, clock } = edge;
  const id = `dev_${i}`;
  const username = r.user === undefined ? `user${i}@corp.example` : r.user;
  if (username !== null) {
    store.users.insert(userRecord(`usr_${i}`, username, { createdAt: clock.now() }));
    if (r.userDisabled) store.users.setDisabled(`usr_${i}`, true);
  }
  // The device names its user in another case: names match as sign-in matches them.
  store.devices.insert({
    ...deviceRecord(id),
    user: username === null ? null : username.toUpperCase(),
    group: r.group ?? null,
    disabled: r.disabled ?? false,
  });
  for (const [k, hours] of (r.signIns ?? []).entries()) {
    store.userSignIns.insert({
      tokenHash: `h-${i}-${k}`,
      userId: `usr_${i}`,
      providerId: null,
      method: "oidc_code",
      deviceId: id,
      createdAt: clock.now() - hours * H,
      expiresAt: clock.now() + H,
    });
  }
  if (r.lease ?? true) store.transaction(() => store.leases.allocate(id, clock.now(), 1000));
  return id;
}

Deno.test("fleet passes: the fleet's facts decide every device as the per-device path does", async () => {
  const edge = await fixture();
  try {
    await profiles(edge);
    const ids = ROWS.map((r, i) => add(edge, r, i));
    const facts = fleetPeerFacts(edge.ctx);
    for (const [i, r] of ROWS.entries()) {
      const d = edge.store.devices.byId(ids[i])!;
      const one = peerOf(edge.ctx, d);
      const fleet = peerOf(edge.ctx, d, facts);
      assert.deepEqual(fleet, one, r.name);
      assert.equal(one !== null, r.inTunnel, r.name);
    }
    // Start-up puts exactly those in the tunnel; the sweep takes out only lapsed sign-ins.
    assert.equal(loadPeers(edge.ctx), ROWS.filter((r) => r.inTunnel).length);
    for (const [i, r] of ROWS.entries()) {
      assert.equal(edge.tunnel.peers.has(`wg-${ids[i]}`), r.inTunnel, `loaded: ${r.name}`);
    }
    for (const [i, r] of ROWS.entries()) {
      if (!r.inTunnel) {
        edge.tunnel.upsertPeer({ id: ids[i], wgPublicKey: `wg-${ids[i]}`, address: "x" });
      }
    }
    const lapsed = ROWS.filter((r) =>
      r.user !== null && !r.disabled && r.signIns?.length && !r.inTunnel && !r.userDisabled &&
      r.lease !== false
    );
    assert.equal(sweepLapsedSignIns(edge.ctx), lapsed.length);
    for (const [i, r] of ROWS.entries()) {
      const gone = lapsed.includes(r);
      assert.equal(edge.tunnel.peers.has(`wg-${ids[i]}`), !gone, `swept: ${r.name}`);
    }
    // The next sweep finds them out already: it removes (and tells the fleet) nothing.
    const calls = edge.tunnel.calls.length;
    assert.equal(sweepLapsedSignIns(edge.ctx), 0);
    assert.deepEqual(edge.tunnel.calls.slice(calls), []);
  } finally {
    await edge.store.close();
  }
});

/** Counts the store's queries until what `fn` returns settles. */
async function countedQueries(store: Store, fn: () => unknown): Promise<number> {
  const db = store.db as unknown as Record<string, (...a: unknown[]) => unknown>;
  let n = 0;
  const saved = new Map<string, (...a: unknown[]) => unknown>();
  for (const m of ["get", "all", "run", "exec"]) {
    const f = db[m];
    saved.set(m, f);
    db[m] = (...a: unknown[]) => {
      n++;
      return f.apply(db, a);
    };
  }
  try {
    await fn();
  } finally {
    for (const [m, f] of saved) db[m] = f;
  }
  return n;
}

Deno.test("fleet passes: the sweep and the start-up load read as many times for 40 devices as for 4", async () => {
  const counts: { sweep: number; load: number }[] = [];
  for (const n of [4, 40]) {
    const edge = await fixture();
    try {
      await profiles(edge);
      for (let i = 0; i < n; i++) {
        add(edge, { name: "", signIns: [i % 2 ? 13 : 1], inTunnel: true }, i);
      }
      const load = await countedQueries(edge.store, () => loadPeers(edge.ctx));
      const sweep = await countedQueries(edge.store, () => sweepLapsedSignIns(edge.ctx));
      assert.equal(edge.tunnel.peers.size, n / 2);
      counts.push({ sweep, load });
    } finally {
      await edge.store.close();
    }
  }
  assert.deepEqual(counts[1], counts[0], JSON.stringify(counts));
});

Deno.test("fleet passes: the admin's device list reads the tunnel's counters once and the store as often for 40 devices as for 4", async () => {
  const counts: { queries: number; peerStats: number }[] = [];
  for (const n of [4, 40]) {
    const edge = await fixture();
    try {
      for (let i = 0; i < n; i++) {
        const id = add(edge, { name: "", user: null, inTunnel: true }, i);
        edge.tunnel.upsertPeer({ id, wgPublicKey: `wg-${id}`, address: "x" });
        edge.tunnel.stats.set(`wg-${id}`, {
          rxBytes: 1000 + i,
          txBytes: 2000 + i,
          lastHandshake: edge.clock.now(),
          transport: "udp",
          endpoint: `192.0.2.${i + 1}:51820`,
        });
      }
      let peerStats = 0;
      const read = edge.tunnel.peerStats.bind(edge.tunnel);
      edge.tunnel.peerStats = () => (peerStats++, read());
      let res: Response | undefined;
      const queries = await countedQueries(edge.store, async () => {
        res = await edge.adminReq("GET", "/api/v1/admin/devices");
      });
      assert.equal(res!.status, 200);
      const list = (await res!.json()).devices as {
        id: string;
        tunnel: { state: string; rxBytes: number; endpoint: string };
      }[];
      assert.equal(list.length, n);
      for (const d of list) {
        const i = Number(d.id.slice(4));
        assert.deepEqual(
          [d.tunnel.state, d.tunnel.rxBytes, d.tunnel.endpoint],
          ["up", 1000 + i, `192.0.2.${i + 1}:51820`],
          d.id,
        );
      }
      counts.push({ queries, peerStats });
    } finally {
      await edge.store.close();
    }
  }
  assert.deepEqual(counts[1], counts[0], JSON.stringify(counts));
  assert.equal(counts[0].peerStats, 1);
});
