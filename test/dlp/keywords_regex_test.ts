/**
 * Keyword lists (Aho–Corasick: overlapping terms, case folding, whole words,
 * many terms) and custom RE2 patterns (matches, refusals with a sentence,
 * and linear time on the inputs that make backtracking engines explode).
 */
import assert from "node:assert/strict";
import { AhoCorasick } from "../../src/dlp/detectors/aho_corasick.ts";
import { PortcullisError } from "../../src/errors.ts";
import { rng, scanOne, spec } from "./helpers.ts";

type Case = { text: string; count: number };

const TERMS = ["confidential", "project falcon", "internal only", "geheim", "résumé", "ĳssel"];
const KW = spec({ kind: "keywords", name: "secret-words", terms: TERMS });
const KW_PARTIAL = spec({ kind: "keywords", name: "partial", terms: TERMS, wholeWord: false });
const KW_CASE = spec({
  kind: "keywords",
  name: "case",
  terms: ["TOP SECRET"],
  caseSensitive: true,
});

const kwCases: { s: typeof KW; text: string; count: number }[] = [];
const rand = rng(7);
const FILLER = [
  "the",
  "report",
  "is",
  "due",
  "on",
  "friday",
  "see",
  "attached",
  "numbers",
  "for",
  "q3",
];
for (let i = 0; i < 60; i++) {
  const words: string[] = [];
  let expected = 0;
  for (let w = 0; w < 12; w++) {
    if (rand() < 0.15) {
      const t = TERMS[Math.floor(rand() * TERMS.length)];
      words.push(rand() < 0.5 ? t.toUpperCase() : t);
      expected++;
    } else words.push(FILLER[Math.floor(rand() * FILLER.length)]);
  }
  kwCases.push({ s: KW, text: words.join(" ") + ".", count: expected });
}
for (const t of TERMS) {
  kwCases.push({ s: KW, text: `x${t}`, count: 0 }); // glued on the left
  kwCases.push({ s: KW, text: `${t}s`, count: 0 }); // glued on the right
  kwCases.push({ s: KW_PARTIAL, text: `x${t}s`, count: 1 }); // inside a word when allowed
  kwCases.push({ s: KW, text: `(${t})`, count: 1 });
  kwCases.push({ s: KW, text: `${t}, ${t}; ${t}`, count: 3 });
}
kwCases.push(
  { s: KW, text: "CONFIDENTIAL", count: 1 },
  { s: KW, text: "Project  Falcon", count: 0 }, // two spaces: a different phrase
  { s: KW, text: "project falconry", count: 0 },
  { s: KW_CASE, text: "TOP SECRET", count: 1 },
  { s: KW_CASE, text: "top secret", count: 0 },
  { s: KW_CASE, text: "Top Secret", count: 0 },
  { s: KW, text: "RÉSUMÉ attached", count: 1 },
  { s: KW, text: "", count: 0 },
  { s: KW, text: "geheim\ngeheim", count: 2 },
  { s: KW, text: "Internal Only — do not forward", count: 1 },
  { s: KW, text: "internal-only", count: 0 },
);

Deno.test(`keywords: ${kwCases.length} cases`, () => {
  assert.ok(kwCases.length >= 100);
  for (const c of kwCases) {
    assert.equal(scanOne(c.s, c.text).count, c.count, `${c.s.def.name}: ${JSON.stringify(c.text)}`);
  }
  const m = scanOne(KW, "this is Confidential");
  assert.deepEqual(m.samples, ["c***********"]);
});

Deno.test("Aho–Corasick: overlapping terms and thousands of terms in one pass", () => {
  const hits: string[] = [];
  const terms = ["he", "she", "his", "hers"];
  new AhoCorasick(terms).search("ushers", (h) => hits.push(`${terms[h.term]}@${h.start}`));
  assert.deepEqual(hits.sort(), ["he@2", "hers@2", "she@1"]);
  const many = Array.from({ length: 5000 }, (_, i) => `term${i}x`);
  const ac = new AhoCorasick(many);
  let n = 0;
  ac.search("a term42x b term4999x c term5000x", () => n++);
  assert.equal(n, 2);
});

const RE = (pattern: string, caseSensitive = false) =>
  spec({ kind: "regex", name: "custom", pattern, caseSensitive });
const reCases: { s: ReturnType<typeof RE>; text: string; count: number }[] = [];
const EMP = RE("EMP-[0-9]{6}");
const PROJ = RE("\\bPRJ[A-Z]{2}\\d{3}\\b", true);
for (let i = 0; i < 50; i++) {
  const id = String(Math.floor(rand() * 1e6)).padStart(6, "0");
  reCases.push({ s: EMP, text: `employee EMP-${id} joined`, count: 1 });
  reCases.push({ s: EMP, text: `employee EMP-${id.slice(1)} joined`, count: 0 });
}
for (let i = 0; i < 30; i++) {
  const code = `PRJ${String.fromCharCode(65 + i % 26, 66 + i % 24)}${String(i).padStart(3, "0")}`;
  reCases.push({ s: PROJ, text: `code ${code}.`, count: 1 });
  reCases.push({ s: PROJ, text: `code ${code.toLowerCase()}.`, count: 0 });
}
reCases.push(
  { s: EMP, text: "emp-123456", count: 1 }, // case-insensitive by default
  { s: EMP, text: "EMP-123456EMP-654321", count: 2 },
  { s: RE("(a|b)+c"), text: "ababababc xc abc", count: 2 },
  { s: RE("x{2,3}"), text: "xxxxxxx", count: 2 },
  { s: RE("[[:digit:]]{3}"), text: "1234567", count: 2 },
);

Deno.test(`custom patterns (RE2): ${reCases.length} cases`, () => {
  assert.ok(reCases.length >= 100);
  for (const c of reCases) {
    assert.equal(
      scanOne(c.s, c.text).count,
      c.count,
      `${c.s.def.pattern}: ${JSON.stringify(c.text)}`,
    );
  }
});

Deno.test("custom patterns: back-references, look-around and empty matches are refused with a sentence", () => {
  for (const p of ["(a)\\1", "foo(?=bar)", "(?<!x)y", "a*", "(|x)"]) {
    assert.throws(() => scanOne(RE(p), "x"), (e: unknown) => {
      assert.ok(e instanceof PortcullisError);
      assert.equal(e.code, "invalid_pattern");
      assert.match(e.message, /^Cannot use the pattern of dictionary "custom": /);
      return true;
    }, p);
  }
});

Deno.test("custom patterns: catastrophic-backtracking shapes run in linear time", () => {
  // With a backtracking engine, (a+)+$ on "aaaa…!" takes exponential time;
  // RE2 answers in one pass. 200,000 characters would not finish otherwise.
  const text = "a".repeat(200_000) + "!";
  assert.equal(scanOne(RE("(a+)+$"), text).count, 0);
  assert.equal(scanOne(RE("(x+x+)+y"), "x".repeat(50_000)).count, 0);
});
