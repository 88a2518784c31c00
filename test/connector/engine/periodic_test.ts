/** Periodic work over manual timers: first run, period, no overlap, failures, abort. */
import assert from "node:assert/strict";
import { ManualTimers } from "../../../src/clock.ts";
import { every } from "../../../src/connector/engine/periodic.ts";
import { setLogSinks } from "../../../src/log.ts";

setLogSinks([]);

Deno.test("every: runs once per period, first after a full period or within 1 s when soon", async () => {
  const timers = new ManualTimers();
  const ac = new AbortController();
  let late = 0;
  let soon = 0;
  every(ac.signal, 30_000, () => Promise.resolve(void late++), { timers });
  every(ac.signal, 30_000, () => Promise.resolve(void soon++), { timers, soon: true });
  await timers.advance(999);
  assert.deepEqual([late, soon], [0, 0]);
  await timers.advance(1);
  assert.deepEqual([late, soon], [0, 1]);
  await timers.advance(29_000);
  assert.deepEqual([late, soon], [1, 1]);
  await timers.advance(30_000 * 10);
  assert.deepEqual([late, soon], [11, 11]);
  ac.abort();
  await timers.advance(30_000 * 10);
  assert.deepEqual([late, soon], [11, 11], "nothing after abort");
  assert.equal(timers.pending, 0, "no timer left behind");
});

Deno.test("every: a failing run is followed by the next; a slow run delays the next", async () => {
  const timers = new ManualTimers();
  const ac = new AbortController();
  const starts: number[] = [];
  let release: (() => void) | null = null;
  every(ac.signal, 1000, () => {
    starts.push(timers.clock.monotonic());
    if (starts.length === 1) return Promise.reject(new Error("edge down"));
    if (starts.length === 2) return new Promise<void>((r) => (release = r));
    return Promise.resolve();
  }, { timers });
  await timers.advance(2000);
  assert.equal(starts.length, 2, "the failure did not stop the loop");
  await timers.advance(5000);
  assert.equal(starts.length, 2, "no overlapping run while the second is still going");
  release!();
  await timers.advance(1000);
  assert.equal(starts.length, 3);
  ac.abort();
});
