/** Digital experience at the edge: batches from a device, scores, the alert naming the hop, the fleet view. */
import assert from "node:assert/strict";
import { fixture } from "./helpers.ts";
import { measureEdgeLegsNow, setPathMeasure } from "../../src/edge/zdx.ts";

/** One result: `edge` ms to the edge, `inet` ms beyond it. */
function result(at: number, edge: number, inet: number, probe = "portal") {
  const connect = edge + inet;
  return {
    probe,
    url: "https://portal.example/",
    at,
    ok: true,
    status: 200,
    phases: { dns: 2, connect, tls: connect, ttfb: connect + 20, total: 2 + 3 * connect + 23 },
    edgeRttMs: edge,
  };
}

Deno.test("zdx API: scores against the device's baseline, alerts naming edge → internet, fleet view", async () => {
  const f = await fixture();
  const d = await f.enroll();
  const t0 = f.clock.now();
  const normal = Array.from({ length: 12 }, (_, i) => result(t0 + i * 60_000, 10 + (i % 3), 20));
  let r = await f.req("POST", "/api/v1/zdx", { results: normal }, d.headers);
  assert.equal(r.status, 200);
  const first = await r.json();
  assert.equal(first.accepted, 12);
  assert.ok(first.scores.every((s: { band: string }) => s.band === "good"));
  // 150 ms more on the edge → internet leg.
  r = await f.req("POST", "/api/v1/zdx", {
    results: [result(t0 + 13 * 60_000, 11, 170)],
  }, d.headers);
  const slow = (await r.json()).scores[0];
  assert.equal(slow.band, "poor");
  assert.equal(slow.worstHop, "edge_to_internet");
  // One slow result is not yet an alert; the second in a row is.
  assert.equal(f.store.notifications.list({ kind: "zdx_degraded" }).length, 0);
  await f.req("POST", "/api/v1/zdx", { results: [result(t0 + 14 * 60_000, 11, 170)] }, d.headers);
  const alerts = f.store.notifications.list({ kind: "zdx_degraded" });
  assert.equal(alerts.length, 1);
  assert.match(alerts[0].message, /edge to internet hop grew/);
  // A third slow result within ten minutes does not alert again.
  await f.req("POST", "/api/v1/zdx", { results: [result(t0 + 14.5 * 60_000, 11, 170)] }, d.headers);
  assert.equal(f.store.notifications.list({ kind: "zdx_degraded" }).length, 1);
  // Recovery: back to Good.
  r = await f.req(
    "POST",
    "/api/v1/zdx",
    { results: [result(t0 + 15 * 60_000, 11, 21)] },
    d.headers,
  );
  assert.equal((await r.json()).scores[0].band, "good");

  // The edge measures its own leg to the probe's host (a fake mtr here; real in test/e2e/zdx_test.ts),
  // and only for URLs its policy names.
  const measured: string[] = [];
  setPathMeasure(f.ctx, (host) => {
    measured.push(host);
    return Promise.resolve({
      target: host,
      hops: [{
        hop: 1,
        host: "198.18.0.254",
        lossPct: 0,
        sent: 3,
        avgMs: 1,
        bestMs: 1,
        worstMs: 1,
      }],
      slowest: { hop: 1, host: "198.18.0.254", addedMs: 1 },
    });
  });
  await measureEdgeLegsNow(f.ctx, ["https://portal.example/"]);
  assert.deepEqual(measured, [], "not a probe of the policy");
  await f.adminReq("PUT", "/api/v1/admin/policy/app-profiles", {
    items: [{
      name: "default",
      forwarding: { name: "fp" },
      zdxProbes: [{ name: "portal", url: "https://portal.example/" }],
    }],
  });
  await f.req("POST", "/api/v1/zdx", { results: [result(t0 + 16 * 60_000, 11, 21)] }, d.headers);
  await measureEdgeLegsNow(f.ctx, []);
  assert.deepEqual(measured, ["portal.example"]);

  const fleet = await (await f.adminReq("GET", "/api/v1/admin/zdx")).json();
  assert.equal(fleet.paths[0].host, "portal.example");
  assert.equal(fleet.apps[0].probe, "portal");
  assert.equal(fleet.devices[0].deviceId, d.json.deviceId);
  assert.equal(fleet.latest[0].band, "good");
  assert.ok(fleet.hops.length >= 1);
  assert.ok(fleet.hops[0][1].edge_to_internet > 0);
});

Deno.test("zdx API: the result taken while a slowdown set in does not decide the hop the alert names", async () => {
  const f = await fixture();
  const d = await f.enroll();
  const t0 = f.clock.now();
  const normal = Array.from({ length: 12 }, (_, i) => result(t0 + i * 60_000, 10 + (i % 3), 20));
  await f.req("POST", "/api/v1/zdx", { results: normal }, d.headers);
  // Connected before the delay began, answered after it: only the wait for
  // the first byte grew, which blames the server.
  const setIn = result(t0 + 13 * 60_000, 11, 20);
  setIn.phases = {
    ...setIn.phases,
    ttfb: setIn.phases.ttfb + 150,
    total: setIn.phases.total + 150,
  };
  const r = await f.req("POST", "/api/v1/zdx", {
    results: [setIn, result(t0 + 13.5 * 60_000, 11, 170)],
  }, d.headers);
  const scores = (await r.json()).scores;
  assert.equal(scores[0].worstHop, "server");
  assert.equal(scores[1].worstHop, "edge_to_internet");
  const alerts = f.store.notifications.list({ kind: "zdx_degraded" });
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0].data.hop, "edge_to_internet");
});

Deno.test("zdx API: bad batches get a 4xx with a code and store nothing; no credential, no entry", async () => {
  const f = await fixture();
  const d = await f.enroll();
  const good = result(f.clock.now(), 10, 20);
  const before = f.store.tableCounts();
  const bad: [string, unknown][] = [
    ["empty", { results: [] }],
    ["not a list", { results: "x" }],
    ["unknown field", { results: [{ ...good, extra: 1 }] }],
    ["bad url", { results: [{ ...good, url: "javascript:alert(1)" }] }],
    ["bad name", { results: [{ ...good, probe: "<script>" }] }],
    ["negative time", { results: [{ ...good, phases: { ...good.phases, dns: -1 } }] }],
    ["too many", { results: Array(501).fill(good) }],
  ];
  for (const [name, body] of bad) {
    const res = await f.req("POST", "/api/v1/zdx", body, d.headers);
    assert.ok(res.status >= 400 && res.status < 500, `${name}: ${res.status}`);
    const j = await res.json();
    assert.ok(j.error?.code && j.error?.message, name);
  }
  const anon = await f.req("POST", "/api/v1/zdx", { results: [good] });
  assert.equal(anon.status, 401);
  assert.deepEqual(f.store.tableCounts(), before);
});
