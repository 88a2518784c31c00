/** The captive-portal window and the enrolment retry timer, over manual timers. */
import assert from "node:assert/strict";
import { ManualTimers } from "../../../src/clock.ts";
import { CaptiveTimer } from "../../../src/connector/engine/captive_timer.ts";

Deno.test("captive timer: fires after the window, restarts replace, cancel silences", async () => {
  const timers = new ManualTimers();
  const t = new CaptiveTimer(timers);
  let fired = 0;
  t.start(10, () => fired++);
  assert.equal(t.running, true);
  await timers.advance(10 * 60_000 - 1);
  assert.equal(fired, 0);
  await timers.advance(1);
  assert.equal(fired, 1);
  assert.equal(t.running, false);

  t.start(5, () => fired++);
  await timers.advance(4 * 60_000);
  t.start(5, () => fired++); // a new portal: a new full window
  await timers.advance(4 * 60_000);
  assert.equal(fired, 1, "the first window was replaced");
  await timers.advance(60_000);
  assert.equal(fired, 2);

  t.start(1, () => fired++);
  t.cancel();
  await timers.advance(120_000);
  assert.equal(fired, 2);
  assert.equal(timers.pending, 0);
});
