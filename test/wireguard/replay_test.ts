import assert from "node:assert/strict";
import { MAX_COUNTER, REPLAY_WINDOW_SIZE, ReplayWindow } from "../../src/wireguard/replay.ts";
import { readU64 } from "../../src/wireguard/messages.ts";

Deno.test("replay: in-order, out-of-order, duplicates and the window edge", () => {
  const w = new ReplayWindow();
  const steps: Array<[number, boolean]> = [
    [0, true],
    [0, false],
    [1, true],
    [5, true],
    [3, true],
    [3, false],
    [5, false],
    [REPLAY_WINDOW_SIZE + 5, true],
    [5, false], // exactly the window size behind, and already seen
    [4, false], // one more than the window size behind
    [REPLAY_WINDOW_SIZE + 4, true],
    [100_000, true],
    [100_000 - REPLAY_WINDOW_SIZE, true],
    [100_000 - REPLAY_WINDOW_SIZE - 1, false],
  ];
  for (const [c, want] of steps) {
    assert.equal(w.check(c) && w.accept(c), want, `counter ${c}`);
  }
});

Deno.test("replay: a big jump clears the ring; limits above 2^53 are rejected", () => {
  const w = new ReplayWindow();
  for (let i = 0; i < 64; i++) assert.ok(w.accept(i));
  assert.ok(w.accept(1_000_000));
  // Counters that alias earlier ring slots are now new.
  assert.ok(w.accept(1_000_000 - 32));
  assert.ok(!w.accept(63));
  assert.ok(w.accept(MAX_COUNTER));
  assert.ok(!w.check(MAX_COUNTER + 2));
  // A wire counter of 2^64-1 (>= REJECT_AFTER_MESSAGES) comes out of readU64 above 2^53.
  const wire = new Uint8Array(8).fill(0xff);
  assert.ok(!new ReplayWindow().check(readU64(wire, 0)));
  w.reset();
  assert.ok(w.accept(0));
});
