/**
 * Shared by the DLP tests: a seeded random source (so generated cases are
 * the same on every run), and scanning one text with one dictionary.
 */
import {
  DictionaryDef,
  type DictionaryMatch,
  type DictionarySpec,
  Scanner,
} from "../../src/dlp/mod.ts";

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` random decimal digits. */
export function digits(rand: () => number, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += Math.floor(rand() * 10);
  return s;
}

/** A dictionary spec from a partial definition. */
export function spec(def: Record<string, unknown>, edm?: DictionarySpec["edm"]): DictionarySpec {
  return { def: DictionaryDef.parse({ name: def.kind, ...def }), edm };
}

/** Scans `text` with one dictionary; returns its match (count 0 when nothing was found). */
export function scanOne(s: DictionarySpec, text: string): DictionaryMatch {
  const scanner = new Scanner([s]);
  const tally = scanner.tally();
  scanner.scanText(text, tally);
  return tally.matches()[0] ??
    { dictionary: s.def.name, kind: s.def.kind, count: 0, samples: [], triggered: false };
}
