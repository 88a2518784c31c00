/**
 * IBANs: the registry's example numbers of many countries, IBANs generated
 * for every country of the table (check digits computed with BigInt, apart
 * from the detector's streaming mod 97), printed bare, grouped and in lower
 * case; and the same with a wrong check, a wrong length or an unknown country.
 */
import assert from "node:assert/strict";
import { IBAN_LENGTHS, ibanValid } from "../../src/dlp/detectors/iban.ts";
import { rng, scanOne, spec } from "./helpers.ts";

const IBAN = spec({ kind: "iban" });

const EXAMPLES = [
  "DE89370400440532013000",
  "GB82WEST12345698765432",
  "FR1420041010050500013M02606",
  "NL91ABNA0417164300",
  "ES9121000418450200051332",
  "IT60X0542811101000000123456",
  "CH9300762011623852957",
  "BE68539007547034",
  "AT611904300234573201",
  "NO9386011117947",
  "PL61109010140000071219812874",
  "SE4550000000058398257466",
  "DK5000400440116243",
  "FI2112345600000785",
  "PT50000201231234567890154",
  "IE29AIBK93115212345678",
  "LU280019400644750000",
  "GR1601101250000000012300695",
];

function checkDigits(country: string, bban: string): string {
  const moved = bban + country + "00";
  const num = [...moved].map((c) => /[A-Z]/.test(c) ? String(c.charCodeAt(0) - 55) : c).join("");
  return String(98n - (BigInt(num) % 97n)).padStart(2, "0");
}

const rand = rng(97);
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
function generate(country: string): string {
  const len = IBAN_LENGTHS[country];
  let bban = "";
  for (let i = 0; i < len - 4; i++) {
    bban += i < 4 && rand() < 0.3
      ? ALNUM[Math.floor(rand() * 26)]
      : String(Math.floor(rand() * 10));
  }
  return country + checkDigits(country, bban) + bban;
}
const grouped = (s: string) => s.replace(/(.{4})(?=.)/g, "$1 ");

type Case = { text: string; count: number; sample?: string };
const cases: Case[] = [];
for (const e of EXAMPLES) {
  const sample = grouped(e.slice(0, 4) + "*".repeat(e.length - 6) + e.slice(-2));
  cases.push({ text: `IBAN: ${e}`, count: 1, sample });
  cases.push({ text: `Konto ${grouped(e)}, danke`, count: 1, sample });
}
for (const country of Object.keys(IBAN_LENGTHS)) {
  const good = generate(country);
  cases.push({ text: `pay to ${good}.`, count: 1 });
  cases.push({ text: `pay to ${grouped(good).toLowerCase()}.`, count: 1 });
  // Wrong check digits: any change of them breaks mod 97.
  const cd = Number(good.slice(2, 4));
  const wrong = good.slice(0, 2) +
    String((cd + 1 + Math.floor(rand() * 90)) % 100).padStart(2, "0") +
    good.slice(4);
  if (wrong !== good) cases.push({ text: `pay to ${wrong}.`, count: 0 });
  // One character too many or too few for the country.
  cases.push({ text: `pay to ${good}7`, count: 0 });
  cases.push({ text: `pay to ${good.slice(0, -1)} x`, count: 0 });
}
cases.push(
  { text: "XX89370400440532013000", count: 0 }, // unknown country
  { text: "DEX9370400440532013000", count: 0 },
  { text: "ADE89370400440532013000", count: 0 }, // glued to a letter
  { text: "DE89 3704 0044 0532 0130 00 and GB82 WEST 1234 5698 7654 32", count: 2 },
  { text: "DE89  3704 0044 0532 0130 00", count: 0 }, // double space
  { text: "DE89370 400440532013000", count: 0 }, // space not after a group of four
  { text: "", count: 0 },
);

Deno.test(`IBAN: ${cases.length} cases over ${Object.keys(IBAN_LENGTHS).length} countries`, () => {
  assert.ok(cases.length >= 100);
  for (const c of cases) {
    const m = scanOne(IBAN, c.text);
    assert.equal(m.count, c.count, `count for ${JSON.stringify(c.text)}`);
    if (c.sample) assert.deepEqual(m.samples, [c.sample], c.text);
  }
});

Deno.test("IBAN: validity helper", () => {
  for (const e of EXAMPLES) assert.ok(ibanValid(e), e);
  assert.equal(ibanValid("DE88370400440532013000"), false);
  assert.equal(ibanValid("DE8937040044053201300"), false);
});
