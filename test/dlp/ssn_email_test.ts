/**
 * US social security numbers (the SSA's rules on area, group and serial,
 * both layouts, never bare nine digits) and e-mail addresses (local parts,
 * sub-domains, the shapes that are not addresses).
 */
import assert from "node:assert/strict";
import { ssnValid } from "../../src/dlp/detectors/ssn.ts";
import { digits, rng, scanOne, spec } from "./helpers.ts";

const SSN = spec({ kind: "us_ssn" });
const EMAIL = spec({ kind: "email" });
const rand = rng(42);

type Case = { text: string; count: number; sample?: string };

const ssnCases: Case[] = [];
for (let i = 0; i < 40; i++) {
  const area = String(1 + Math.floor(rand() * 898)).padStart(3, "0");
  if (area === "666") continue;
  const group = String(1 + Math.floor(rand() * 98)).padStart(2, "0");
  const serial = String(1 + Math.floor(rand() * 9998)).padStart(4, "0");
  const d = area + group + serial;
  if (!ssnValid(d)) continue;
  ssnCases.push({ text: `SSN ${area}-${group}-${serial}.`, count: 1, sample: `***-**-${serial}` });
  ssnCases.push({ text: `ssn: ${area} ${group} ${serial}`, count: 1, sample: `***-**-${serial}` });
  ssnCases.push({ text: `id ${d} only`, count: 0 }); // bare nine digits
}
for (const bad of ["000", "666", "900", "950", "999"]) {
  ssnCases.push({ text: `${bad}-12-3456`, count: 0 });
}
ssnCases.push(
  { text: "123-00-4567", count: 0 }, // group 00
  { text: "123-45-0000", count: 0 }, // serial 0000
  { text: "078-05-1120", count: 0 }, // the Woolworth wallet card
  { text: "219-09-9999", count: 0 }, // an advertisement's number
  { text: "123-45 6789", count: 0 }, // mixed separators
  { text: "555-123-45-6789", count: 0 }, // part of a longer number
  { text: "123-45-67890", count: 0 },
  { text: "A123-45-6780", count: 0 },
  { text: "123-45-6780 and 234-56-7891", count: 2 },
  { text: "(123-45-6780)", count: 1 },
  { text: "", count: 0 },
  { text: `${digits(rand, 3)}.${digits(rand, 2)}.${digits(rand, 4)}`, count: 0 },
);

Deno.test(`US SSN: ${ssnCases.length} cases`, () => {
  assert.ok(ssnCases.length >= 100);
  for (const c of ssnCases) {
    const m = scanOne(SSN, c.text);
    assert.equal(m.count, c.count, `count for ${JSON.stringify(c.text)}`);
    if (c.sample) assert.deepEqual(m.samples, [c.sample], c.text);
  }
});

const LOCALS = [
  "john",
  "john.doe",
  "j_doe",
  "j+tag",
  "o'brien",
  "x",
  "first.last-2",
  "a%b",
  "UPPER",
  "n0",
  "mary-jane",
  "support",
  "no.reply",
  "billing+eu",
  "ab12cd",
  "Zoë".normalize("NFD").slice(0, 2),
  "team_lead",
  "x.y.z",
  "finance-dept",
  "a1",
];
const DOMAINS = [
  "example.com",
  "mail.example.co.uk",
  "corp-mail.example.org",
  "x.io",
  "sub.d.example.travel",
];
const emailCases: Case[] = [];
for (const l of LOCALS) {
  for (const d of DOMAINS) {
    emailCases.push({ text: `write to ${l}@${d}.`, count: 1 });
  }
}
emailCases.push(
  { text: "mailto:alice@example.com?subject=x", count: 1, sample: "a****@example.com" },
  { text: "<bob.smith@example.org>", count: 1, sample: "b********@example.org" },
  { text: "alice@example.com, bob@example.com; carol@example.com", count: 3 },
  { text: "user@localhost", count: 0 },
  { text: "@example.com", count: 0 },
  { text: "user@.com", count: 0 },
  { text: "user@domain", count: 0 },
  { text: "user@domain.c0m", count: 0 },
  { text: "user@domain.c", count: 0 },
  { text: "user@-domain.com", count: 0 },
  { text: "user.@example.com", count: 0 },
  { text: "no at sign here", count: 0 },
  { text: "a@@b.com", count: 0 },
  { text: "version 1.2@3.4", count: 0 },
  { text: "", count: 0 },
  { text: "@".repeat(500), count: 0 },
);

Deno.test(`e-mail: ${emailCases.length} cases`, () => {
  assert.ok(emailCases.length >= 100);
  for (const c of emailCases) {
    const m = scanOne(EMAIL, c.text);
    assert.equal(m.count, c.count, `count for ${JSON.stringify(c.text)}`);
    if (c.sample) assert.deepEqual(m.samples, [c.sample], c.text);
    for (const s of m.samples) assert.ok(s.includes("***"), `sample ${s} is masked`);
  }
});
