import assert from "node:assert/strict";
import {
  band,
  baselineOf,
  deviceScore,
  hopsOf,
  median,
  type ProbeSample,
  scoreSample,
} from "../../src/zdx/score.ts";

/** A result through the tunnel: `edge` ms to the edge, `inet` ms beyond it, `server` ms thinking. */
function sample(edge: number, inet: number, server = 20, extra: Partial<ProbeSample> = {}) {
  const connect = edge + inet;
  const tls = connect;
  const ttfb = connect + server;
  return {
    ok: true,
    status: 200,
    phases: { dns: 2, connect, tls, ttfb, total: 2 + connect + tls + ttfb + 3 },
    edgeRttMs: edge,
    ...extra,
  } satisfies ProbeSample;
}

/** A steady history with a little jitter. */
const history = Array.from({ length: 20 }, (_, i) => sample(10 + (i % 3), 20 + (i % 4)));

Deno.test("zdx score: bands", () => {
  const table: [number, string][] = [[100, "good"], [66, "good"], [65, "okay"], [34, "okay"], [
    33,
    "poor",
  ], [0, "poor"]];
  for (const [s, b] of table) assert.equal(band(s), b, String(s));
});

Deno.test("zdx score: median and spread", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  // MAD of [10,10,10,10,50] is 0: the floor (10 % of the median, at least 5 ms) holds.
  assert.deepEqual(baselineOf([10, 10, 10, 10, 50]), { median: 10, spread: 5 });
  const b = baselineOf([100, 110, 90, 105, 95]);
  assert.equal(b.median, 100);
  assert.ok(Math.abs(b.spread - 1.4826 * 5) < 1e-9 || b.spread === 10);
});

Deno.test("zdx score: hops split the time", () => {
  const h = hopsOf(sample(10, 150, 20))!;
  assert.equal(h.device_to_edge, 10);
  assert.equal(h.edge_to_internet, 150);
  assert.equal(h.server, 20);
});

const CASES: [string, ProbeSample, (s: ReturnType<typeof scoreSample>) => void][] = [
  ["normal is 100", sample(11, 21), (s) => assert.equal(s.score, 100)],
  ["a slow-but-normal site stays good", sample(11, 21, 20), (s) => assert.equal(s.band, "good")],
  ["150 ms more on edge→internet is poor and names that hop", sample(11, 171), (s) => {
    assert.equal(s.band, "poor");
    assert.equal(s.worstHop, "edge_to_internet");
  }],
  ["a far edge names device→edge", sample(160, 21), (s) => {
    assert.notEqual(s.band, "good");
    assert.equal(s.worstHop, "device_to_edge");
  }],
  ["a slow server names the server", sample(11, 21, 400), (s) => {
    assert.equal(s.worstHop, "server");
  }],
  ["a failure scores 0", { ok: false, status: null, phases: null, edgeRttMs: null }, (s) => {
    assert.equal(s.score, 0);
  }],
  ["HTTP 503 scores 0", sample(11, 21, 20, { status: 503 }), (s) => assert.equal(s.score, 0)],
];

for (const [name, s, check] of CASES) {
  Deno.test(`zdx score: ${name}`, () => check(scoreSample(s, history)));
}

Deno.test("zdx score: before a baseline exists, absolute thresholds", () => {
  assert.equal(scoreSample(sample(10, 20), []).score, 100);
  const slow = sample(10, 20);
  slow.phases!.total = 3000;
  assert.equal(scoreSample(slow, history.slice(0, 3)).score, 50);
});

Deno.test("zdx score: a slow site learned as normal is good at its usual speed", () => {
  const slowSite = Array.from({ length: 20 }, (_, i) => sample(10, 400 + (i % 5) * 10));
  assert.equal(scoreSample(sample(10, 420), slowSite).band, "good");
  // The same time against a fast site's baseline is poor.
  assert.equal(scoreSample(sample(10, 420), history).band, "poor");
});

Deno.test("zdx score: a slowdown stays Poor, and a lasting change is learned in time", () => {
  const h: ProbeSample[] = history.map((x) => ({ ...x, score: 100 }));
  const slow = () => sample(11, 171);
  for (let i = 0; i < 30; i++) {
    const s = scoreSample(slow(), h);
    assert.equal(s.band, "poor", `result ${i} after the slowdown`);
    h.push({ ...slow(), score: s.score });
  }
  // After 2 × 30 results without a good one in the window, slow is the new normal.
  for (let i = 0; i < 30; i++) {
    const s = scoreSample(slow(), h);
    h.push({ ...slow(), score: s.score });
  }
  assert.equal(scoreSample(slow(), h).band, "good");
});

Deno.test("zdx score: device score is the mean of the latest", () => {
  assert.equal(deviceScore([]), null);
  assert.equal(deviceScore([100, 50, 33]), 61);
});
