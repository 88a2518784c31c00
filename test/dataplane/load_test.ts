import assert from "node:assert/strict";
import { HandshakeLoad, UNDER_LOAD_HOLD_MS } from "../../src/dataplane/load.ts";

Deno.test("handshake load: initiations are told from other datagrams", () => {
  const init = new Uint8Array(148);
  init[0] = 1;
  const response = new Uint8Array(92);
  response[0] = 2;
  const odd = new Uint8Array(148);
  odd[0] = 1;
  odd[2] = 7; // reserved bytes must be zero
  const data = new Uint8Array(148);
  data[0] = 4;
  const l = new HandshakeLoad();
  assert.equal(
    l.count([init, response, odd, data, init], new Int32Array([148, 92, 148, 148, 100]), 5),
    1,
    "only a 148-byte type 1 with zero reserved bytes (the last one is cut short)",
  );
});

Deno.test("handshake load: when it starts and when it ends (table)", () => {
  // [what, [initiations, at ms] in turn, underLoad after each]
  const cases: [string, [number, number][], boolean[]][] = [
    ["a few are normal", [[1, 0], [2, 100], [1, 900]], [false, false, false]],
    ["a batch above 32 is a flood at once", [[33, 0]], [true]],
    ["32 in a batch is not", [[32, 0]], [false]],
    [
      "above 100 in a second is a flood",
      [[30, 0], [30, 300], [30, 500], [11, 600]],
      [false, false, false, true],
    ],
    [
      "the window restarts each second",
      [[30, 0], [30, 300], [30, 500], [30, 1000]],
      [false, false, false, false],
    ],
  ];
  for (const [what, events, want] of cases) {
    const l = new HandshakeLoad(32, 100);
    events.forEach(([n, at], i) => {
      l.note(n, at);
      assert.equal(l.underLoad, want[i], `${what} #${i}`);
    });
  }
  const l = new HandshakeLoad(32, 100);
  assert.equal(l.note(50, 0), true, "turning load on is reported once");
  assert.equal(l.note(50, 100), false, "not twice");
  assert.equal(l.until, 100 + UNDER_LOAD_HOLD_MS, "each flood batch moves the end");
  assert.equal(l.expire(100 + UNDER_LOAD_HOLD_MS - 1), false, "still under load");
  assert.equal(l.expire(100 + UNDER_LOAD_HOLD_MS), true, "ends 1 s after the last flood batch");
  assert.equal(l.underLoad, false);
  assert.equal(l.expire(5000), false, "ending is reported once");
});
