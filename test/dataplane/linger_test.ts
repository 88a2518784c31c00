import assert from "node:assert/strict";
import { Linger } from "../../src/dataplane/linger.ts";

/** Feeds bursts at the given times (ms), then asks how long is left at `at`. */
function left(bursts: number[], at: number, base = 2, max = 100): number {
  const l = new Linger(base, max);
  for (const t of bursts) l.busy(t);
  return l.remaining(at);
}

Deno.test("linger: how long the pump keeps waiting synchronously (table)", () => {
  const ping = [0, 50, 100, 150, 200]; // a ping every 50 ms (one burst each)
  const answered = [0, 0.3, 50, 50.3, 100, 100.3, 150, 150.3, 200, 200.3]; // and its answer
  const cases: [string, number[], number, number][] = [
    ["nothing yet: park", [], 0, -Infinity],
    ["right after a burst: the base", [1000], 1000.5, 1.5],
    ["the base runs out", [1000], 1003, -1],
    ["a few pauses are not a pattern yet", [0, 50, 100], 110, -8],
    ["four short pauses: until the next is due (+25%)", ping, 240, 22.5],
    ["answers within 1 ms do not count as pauses", answered, 240.3, 49.7 * 1.25 - 40],
    ["one long pause ends the pattern", [...ping, 700], 710, -8],
    ["pauses longer than the maximum: the base only", [0, 200, 400, 600, 800], 801, 1],
    ["never longer than the maximum", [0, 90, 180, 270, 360], 360, 100],
  ];
  for (const [what, bursts, at, want] of cases) {
    const got = left(bursts, at);
    if (want === -Infinity) assert.ok(got < 0, what);
    else assert.ok(Math.abs(got - want) < 1e-9, `${what}: ${got} ≠ ${want}`);
  }
  assert.ok(left(ping, 240, 0, 0) < 0, "lingering switched off");
});
