import assert from "node:assert/strict";
import {
  type AccessRequest,
  compileAccessPolicy,
  domainMatches,
  parsePortRange,
} from "../../src/policy/access.ts";
import { AccessRule, AppSegment } from "../../src/policy/types.ts";

const segments = [
  AppSegment.parse({
    name: "wiki",
    domains: ["wiki.corp.example"],
    cidrs: ["10.10.0.5/32"],
    ports: ["80", "443"],
    protocols: ["tcp"],
  }),
  AppSegment.parse({
    name: "apps",
    domains: ["*.apps.corp.example"],
    cidrs: ["10.20.0.0/16", "fd00:20::/64"],
  }),
  AppSegment.parse({
    name: "db",
    cidrs: ["10.30.0.0/24"],
    ports: ["5432", "6000-6010"],
    protocols: ["tcp"],
  }),
];
const rules = [
  AccessRule.parse({
    name: "deny-contractors-db",
    ruleOrder: 1,
    action: "deny",
    segments: ["db"],
    groups: ["contractors"],
  }),
  AccessRule.parse({
    name: "engineers-db",
    ruleOrder: 2,
    segments: ["db"],
    groups: ["engineering"],
    postureProfiles: ["baseline"],
  }),
  AccessRule.parse({ name: "everyone-wiki", ruleOrder: 5, segments: ["wiki"] }),
  AccessRule.parse({ name: "alice-apps", ruleOrder: 3, segments: ["apps"], users: ["alice"] }),
];
const policy = compileAccessPolicy(segments, rules);

const req = (over: Partial<AccessRequest>): AccessRequest => ({
  user: "bob",
  groups: [],
  postureProfiles: [],
  protocol: "tcp",
  ...over,
});

Deno.test("access: decisions by rule order with default deny", () => {
  const table: [string, Partial<AccessRequest>, boolean, boolean, string | null][] = [
    ["wiki by ip", { ip: "10.10.0.5", port: 443 }, true, true, "everyone-wiki"],
    ["wiki by name", { domain: "WIKI.corp.example.", port: 80 }, true, true, "everyone-wiki"],
    ["wiki wrong port", { ip: "10.10.0.5", port: 22 }, true, false, null],
    ["wiki udp", { ip: "10.10.0.5", port: 443, protocol: "udp" }, true, false, null],
    ["internet", { ip: "8.8.8.8", port: 443 }, true, false, null],
    [
      "db engineer without posture",
      { ip: "10.30.0.9", port: 5432, groups: ["engineering"] },
      false,
      true,
      null,
    ],
    [
      "db engineer with posture",
      { ip: "10.30.0.9", port: 6005, groups: ["engineering"], postureProfiles: ["baseline"] },
      true,
      true,
      "engineers-db",
    ],
    [
      "db contractor+engineer denied first",
      {
        ip: "10.30.0.9",
        port: 5432,
        groups: ["engineering", "contractors"],
        postureProfiles: ["baseline"],
      },
      false,
      true,
      "deny-contractors-db",
    ],
    [
      "db port out of range",
      { ip: "10.30.0.9", port: 6011, groups: ["engineering"], postureProfiles: ["baseline"] },
      true,
      false,
      null,
    ],
    [
      "apps alice",
      { user: "alice", domain: "x.apps.corp.example", port: 1 },
      true,
      true,
      "alice-apps",
    ],
    ["apps alice v6", { user: "alice", ip: "fd00:20::9", port: 1 }, true, true, "alice-apps"],
    ["apps bob", { domain: "x.apps.corp.example", port: 1 }, false, true, null],
    [
      "apps apex is not in segment",
      { user: "alice", domain: "apps.corp.example", port: 1 },
      true,
      false,
      null,
    ],
    [
      "apps icmp ignores ports",
      { user: "alice", ip: "10.20.1.1", protocol: "icmp" },
      true,
      true,
      "alice-apps",
    ],
    ["no port for a port-limited segment", { ip: "10.10.0.5" }, true, false, null],
  ];
  for (const [name, over, allowed, priv, rule] of table) {
    const d = policy.decide(req(over));
    assert.equal(d.allowed, allowed, name);
    assert.equal(d.private, priv, name);
    assert.equal(d.rule, rule, name);
  }
  const denied = policy.decide(req({ ip: "10.30.0.9", port: 5432 }));
  assert.equal(denied.reason, 'No rule allows user "bob" to reach db (default deny)');
  assert.deepEqual(denied.segments, ["db"]);
});

Deno.test("access: ties keep the given order; bad ports fail compilation", () => {
  const p = compileAccessPolicy(segments, [
    AccessRule.parse({ name: "first", action: "deny", segments: ["wiki"] }),
    AccessRule.parse({ name: "second", segments: ["wiki"] }),
  ]);
  assert.equal(p.decide(req({ ip: "10.10.0.5", port: 80 })).rule, "first");
  assert.throws(
    () => compileAccessPolicy([{ ...segments[0], ports: ["9-1"] }], []),
    /Cannot compile segment "wiki": invalid port range "9-1"/,
  );
  assert.deepEqual(p.segmentsFor({ ip: "10.20.3.4", protocol: "udp", port: 53 }), ["apps"]);
});

Deno.test("access: domain patterns and port ranges", () => {
  const table: [string, string, boolean][] = [
    ["app.example", "app.example", true],
    ["app.example", "APP.example.", true],
    ["app.example", "x.app.example", false],
    ["*.example", "app.example", true],
    ["*.example", "a.b.example", true],
    ["*.example", "example", false],
    ["*.example", "badexample", false],
    ["", "x", false],
  ];
  for (const [p, n, want] of table) assert.equal(domainMatches(p, n), want, `${p} ~ ${n}`);
  assert.deepEqual(parsePortRange("80"), [80, 80]);
  assert.deepEqual(parsePortRange("8000-8100"), [8000, 8100]);
  assert.equal(parsePortRange("0"), null);
  assert.equal(parsePortRange("70000"), null);
  assert.equal(parsePortRange("a"), null);
});
