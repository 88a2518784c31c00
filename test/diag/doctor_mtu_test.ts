import assert from "node:assert/strict";
import { MTU_FLOOR, probeMtu } from "../../src/diag/doctor/mtu_probe.ts";

/** A path that passes DF packets up to `limit` bytes; counts probes and rounds. */
function path(limit: number) {
  const seen: number[] = [];
  return {
    seen,
    echo: (size: number) => {
      seen.push(size);
      return Promise.resolve(size <= limit);
    },
  };
}

const TABLE: [string, number, number, number | null][] = [
  ["full MTU passes", 1500, 1420, 1420],
  ["1280 link with WireGuard padding", 1216, 1420, 1216],
  ["just below the tunnel MTU", 1419, 1420, 1419],
  ["at the floor", MTU_FLOOR, 1420, MTU_FLOOR],
  ["nothing passes", 0, 1420, null],
  ["odd limit", 1001, 1500, 1001],
];

Deno.test("mtu probe: a lost echo is tried again, not taken for a small MTU", async () => {
  // Every size's first echo is lost: the answer is still exact.
  const tried = new Set<number>();
  const echo = (size: number) => {
    const first = !tried.has(size);
    tried.add(size);
    return Promise.resolve(!first && size <= 1216);
  };
  const r = await probeMtu(echo, 1420, "100.64.0.1");
  assert.equal(r.largestOk, 1216);
});

for (const [name, limit, mtu, want] of TABLE) {
  Deno.test(`mtu probe: ${name}`, async () => {
    const p = path(limit);
    const r = await probeMtu(p.echo, mtu, "100.64.0.1");
    assert.equal(r.largestOk, want);
    assert.equal(r.tunnelMtu, mtu);
    if (want !== null && want < mtu) assert.equal(r.smallestFailed, want + 1);
    // Parallel rounds keep it short: one probe when healthy, a few dozen at most.
    assert.ok(p.seen.length <= (want === mtu ? 1 : 80), `${p.seen.length} probes`);
  });
}
