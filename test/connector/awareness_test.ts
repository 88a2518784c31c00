import assert from "node:assert/strict";
import { type AwarenessDecision, EdgeAwareness } from "../../src/connector/awareness.ts";
import type { CaptiveProbeResult } from "../../src/connector/network/captive.ts";
import { FailOpenSettings } from "../../src/policy/types.ts";
import { setLogSinks } from "../../src/log.ts";

setLogSinks([]);

const CLEAR: CaptiveProbeResult = { kind: "clear", latencyMs: 1 };
const PORTAL: CaptiveProbeResult = {
  kind: "captive",
  reason: "redirect",
  status: 302,
  location: "http://portal/login",
  detail: "Redirected (302) to http://portal/login",
};
const DOWN: CaptiveProbeResult = { kind: "unreachable", detail: "no answer" };

async function waitFor(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function setup(results: CaptiveProbeResult[], opts: { probe?: boolean; retries?: number } = {}) {
  const decisions: AwarenessDecision[] = [];
  let probes = 0;
  let next = results[0];
  const a = new EdgeAwareness({
    settings: FailOpenSettings.parse({ retries: opts.retries ?? 2 }),
    probe: opts.probe === false ? null : () => {
      probes++;
      return Promise.resolve(next);
    },
    active: () => true,
    onDecision: (d) => decisions.push(d),
    portalProbeMs: 50,
    idleProbeMs: 60_000,
    backoff: { initialMs: 20, maxMs: 40 },
  });
  return {
    a,
    decisions,
    probes: () => probes,
    set: (r: CaptiveProbeResult) => (next = r),
  };
}

Deno.test("awareness: a portal is detected at start, probed often, and cleared", async () => {
  const s = setup([PORTAL]);
  s.a.start();
  await waitFor("portal", () => s.decisions.some((d) => d.type === "portal_detected"));
  const before = s.probes();
  await waitFor("portal re-probed", () => s.probes() >= before + 2);
  s.set(CLEAR);
  await waitFor("cleared", () => s.decisions.some((d) => d.type === "portal_cleared"));
  assert.equal(s.a.captive.state, "clear");
  s.a.stop();
});

Deno.test("awareness: silence elsewhere triggers probes; the profile's retries decide", async () => {
  const s = setup([CLEAR]);
  s.a.start();
  await waitFor("first probe", () => s.probes() === 1);
  s.set(DOWN);
  s.a.failed("The edge stopped answering through the tunnel");
  await waitFor(
    "unreachable",
    () => s.decisions.some((d) => d.type === "edge_unreachable" && d.action === "fail_open"),
  );
  assert.equal(s.a.reach.failures, 2, "two probe attempts, not the trigger itself");
  s.set(CLEAR);
  await waitFor("recovered", () => s.decisions.some((d) => d.type === "edge_recovered"));
  s.a.stop();
});

Deno.test("awareness: without a probe, reported failures count directly", () => {
  const s = setup([CLEAR], { probe: false, retries: 2 });
  s.a.failed("Heartbeat failed");
  assert.equal(s.decisions.length, 0);
  s.a.failed("Heartbeat failed");
  assert.deepEqual(s.decisions.map((d) => d.type), ["edge_unreachable"]);
  s.a.reachable();
  assert.deepEqual(s.decisions.map((d) => d.type), ["edge_unreachable", "edge_recovered"]);
  s.a.stop();
});

Deno.test("awareness: a new network forgets an expired portal and past failures", async () => {
  const s = setup([PORTAL]);
  s.a.start();
  await waitFor("portal", () => s.a.captive.state === "portal");
  s.a.networkChanged(true);
  assert.equal(s.a.captive.state, "clear");
  assert.equal(s.a.reach.failures, 0);
  await waitFor(
    "portal again",
    () => s.decisions.filter((d) => d.type === "portal_detected").length === 2,
  );
  s.a.stop();
});
