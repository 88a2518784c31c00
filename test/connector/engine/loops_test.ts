/** The background loops over manual timers: start, stop, heartbeat outcomes, disabled told once. */
import assert from "node:assert/strict";
import { ManualTimers } from "../../../src/clock.ts";
import { EdgeApiError, EdgeUnreachableError } from "../../../src/connector/edge_api.ts";
import type { EngineState } from "../../../src/connector/engine_state.ts";
import { BackgroundLoops } from "../../../src/connector/engine/loops.ts";
import { FakeEdgeApi } from "../../../src/connector/fake_edge_api.ts";
import { setLogSinks } from "../../../src/log.ts";
import { makeBundle } from "./helpers.ts";

setLogSinks([]);

function setup(client: FakeEdgeApi | null) {
  const timers = new ManualTimers();
  const seen: string[] = [];
  const state: EngineState = { kind: "connected", enrolled: true, verdict: null, transport: "udp" };
  const loops = new BackgroundLoops({
    timers,
    hub: { raise: (type, _s, m) => (seen.push(`${type}: ${m}`), {} as never) },
    periods: { heartbeatSec: 30, postureSec: 120, policyRefreshSec: 60 },
    collectPosture: () => Promise.resolve({ payload: "{}", signature: "" }),
    client: () => client,
    policy: () => makeBundle("v1"),
    state: () => state,
    updatePolicy: () => (seen.push("update"), Promise.resolve()),
    onEdgeError: (e, action) => seen.push(`edge error ${action}: ${(e as Error).message}`),
    onReachable: () => seen.push("reachable"),
    onHeartbeatFailed: (m) => seen.push(`heartbeat failed: ${m}`),
  });
  return { timers, seen, loops };
}

Deno.test("loops: nothing without a client; with one, each loop at its period until stopped", async () => {
  const none = setup(null);
  none.loops.start();
  assert.equal(none.loops.running, false);
  assert.equal(none.timers.pending, 0);

  const client = new FakeEdgeApi();
  const s = setup(client);
  s.loops.start();
  assert.equal(s.loops.running, true);
  assert.equal(client.streams, 1);
  await s.timers.advance(240_000);
  assert.equal(client.count("heartbeat"), 8, "1 s, then every 30 s");
  assert.equal(client.count("reportPosture"), 2, "1 s, then every 120 s");
  assert.equal(s.seen.filter((x) => x === "update").length, 4, "the poll every 60 s");
  assert.equal(s.seen.filter((x) => x === "reachable").length, 8);
  s.loops.stop();
  await s.timers.advance(0);
  assert.equal(s.loops.running, false);
  assert.equal(client.streams, 0);
  assert.equal(s.timers.pending, 0);
});

Deno.test("loops: heartbeat failures; a disabled device is told once until the edge answers", async () => {
  const client = new FakeEdgeApi();
  const s = setup(client);
  s.loops.start();
  client.failures.set("heartbeat", new EdgeUnreachableError("refused"));
  await s.timers.advance(1000);
  assert.ok(s.seen.includes("heartbeat failed: refused"));
  client.failures.set("heartbeat", new EdgeApiError("device_disabled", "Disabled.", 403));
  await s.timers.advance(90_000);
  assert.deepEqual(s.seen.filter((x) => x.startsWith("device_disabled")), [
    "device_disabled: Disabled.",
  ]);
  client.failures.delete("heartbeat");
  await s.timers.advance(30_000);
  client.failures.set("heartbeat", new EdgeApiError("device_disabled", "Disabled.", 403));
  await s.timers.advance(30_000);
  assert.equal(s.seen.filter((x) => x.startsWith("device_disabled")).length, 2, "told again");
  client.failures.set("heartbeat", new EdgeApiError("bad_credential", "Unknown.", 401));
  await s.timers.advance(30_000);
  assert.ok(s.seen.includes("edge error send a heartbeat: Unknown."));
  s.loops.stop();
});
