import assert from "node:assert/strict";
import { Pacer } from "../../src/http/api/pacer.ts";

Deno.test("pacer: a burst goes through a batch per event-loop turn, in order, with the loop running between", async () => {
  const pacer = new Pacer(3);
  const order: string[] = [];
  const all = Array.from({ length: 8 }, (_, i) =>
    pacer.turn().then(() => {
      order.push(`w${i}`);
      // Other work scheduled by the first batch (a pump turn, a request)
      // runs before the next batch, not after the whole burst.
      if (i === 0) setTimeout(() => order.push("other"), 0);
    }));
  assert.equal(pacer.waiting, 8);
  await Promise.all(all);
  assert.deepEqual(order, ["w0", "w1", "w2", "other", "w3", "w4", "w5", "w6", "w7"]);
  assert.equal(pacer.waiting, 0);
});

Deno.test("pacer: nothing goes through in the same turn it was asked", async () => {
  const pacer = new Pacer(10);
  let through = false;
  const p = pacer.turn().then(() => (through = true));
  await Promise.resolve();
  assert.equal(through, false);
  await p;
  assert.equal(through, true);
});

Deno.test("pacer: a batch size that is not a positive integer is refused", () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    assert.throws(() => new Pacer(bad), RangeError);
  }
});
