/**
 * The edge selection mechanism with a fake prober and manual timers: it
 * picks the nearest edge (leaving the enrolment's once two measurements
 * agree), fails over within 10 s when that edge stops answering, comes back once the first edge is clearly nearer again (after
 * its confirmation), follows the bundle's list and network changes, and
 * does not probe for liveness when there is only one edge.
 */
import assert from "node:assert/strict";
import { ManualTimers } from "../../src/clock.ts";
import { type EdgeProbe, EdgeSelector } from "../../src/connector/edge_selector.ts";
import type { BundleEdge } from "../../src/policy/types.ts";

function edge(id: string): BundleEdge {
  return {
    id,
    name: `edge-${id}`,
    region: id === "a" ? "near" : "far",
    publicKey: `${id.repeat(43)}=`,
    endpoints: [{ transport: "udp", host: `${id}.test`, port: 443 }],
    apiUrl: `https://${id}.test:8443`,
    bootstrapUrl: `http://${id}.test:8081`,
    caPem: "pem",
  };
}

/** A prober over a table: a figure answers after that many ms, "dead" never answers. */
function fakeProber(timers: ManualTimers) {
  const rtt = new Map<string, number | "dead">();
  const probes: string[] = [];
  const probe: EdgeProbe = (e, signal) => {
    probes.push(e.id);
    const r = rtt.get(e.id) ?? "dead";
    return new Promise((resolve) => {
      signal.addEventListener("abort", () => resolve(null), { once: true });
      if (r !== "dead") timers.setTimeout(() => resolve(r), r);
    });
  };
  return { rtt, probe, probes };
}

function setup() {
  const timers = new ManualTimers();
  const fake = fakeProber(timers);
  const moves: { to: string; reason: string; at: number }[] = [];
  const sel = new EdgeSelector({
    probe: fake.probe,
    timers,
    clock: timers.clock,
    onMove: (to, reason) => moves.push({ to: to.id, reason, at: timers.clock.monotonic() }),
  });
  return { timers, fake, moves, sel };
}

Deno.test("edge selector: nearest first, failover within 10 s, return when clearly nearer", async () => {
  const { timers, fake, moves, sel } = setup();
  fake.rtt.set("a", 10).set("b", 40);
  // Enrolled at the far edge b; the first measurement that agrees with the
  // one before (10 s later) moves to a.
  sel.setEdges([edge("a"), edge("b")], "b");
  assert.equal(sel.current()?.id, "b");
  sel.start();
  await timers.advance(100);
  assert.equal(moves.length, 0, "one measurement does not leave the enrolment's edge");
  assert.equal(sel.status().lastDecision, "confirming");
  await timers.advance(10_200);
  assert.deepEqual(moves.map((m) => [m.to, m.reason]), [["a", "initial"]]);
  const st = sel.status();
  assert.deepEqual(st.current, { id: "a", name: "edge-a", region: "near", rttMs: 10 });
  assert.deepEqual(st.alternatives.map((e) => [e.id, e.rttMs]), [["b", 40]]);
  assert.equal(st.lastMove?.reason, "initial");

  // Liveness probes of a alone, every 2 s.
  fake.probes.length = 0;
  await timers.advance(10_000);
  assert.ok(fake.probes.length >= 4 && fake.probes.every((id) => id === "a"), fake.probes.join());

  // a dies: the connector is on b within 10 s.
  fake.rtt.set("a", "dead");
  const killedAt = timers.clock.monotonic();
  await timers.advance(10_000);
  assert.deepEqual(moves.map((m) => [m.to, m.reason]), [["a", "initial"], ["b", "failover"]]);
  const took = moves[1].at - killedAt;
  assert.ok(took <= 10_000, `failover took ${took} ms`);
  assert.equal(sel.current()?.id, "b");
  assert.equal(sel.status().current?.rttMs, 40);
  assert.equal(sel.status().alternatives[0].rttMs, null);

  // While a is silent it is measured again every 10 s (not only every 5 min).
  fake.probes.length = 0;
  await timers.advance(30_000);
  assert.ok(fake.probes.filter((id) => id === "a").length >= 3, fake.probes.join());
  // a comes back: the next measurement that reaches it (within two rounds
  // of 10 s and a probe's timeout) sees it clearly nearer, the confirmation
  // 10 s later moves back.
  fake.rtt.set("a", 10);
  for (let i = 0; i < 50 && sel.status().lastDecision !== "confirming"; i++) {
    await timers.advance(500);
  }
  assert.equal(moves.length, 2, "one clear win is not enough");
  assert.equal(sel.status().lastDecision, "confirming");
  await timers.advance(10_500);
  assert.deepEqual(moves.at(-1), { to: "a", reason: "nearer", at: moves.at(-1)!.at });
  sel.stop();
  assert.equal(timers.pending, 0, "stop leaves no timer behind");
});

Deno.test("edge selector: an edge that leaves the list is left at once; a network change re-measures", async () => {
  const { timers, fake, moves, sel } = setup();
  fake.rtt.set("a", 10).set("b", 40).set("c", 60);
  sel.setEdges([edge("a"), edge("b"), edge("c")], "a");
  sel.start();
  await timers.advance(100);
  assert.equal(moves.length, 0, "the enrolment's edge is the nearest");
  // The registry marked a unhealthy: the bundle no longer lists it.
  sel.setEdges([edge("b"), edge("c")], "a");
  await timers.advance(300);
  assert.deepEqual(moves.map((m) => [m.to, m.reason]), [["b", "unlisted"]]);
  // On another network c is far nearer: a network change measures at once.
  fake.rtt.set("b", 80).set("c", 15);
  fake.probes.length = 0;
  sel.networkChanged();
  await timers.advance(300);
  assert.deepEqual([...new Set(fake.probes)].sort(), ["b", "c"]);
  assert.equal(sel.status().lastDecision, "confirming");
  await timers.advance(10_100);
  assert.deepEqual(moves.at(-1)?.to, "c");
  sel.stop();
});

Deno.test("edge selector: the tunnel saying the edge died fails over without waiting for probes", async () => {
  const { timers, fake, moves, sel } = setup();
  fake.rtt.set("a", 10).set("b", 40);
  sel.setEdges([edge("a"), edge("b")], "a");
  sel.start();
  await timers.advance(100);
  fake.rtt.set("a", "dead");
  const at = timers.clock.monotonic();
  sel.currentFailed("handshake timeout");
  await timers.advance(2_000);
  assert.deepEqual(moves.map((m) => [m.to, m.reason]), [["b", "failover"]]);
  assert.ok(moves[0].at - at <= 1_600, `took ${moves[0].at - at} ms`);
  sel.stop();
});

Deno.test("edge selector: one edge is measured for the console but never liveness-probed", async () => {
  const { timers, fake, moves, sel } = setup();
  fake.rtt.set("a", 12);
  sel.setEdges([edge("a")], "a");
  sel.start();
  await timers.advance(100);
  assert.equal(sel.status().current?.rttMs, 12);
  fake.probes.length = 0;
  await timers.advance(60_000);
  assert.deepEqual(fake.probes, []);
  sel.currentFailed("down"); // nowhere to go: ignored
  await timers.advance(300_000);
  assert.deepEqual(fake.probes, ["a", "a"], "the periodic measurement");
  assert.equal(moves.length, 0);
  sel.stop();
});
