/**
 * Exact data match: the index holds hashes only (no cell of the CSV appears
 * in it), rows match when enough of their columns appear, normalisation
 * makes spacing and case irrelevant, and near-misses do not match.
 */
import assert from "node:assert/strict";
import { buildEdmIndex } from "../../src/dlp/mod.ts";
import { PortcullisError } from "../../src/errors.ts";
import { digits, rng, scanOne, spec } from "./helpers.ts";

const rand = rng(5);
const FIRST = [
  "Alice",
  "Bruno",
  "Chloé",
  "Dmitri",
  "Eva",
  "Farid",
  "Grace",
  "Hiro",
  "Ines",
  "Jonas",
];
const LAST = [
  "Martin",
  "Schmidt",
  "Dubois",
  "Ivanov",
  "Rossi",
  "Haddad",
  "Hopper",
  "Tanaka",
  "Silva",
];
const people = Array.from({ length: 60 }, (_, i) => ({
  name: `${FIRST[i % FIRST.length]} ${LAST[(i * 7) % LAST.length]}`,
  account: `AC-${digits(rand, 8)}`,
  city: ["Berlin", "Lyon", "Porto", "Osaka"][i % 4],
}));
const csv = "name,account,city\r\n" +
  people.map((p) => `"${p.name}",${p.account},${p.city}`).join("\r\n") + "\r\n";
const index = buildEdmIndex(csv);
const EDM = spec({ kind: "edm", name: "customers", minColumns: 2 }, index);

Deno.test("EDM: the index keeps hashes, never the data", () => {
  assert.equal(index.rows, 60);
  assert.deepEqual(index.columns, ["name", "account", "city"]);
  const stored = JSON.stringify(index);
  for (const p of people.slice(0, 20)) {
    assert.ok(!stored.includes(p.account), "account numbers are not stored");
    assert.ok(!stored.toLowerCase().includes(p.name.toLowerCase()), "names are not stored");
  }
  assert.ok(index.cells.every((c) => /^[0-9a-f]{32} \d+ \d+$/.test(c)));
});

type Case = { text: string; count: number };
const cases: Case[] = [];
for (const p of people) {
  // Name and account together: a row with two columns.
  cases.push({ text: `Customer ${p.name}, account ${p.account}.`, count: 1 });
  // Spacing, case and punctuation do not matter.
  cases.push({
    text: `CUSTOMER:  ${p.name.toUpperCase().replace(" ", "   ")} (${p.account})`,
    count: 1,
  });
  // One column alone is not enough for minColumns 2.
  cases.push({ text: `account ${p.account} only`, count: 0 });
  // A near miss: one digit off.
  const off = p.account.slice(0, -1) + String((Number(p.account.slice(-1)) + 1) % 10);
  cases.push({ text: `Customer ${p.name}, account ${off}.`, count: 0 });
}
cases.push(
  {
    text: `${people[0].name} ${people[0].account} ${people[1].name} ${people[1].account}`,
    count: 2,
  },
  { text: "Alice Martinez AC-00000000", count: 0 },
  { text: "", count: 0 },
);

Deno.test(`EDM: ${cases.length} hits and misses`, () => {
  for (const c of cases) {
    assert.equal(scanOne(EDM, c.text).count, c.count, JSON.stringify(c.text));
  }
  const m = scanOne(EDM, `Customer ${people[3].name}, account ${people[3].account}.`);
  assert.equal(m.samples.length, 1);
  assert.ok(!m.samples[0].includes(people[3].account) && m.samples[0].includes("*"));
});

Deno.test("EDM: one column suffices when minColumns is 1; a new upload gets a new key", () => {
  const one = spec({ kind: "edm", name: "accounts", minColumns: 1 }, index);
  assert.equal(scanOne(one, `account ${people[9].account} only`).count, 1);
  const again = buildEdmIndex(csv);
  assert.notEqual(again.key, index.key);
  assert.notDeepEqual(again.cells.slice(0, 5), index.cells.slice(0, 5));
});

Deno.test("EDM: malformed CSV is refused with the line", () => {
  for (
    const [bad, line] of [
      ['a,b\n"x,1\n', /line 2/],
      ['a,b\n"x"y,1\n', /line 2/],
      ["a,b\n", /header row and at least one data row/],
    ] as const
  ) {
    assert.throws(() => buildEdmIndex(bad), (e: unknown) => {
      assert.ok(e instanceof PortcullisError && e.code === "invalid_csv");
      assert.match(e.message, line);
      return true;
    });
  }
});
