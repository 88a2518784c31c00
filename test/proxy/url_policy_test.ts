import assert from "node:assert/strict";
import {
  inDomain,
  parseCategoryList,
  UrlPolicy,
  type UrlRequest,
  UrlRule,
} from "../../src/proxy/url_policy.ts";
import { InputError } from "../../src/errors.ts";

const cats = new Map([
  ["gambling", ["bet.example", "casino.test"]],
  ["news", ["news.example"]],
]);
const alice = { user: "alice", groups: [{ name: "sales", source: "local" as const }] };
const bob = { user: "bob", groups: [{ name: "engineering", source: "machine" as const }] };

const rules = [
  { name: "admin paths", hosts: ["intranet.example"], paths: ["/admin"], action: "block" },
  { name: "uploads", hosts: [".files.example"], methods: ["post", "PUT"], action: "block" },
  { name: "exact", hosts: ["blocked.example"], action: "block" },
  { name: "below only", hosts: ["*.sub.example"], action: "block" },
  { name: "gambling", categories: ["gambling"], action: "block" },
  { name: "news caution", categories: ["news"], action: "caution" },
  { name: "sales social", hosts: [".social.example"], groups: ["sales"], action: "allow_log" },
  { name: "others social", hosts: [".social.example"], action: "block" },
  { name: "bob only", hosts: ["bob.example"], users: ["BOB"], action: "allow" },
  { name: "off", enabled: false, hosts: ["off.example"], action: "block" },
].map((r) => UrlRule.parse(r));
const policy = new UrlPolicy(rules, cats);

Deno.test("URL policy: first matching rule decides, table", () => {
  const table: [Partial<UrlRequest>, string, string | null][] = [
    [{ host: "blocked.example" }, "block", "exact"],
    [{ host: "BLOCKED.example." }, "block", "exact"],
    [{ host: "www.blocked.example" }, "allow", null],
    [{ host: "sub.example" }, "allow", null],
    [{ host: "a.sub.example" }, "block", "below only"],
    [{ host: "a.b.sub.example" }, "block", "below only"],
    [{ host: "xsub.example" }, "allow", null],
    [{ host: "bet.example" }, "block", "gambling"],
    [{ host: "www.casino.test" }, "block", "gambling"],
    [{ host: "notcasino.test" }, "allow", null],
    [{ host: "news.example" }, "caution", "news caution"],
    [{ host: "intranet.example", path: "/admin/users" }, "block", "admin paths"],
    [{ host: "intranet.example", path: "/home" }, "allow", null],
    // A path rule does not match where the path is not seen (TLS not inspected).
    [{ host: "intranet.example", path: null }, "allow", null],
    [{ host: "files.example", method: "POST" }, "block", "uploads"],
    [{ host: "up.files.example", method: "put" }, "block", "uploads"],
    [{ host: "files.example", method: "GET" }, "allow", null],
    [{ host: "files.example", method: null }, "allow", null],
    [{ host: "social.example", subject: alice }, "allow_log", "sales social"],
    [{ host: "m.social.example", subject: bob }, "block", "others social"],
    [{ host: "social.example", subject: null }, "block", "others social"],
    [{ host: "bob.example", subject: bob }, "allow", "bob only"],
    [{ host: "bob.example", subject: alice }, "allow", null],
    [{ host: "off.example" }, "allow", null],
    [{ host: "198.18.0.80" }, "allow", null],
  ];
  for (const [req, action, rule] of table) {
    const v = policy.evaluate({ path: "/", method: "GET", subject: alice, ...req } as UrlRequest);
    assert.deepEqual([v.action, v.rule], [action, rule], JSON.stringify(req));
  }
  assert.deepEqual(policy.categoriesOf("www.bet.example"), ["gambling"]);
});

Deno.test("URL policy: bad patterns and unknown categories are refused", () => {
  for (const h of ["exa mple.com", "*example.com", "ex*.com", "a..b", "(a|aa)+", "-a.com", ""]) {
    assert.equal(UrlRule.safeParse({ name: "x", hosts: [h], action: "block" }).success, false, h);
  }
  for (const h of ["example.com", "*.example.com", ".example.com", "x_y.example"]) {
    assert.equal(UrlRule.safeParse({ name: "x", hosts: [h], action: "block" }).success, true, h);
  }
  assert.equal(UrlRule.safeParse({ name: "x", paths: ["admin"], action: "block" }).success, false);
  assert.equal(UrlRule.safeParse({ name: "x", action: "isolate" }).success, false);
  assert.throws(
    () =>
      new UrlPolicy([UrlRule.parse({ name: "c", categories: ["nope"], action: "block" })], cats),
    (e: Error) => e instanceof InputError && /category "nope" does not exist/.test(e.message),
  );
});

Deno.test("URL policy: matching time is linear in the host's length", () => {
  const many = new UrlPolicy(
    [UrlRule.parse({
      name: "m",
      hosts: Array.from({ length: 1000 }, (_, i) => `*.h${i}.example`),
      action: "block",
    })],
    cats,
  );
  const long = `${"a.".repeat(120)}example`;
  const t0 = performance.now();
  for (let i = 0; i < 200; i++) {
    many.evaluate({ host: long, path: "/", method: "GET", subject: null });
  }
  assert.ok(performance.now() - t0 < 2000);
  assert.equal(inDomain("a.example", "example"), true);
  assert.equal(inDomain("aexample", "example"), false);
});

Deno.test("URL policy: categories and host patterns by suffix, with lists of 100,000 domains", () => {
  const big = Array.from({ length: 100_000 }, (_, i) => `d${i}.example`);
  const lists = new Map([
    ["big", big],
    ["also", ["d5.example", "shared.test"]],
    ["shared", ["shared.test", "example"]],
  ]);
  const p = new UrlPolicy(
    [
      UrlRule.parse({ name: "below", hosts: ["*.d7.example"], action: "block" }),
      UrlRule.parse({ name: "and below", hosts: [".d8.example"], action: "block" }),
    ],
    lists,
  );
  const table: [string, string[]][] = [
    ["d99999.example", ["big", "shared"]],
    ["a.b.d5.example", ["also", "big", "shared"]],
    ["D5.EXAMPLE.", ["also", "big", "shared"]],
    ["xd5.example", ["shared"]], // a suffix of the text, not a parent domain
    ["shared.test", ["also", "shared"]],
    ["example", ["shared"]],
    ["other.test", []],
    ["198.18.0.80", []],
    ["::1", []],
  ];
  for (const [host, want] of table) assert.deepEqual(p.categoriesOf(host), want, host);
  const rule = (host: string) => p.evaluate({ host, path: "/", method: "GET", subject: null }).rule;
  assert.equal(rule("d7.example"), null, "*.d: not d itself");
  assert.equal(rule("x.y.d7.example"), "below");
  assert.equal(rule("d8.example"), "and below");
  assert.equal(rule("x.d8.example"), "and below");
  assert.equal(rule("xd8.example"), null);
});

Deno.test("category lists: comments, blanks, and a bad line named", () => {
  assert.deepEqual(parseCategoryList("c", "# head\nA.example\n\n.b.example # x\n"), [
    "a.example",
    "b.example",
  ]);
  assert.throws(() => parseCategoryList("c", "ok.example\nnot a domain\n"), /line 2/);
});
