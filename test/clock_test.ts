/** Manual timers: fire in due order as their clock is advanced, never early. */
import assert from "node:assert/strict";
import { ManualClock, ManualTimers } from "../src/clock.ts";

Deno.test("manual timers: due order, same-time order, cancel, clock moves to each due time", async () => {
  const clock = new ManualClock(0, 0);
  const t = new ManualTimers(clock);
  const fired: string[] = [];
  t.setTimeout(() => fired.push(`b@${clock.monotonic()}`), 200);
  t.setTimeout(() => fired.push(`a@${clock.monotonic()}`), 100);
  t.setTimeout(() => fired.push(`a2@${clock.monotonic()}`), 100);
  const gone = t.setTimeout(() => fired.push("never"), 150);
  t.clearTimeout(gone);
  assert.equal(t.nextIn(), 100);
  await t.advance(99);
  assert.equal(fired.length, 0);
  await t.advance(101);
  assert.deepEqual(fired, ["a@100", "a2@100", "b@200"]);
  assert.equal(clock.monotonic(), 200);
  // A timer set by a firing timer within the same advance fires too, at its own time.
  t.setTimeout(() => t.setTimeout(() => fired.push(`chained@${clock.monotonic()}`), 50), 10);
  await t.advance(100);
  assert.equal(fired.at(-1), "chained@260");
  assert.equal(clock.monotonic(), 300);
  assert.equal(t.pending, 0);
  assert.equal(t.nextIn(), null);
  t.setTimeout(() => fired.push("now"), Number.NaN);
  await t.advance(0);
  assert.equal(fired.at(-1), "now", "a bad delay fires at once, as setTimeout does");
});
