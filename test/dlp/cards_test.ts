/**
 * Credit card numbers: published test numbers of every brand in three
 * layouts, generated numbers per brand prefix (Luhn-valid found, the same
 * with a wrong check digit not), and the shapes that must not count.
 */
import assert from "node:assert/strict";
import { cardBrand, luhnValid } from "../../src/dlp/detectors/card.ts";
import { digits, rng, scanOne, spec } from "./helpers.ts";

const CARDS = spec({ kind: "credit_card" });

/** Luhn check digit, computed the textbook way (independently of the detector). */
function checkDigit(body: string): string {
  const rev = [...body].reverse().map(Number);
  const sum = rev.reduce((s, d, i) => s + (i % 2 === 0 ? (d * 2 > 9 ? d * 2 - 9 : d * 2) : d), 0);
  return String((10 - (sum % 10)) % 10);
}

const KNOWN: [string, string][] = [
  ["4111111111111111", "visa"],
  ["4012888888881881", "visa"],
  ["4222222222222", "visa"],
  ["5555555555554444", "mastercard"],
  ["5105105105105100", "mastercard"],
  ["2223003122003222", "mastercard"],
  ["378282246310005", "amex"],
  ["371449635398431", "amex"],
  ["6011111111111117", "discover"],
  ["6011000990139424", "discover"],
  ["3530111333300000", "jcb"],
  ["3566002020360505", "jcb"],
  ["30569309025904", "diners"],
  ["38520000023237", "diners"],
  ["6200000000000005", "unionpay"],
];

const group4 = (d: string, sep: string) => d.replace(/(\d{4})(?=\d)/g, `$1${sep}`);

type Case = { text: string; count: number; sample?: string };
const cases: Case[] = [];
for (const [num] of KNOWN) {
  const sample = `${num.slice(0, 4)} ${"*".repeat(num.length - 8).replace(/(.{4})(?=.)/g, "$1 ")} ${
    num.slice(-4)
  }`;
  cases.push({ text: `Card: ${num}.`, count: 1, sample });
  cases.push({ text: `pay with ${group4(num, " ")} today`, count: 1, sample });
  cases.push({ text: `(${group4(num, "-")})`, count: 1, sample });
}

// Generated: prefix and length per brand; valid check digit found, wrong one not.
const rand = rng(13);
const PREFIXES: [string, number][] = [
  ["4", 16],
  ["4", 13],
  ["4", 19],
  ["51", 16],
  ["55", 16],
  ["2221", 16],
  ["2720", 16],
  ["34", 15],
  ["37", 15],
  ["6011", 16],
  ["65", 16],
  ["644", 19],
  ["3528", 16],
  ["3589", 19],
  ["36", 14],
  ["300", 14],
  ["62", 17],
  ["6304", 18],
  ["5018", 13],
  ["622126", 16],
];
for (let round = 0; round < 3; round++) {
  for (const [prefix, len] of PREFIXES) {
    const body = prefix + digits(rand, len - prefix.length - 1);
    const good = body + checkDigit(body);
    const bad = body + String((Number(checkDigit(body)) + 1 + Math.floor(rand() * 8)) % 10);
    cases.push({ text: `no. ${good} end`, count: 1 });
    cases.push({ text: `no. ${bad} end`, count: 0 });
  }
}

// Shapes that are not card numbers.
const luhnBody = (prefix: string, len: number) => {
  const b = prefix + digits(rand, len - prefix.length - 1);
  return b + checkDigit(b);
};
cases.push(
  { text: luhnBody("1", 16), count: 0 }, // no brand starts with 1
  { text: luhnBody("7", 16), count: 0 },
  { text: luhnBody("9", 16), count: 0 },
  { text: luhnBody("0", 16), count: 0 },
  { text: "4111 1111 1111", count: 0 }, // 12 digits
  { text: "41111111111111111111", count: 0 }, // 20 bare digits
  { text: "ID4111111111111111", count: 0 }, // glued to letters
  { text: "4111111111111111X", count: 0 },
  { text: "4111-1111 1111-1111", count: 0 }, // mixed separators
  { text: "4111  1111  1111  1111", count: 0 }, // double spaces
  { text: "378282246310005 is amex but 37828224631000 is short", count: 1 },
  { text: "3782822463100051", count: 0 }, // amex prefix, 16 digits
  { text: "5555555555554444 5105105105105100", count: 2 }, // two cards side by side
  { text: "4111 1111 1111 1111 2025", count: 1 }, // a card followed by a year
  { text: "Tel +49 30 1234 5678 9", count: 0 },
  { text: "", count: 0 },
  { text: "4111111111111111,5555555555554444;378282246310005", count: 3 },
  { text: "1.4111111111111111", count: 1 },
);

Deno.test(`credit cards: ${cases.length} cases`, () => {
  assert.ok(cases.length >= 100);
  for (const c of cases) {
    const m = scanOne(CARDS, c.text);
    assert.equal(m.count, c.count, `count for ${JSON.stringify(c.text)}`);
    if (c.sample) assert.deepEqual(m.samples, [c.sample], `sample for ${c.text}`);
    for (const s of m.samples) {
      assert.ok(
        !/\d{5}/.test(s.replace(/[ *]/g, "|")),
        `sample ${s} shows at most four digits together`,
      );
    }
  }
});

Deno.test("credit cards: brand and Luhn helpers", () => {
  for (const [num, brand] of KNOWN) {
    assert.equal(cardBrand(num), brand, num);
    assert.ok(luhnValid(num), num);
  }
  assert.equal(luhnValid("4111111111111112"), false);
  assert.equal(cardBrand("1234567890123452"), null);
});
