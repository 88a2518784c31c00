import assert from "node:assert/strict";
import {
  clockSkewSentence,
  clockSkewStatus,
  ClockSkewWatch,
} from "../../src/connector/clock_skew.ts";

Deno.test("clock skew: verdict and sentence by size and sign", () => {
  // [edge minus local ms, tolerance ms, exceeded, message]
  const table: [number, number, boolean, string | null][] = [
    [
      372_000,
      120_000,
      true,
      "Your clock is 6 min 12 s behind the edge; sign-in will fail until it is corrected",
    ],
    [
      -372_000,
      120_000,
      true,
      "Your clock is 6 min 12 s ahead of the edge; sign-in will fail until it is corrected",
    ],
    [120_000, 120_000, false, null], // exactly the tolerance is still accepted
    [
      120_001,
      120_000,
      true,
      "Your clock is 2 min 0 s behind the edge; sign-in will fail until it is corrected",
    ],
    [
      -45_000,
      30_000,
      true,
      "Your clock is 45 s ahead of the edge; sign-in will fail until it is corrected",
    ],
    [372_000, 600_000, false, null], // a wider policy tolerance accepts it
    [0, 0, false, null],
    [
      5_400_000,
      120_000,
      true,
      "Your clock is 1 h 30 min behind the edge; sign-in will fail until it is corrected",
    ],
  ];
  for (const [skew, tol, exceeded, message] of table) {
    const s = clockSkewStatus(skew, tol)!;
    assert.equal(s.exceeded, exceeded, `${skew}/${tol}`);
    assert.equal(s.message, message, `${skew}/${tol}`);
  }
  assert.equal(clockSkewStatus(null), null, "nothing measured yet");
  assert.equal(clockSkewStatus(NaN), null);
  assert.equal(clockSkewStatus(200_000)!.toleranceMs, 120_000, "default tolerance is 2 min");
  assert.equal(
    clockSkewSentence(-1000),
    "Your clock is 1 s ahead of the edge; sign-in will fail until it is corrected",
  );
});

Deno.test("clock skew watch: warns once, again only when it drifts further, clears once", () => {
  const w = new ClockSkewWatch();
  const seen = (skew: number | null, tol = 120_000) =>
    w.observe(skew === null ? null : clockSkewStatus(skew, tol))?.type ?? null;
  // [measured skew, expected notice]
  const steps: [number | null, string | null][] = [
    [null, null],
    [1_000, null],
    [372_000, "clock_skew"],
    [372_400, null], // the same skew measured again is not news
    [400_000, null],
    [600_000, "clock_skew"], // drifted by more than the tolerance: told afresh
    [-1_000, "clock_skew_cleared"],
    [0, null],
    [-300_000, "clock_skew"],
  ];
  for (const [i, [skew, want]] of steps.entries()) {
    assert.equal(seen(skew), want, `step ${i}: skew ${skew}`);
  }
  assert.equal(w.warning, true);
  const cleared = w.observe(clockSkewStatus(2_000));
  assert.match(cleared!.message, /^Your clock is now within 2 min 0 s of the edge \(2 s behind\)/);
});
