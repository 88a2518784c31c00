/** Defaults that an undefined option cannot knock out (the spread idiom's trap). */
import assert from "node:assert/strict";
import { withDefaults } from "../src/defaults.ts";

Deno.test("withDefaults: absent and undefined take the default; other values, null and 0 stay", () => {
  interface O {
    intervalMs?: number;
    misses?: number;
    name?: string | null;
    extra?: boolean;
  }
  const d = { intervalMs: 2000, misses: 2, name: "x" };
  const table: [O, O][] = [
    [{}, { intervalMs: 2000, misses: 2, name: "x" }],
    [{ intervalMs: undefined }, { intervalMs: 2000, misses: 2, name: "x" }],
    [{ intervalMs: 0 }, { intervalMs: 0, misses: 2, name: "x" }],
    [{ name: null }, { intervalMs: 2000, misses: 2, name: null }],
    [{ misses: 5, extra: true }, { intervalMs: 2000, misses: 5, name: "x", extra: true }],
  ];
  for (const [given, want] of table) {
    assert.deepEqual(withDefaults<O, "intervalMs" | "misses" | "name">(given, d), want);
    // The spread idiom gets the undefined case wrong; this is what the helper is for.
    if ("intervalMs" in given && given.intervalMs === undefined) {
      assert.equal({ ...d, ...given }.intervalMs, undefined);
    }
  }
  const input: O = { misses: 1 };
  withDefaults(input, { intervalMs: 1 });
  assert.deepEqual(input, { misses: 1 }, "the options object is not changed");
});
