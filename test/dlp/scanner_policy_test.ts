/**
 * Thresholds, proximity and the rule decision: who, which channel, which
 * dictionaries, first rule wins, "all" versus "any", exemptions.
 */
import assert from "node:assert/strict";
import { decide, DlpPolicy, DlpRule } from "../../src/dlp/mod.ts";
import { PortcullisError } from "../../src/errors.ts";
import { scanOne, spec } from "./helpers.ts";

Deno.test("threshold: a dictionary counts as found from its threshold on", () => {
  const cards3 = spec({ kind: "credit_card", name: "cards3", threshold: 3 });
  const two = "4111111111111111 5555555555554444";
  assert.equal(scanOne(cards3, two).count, 2);
  assert.equal(scanOne(cards3, two).triggered, false);
  assert.equal(scanOne(cards3, `${two} 378282246310005`).triggered, true);
});

Deno.test("proximity: findings count only with a term close by", () => {
  const near = spec({
    kind: "credit_card",
    name: "near",
    proximity: { terms: ["visa", "card number"], window: 20 },
  });
  const table: [string, number][] = [
    ["Visa: 4111111111111111", 1],
    ["4111111111111111 is the card number", 1],
    ["4111111111111111" + " ".repeat(40) + "visa", 0],
    ["order 4111111111111111", 0],
    ["card number: 4111111111111111, 5555555555554444" + ".".repeat(60) + "5105105105105100", 2],
  ];
  for (const [text, n] of table) assert.equal(scanOne(near, text).count, n, text);
});

const DICTS = [
  spec({ kind: "credit_card", name: "cards" }),
  spec({ kind: "us_ssn", name: "ssn" }),
  spec({ kind: "keywords", name: "secret", terms: ["confidential"] }),
];
const rule = (r: Record<string, unknown>) => DlpRule.parse(r);

Deno.test("decide: first matching rule by order, subject and channel", () => {
  const policy = new DlpPolicy([
    rule({
      name: "finance may",
      groups: ["finance"],
      channels: ["removable_media"],
      dictionaries: ["cards"],
      action: "allow",
    }),
    rule({
      name: "cards on USB",
      channels: ["removable_media", "network_share"],
      dictionaries: ["cards"],
      action: "block",
    }),
    rule({
      name: "ssn and secret",
      channels: ["web_upload"],
      dictionaries: ["ssn", "secret"],
      match: "all",
      action: "block",
    }),
    rule({
      name: "ssn anywhere",
      channels: ["web_upload", "removable_media"],
      dictionaries: ["ssn"],
      action: "notify",
    }),
    rule({
      name: "off",
      enabled: false,
      channels: ["printing"],
      dictionaries: ["cards"],
      action: "block",
    }),
  ], DICTS);
  const scan = (text: string) => {
    const t = policy.scanner.tally();
    policy.scanner.scanText(text, t);
    return t.matches();
  };
  const cards = scan("4111111111111111");
  const ssn = scan("123-45-6780");
  const both = scan("confidential 123-45-6780");
  const alice = { user: "alice", groups: ["sales"] };
  const fin = { user: "fred", groups: ["finance"] };
  const table: [typeof alice, Parameters<typeof decide>[2], typeof cards, string, string | null][] =
    [
      [alice, "removable_media", cards, "block", "cards on USB"],
      [fin, "removable_media", cards, "allow", "finance may"],
      [fin, "network_share", cards, "block", "cards on USB"],
      [alice, "web_upload", cards, "allow", null],
      [alice, "web_upload", ssn, "notify", "ssn anywhere"],
      [alice, "web_upload", both, "block", "ssn and secret"],
      [alice, "printing", cards, "allow", null],
      [alice, "removable_media", [], "allow", null],
    ];
  for (const [who, channel, matches, action, ruleName] of table) {
    const d = decide(policy, who, channel, matches);
    assert.equal(
      d.action,
      action,
      `${who.user} ${channel} ${JSON.stringify(matches.map((m) => m.dictionary))}`,
    );
    assert.equal(d.rule, ruleName);
  }
  const d = decide(policy, alice, "removable_media", scan("4111111111111111 5555555555554444"));
  assert.equal(d.reason, 'Rule "cards on USB" found 2 credit card numbers (cards)');
  assert.equal(policy.covers("printing"), false);
  assert.equal(policy.covers("removable_media"), true);
});

Deno.test("decide: users by name, case-insensitively; a rule naming a missing dictionary is refused", () => {
  const policy = new DlpPolicy([
    rule({
      name: "bob only",
      users: ["Bob"],
      channels: ["web_upload"],
      dictionaries: ["cards"],
      action: "block",
    }),
  ], DICTS);
  const t = policy.scanner.tally();
  policy.scanner.scanText("4111111111111111", t);
  assert.equal(
    decide(policy, { user: "bob", groups: [] }, "web_upload", t.matches()).action,
    "block",
  );
  assert.equal(
    decide(policy, { user: "carol", groups: [] }, "web_upload", t.matches()).action,
    "allow",
  );
  assert.throws(
    () =>
      new DlpPolicy([
        rule({ name: "x", channels: ["printing"], dictionaries: ["nope"], action: "block" }),
      ], DICTS),
    (e: unknown) =>
      e instanceof PortcullisError && e.code === "unknown_dictionary" && /"nope"/.test(e.message),
  );
});
