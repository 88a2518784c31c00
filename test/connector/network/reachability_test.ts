import assert from "node:assert/strict";
import { ManualClock } from "../../../src/clock.ts";
import { ReachabilityTracker } from "../../../src/connector/network/reachability.ts";

Deno.test("reachability: fail-open and fail-closed after the profile's retries, then recovery", () => {
  for (
    const [edgeUnreachable, action] of [["direct", "fail_open"], [
      "blocked",
      "fail_closed",
    ]] as const
  ) {
    const clock = new ManualClock();
    const t = new ReachabilityTracker({ settings: { edgeUnreachable, retries: 3 }, clock });
    assert.equal(t.state, "unknown");
    assert.deepEqual(t.onSuccess(), []);
    assert.equal(t.state, "reachable");
    assert.equal(t.nextAttemptAt(), null);

    const start = clock.monotonic();
    assert.deepEqual(t.onFailure("handshake timed out"), []);
    assert.equal(t.state, "retrying");
    assert.equal(t.nextAttemptAt(), start + 1000);
    clock.advance(1000);
    assert.deepEqual(t.onFailure("handshake timed out"), []);
    assert.equal(t.nextAttemptAt(), clock.monotonic() + 2000);
    clock.advance(2000);
    assert.deepEqual(t.onFailure("connection refused"), [{
      type: "edge_unreachable",
      action,
      failures: 3,
      reason: "connection refused",
    }]);
    assert.equal(t.state, action);
    // Background retries keep going with capped backoff and no repeated decision.
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = clock.monotonic();
      const next = t.nextAttemptAt() as number;
      delays.push(next - before);
      clock.advance(next - before);
      assert.deepEqual(t.onFailure("still down"), []);
    }
    assert.deepEqual(delays, [4000, 8000, 16000, 30000, 30000, 30000]);
    assert.equal(t.failures, 9);
    assert.equal(t.lastReason, "still down");
    const down = clock.monotonic() - start;
    assert.deepEqual(t.onSuccess(), [{ type: "edge_recovered", from: action, downMs: down }]);
    assert.equal(t.state, "reachable");
    assert.equal(t.failures, 0);
  }
});

Deno.test("reachability: a success during quick retries recovers without failing over", () => {
  const clock = new ManualClock();
  const t = new ReachabilityTracker({ settings: { edgeUnreachable: "direct", retries: 3 }, clock });
  t.onSuccess();
  t.onFailure("x");
  clock.advance(1000);
  assert.deepEqual(t.onSuccess(), [{ type: "edge_recovered", from: "retrying", downMs: 1000 }]);
  // One retry configured: the first failure fails over.
  const one = new ReachabilityTracker({
    settings: { edgeUnreachable: "blocked", retries: 1 },
    clock,
  });
  assert.equal(one.onFailure("x")[0].type, "edge_unreachable");
  assert.equal(one.state, "fail_closed");
});

Deno.test("reachability: a policy change switches the active fail state; jitter stays in bounds", () => {
  const clock = new ManualClock();
  const t = new ReachabilityTracker({ settings: { edgeUnreachable: "direct", retries: 1 }, clock });
  t.onFailure("x");
  assert.equal(t.state, "fail_open");
  assert.deepEqual(t.updateSettings({ edgeUnreachable: "blocked", retries: 1 }), [{
    type: "edge_unreachable",
    action: "fail_closed",
    failures: 1,
    reason: "x",
  }]);
  assert.deepEqual(t.updateSettings({ edgeUnreachable: "blocked", retries: 5 }), []);

  let r = 0;
  const rand = [0, 0.9995, 0.5];
  const j = new ReachabilityTracker({
    settings: { edgeUnreachable: "direct", retries: 10 },
    clock,
    backoff: { initialMs: 1000, jitter: 0.2 },
    random: () => rand[r++ % rand.length],
  });
  const got: number[] = [];
  for (let i = 0; i < 3; i++) {
    j.onFailure("x");
    got.push((j.nextAttemptAt() as number) - clock.monotonic());
  }
  assert.deepEqual(got, [800, 2400, 4000]);
});

Deno.test("reachability: backoff settings given as undefined keep their defaults", () => {
  const clock = new ManualClock();
  const t = new ReachabilityTracker({
    settings: { edgeUnreachable: "direct", retries: 3 },
    clock,
    backoff: { initialMs: undefined, maxMs: 4000, factor: undefined, jitter: undefined },
  });
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    t.onFailure("refused");
    const next = t.nextAttemptAt() as number;
    delays.push(next - clock.monotonic());
    clock.advance(next - clock.monotonic());
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 4000, 4000]);
});
