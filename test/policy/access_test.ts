import assert from "node:assert/strict";
import {
  type AccessDestination,
  type AccessSubject,
  compileAccessPolicy,
  domainMatches,
  parsePortRange,
  type PostureState,
  prepareSubject,
} from "../../src/policy/access.ts";
import { AccessRule, AppSegment } from "../../src/policy/types.ts";
import { PrefixTrie } from "../../src/policy/prefix_trie.ts";

const NOW = Date.UTC(2026, 0, 1);

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
    ports: ["6005-6010", "5432", "6000-6006"],
    protocols: ["tcp"],
  }),
  AppSegment.parse({ name: "corp", cidrs: ["10.0.0.0/8"], protocols: ["tcp", "icmp"] }),
  AppSegment.parse({ name: "hr", cidrs: ["10.40.0.0/24"], ports: ["443"] }),
  AppSegment.parse({ name: "peers", domains: ["*.clients.portcullis.internal"] }),
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
  AccessRule.parse({
    name: "lab-machines-corp",
    ruleOrder: 6,
    segments: ["corp"],
    machineGroups: ["lab"],
  }),
  AccessRule.parse({
    name: "HR apps",
    ruleOrder: 7,
    segments: ["hr"],
    groups: ["hr"],
    postureProfiles: ["disk-encrypted"],
  }),
  AccessRule.parse({
    name: "hr kiosk",
    ruleOrder: 8,
    segments: ["hr"],
    devices: ["dev_kiosk"],
  }),
  AccessRule.parse({ name: "nobody-else-hr", ruleOrder: 9, action: "deny", segments: ["hr"] }),
  AccessRule.parse({
    name: "eng peers",
    ruleOrder: 10,
    segments: ["peers", "ghost"],
    groups: ["engineering"],
  }),
];
const policy = compileAccessPolicy(segments, rules);

function subject(o: {
  user?: string | null;
  groups?: string[];
  machine?: string[];
  id?: string;
} = {}): AccessSubject {
  return {
    deviceId: o.id ?? "dev_1",
    deviceName: "ws",
    user: o.user === undefined ? "bob" : o.user,
    groups: [
      ...(o.groups ?? []).map((name) => ({ name, source: "idp" as const })),
      ...(o.machine ?? []).map((name) => ({ name, source: "machine" as const })),
    ],
    machine: o.user === null,
  };
}

const ok = (reason = "ok"): PostureState => ({
  passed: true,
  reason,
  evaluatedAt: NOW - 1000,
  expiresAt: NOW + 60_000,
});
const bad = (reason: string): PostureState => ({ ...ok(), passed: false, reason });

Deno.test("access: decisions by rule order, conditions and default deny", () => {
  type Row = [
    string,
    ReturnType<typeof subject>,
    Map<string, PostureState>,
    AccessDestination,
    boolean,
    boolean,
    string | null,
  ];
  const none = new Map<string, PostureState>();
  const base = new Map([["baseline", ok()]]);
  const table: Row[] = [
    [
      "wiki by ip",
      subject(),
      none,
      { ip: "10.10.0.5", port: 443, protocol: "tcp" },
      true,
      true,
      "everyone-wiki",
    ],
    [
      "wiki by name",
      subject(),
      none,
      { names: ["WIKI.corp.example."], port: 80, protocol: "tcp" },
      true,
      true,
      "everyone-wiki",
    ],
    [
      "wiki wrong port is still corp (10/8), user not in lab",
      subject(),
      none,
      { ip: "10.10.0.5", port: 22, protocol: "tcp" },
      false,
      true,
      null,
    ],
    [
      "wiki udp: no segment holds udp there",
      subject(),
      none,
      { ip: "10.10.0.5", port: 443, protocol: "udp" },
      true,
      false,
      null,
    ],
    ["internet", subject(), none, { ip: "8.8.8.8", port: 443, protocol: "tcp" }, true, false, null],
    [
      "db engineer without posture",
      subject({ groups: ["engineering"] }),
      none,
      { ip: "10.30.0.9", port: 5432, protocol: "tcp" },
      false,
      true,
      "engineers-db",
    ],
    [
      "db engineer with posture, merged port range",
      subject({ groups: ["engineering"] }),
      base,
      { ip: "10.30.0.9", port: 6008, protocol: "tcp" },
      true,
      true,
      "engineers-db",
    ],
    [
      "db contractor+engineer denied first",
      subject({ groups: ["engineering", "contractors"] }),
      base,
      { ip: "10.30.0.9", port: 5432, protocol: "tcp" },
      false,
      true,
      "deny-contractors-db",
    ],
    [
      "db port out of range falls to corp",
      subject({ groups: ["engineering"], machine: ["lab"] }),
      base,
      { ip: "10.30.0.9", port: 6011, protocol: "tcp" },
      true,
      true,
      "lab-machines-corp",
    ],
    [
      "apps alice by wildcard",
      subject({ user: "alice" }),
      none,
      { names: ["x.apps.corp.example"], port: 1, protocol: "udp" },
      true,
      true,
      "alice-apps",
    ],
    [
      "apps alice v6",
      subject({ user: "alice" }),
      none,
      { ip: "fd00:20::9", port: 1, protocol: "tcp" },
      true,
      true,
      "alice-apps",
    ],
    [
      "apps bob",
      subject(),
      none,
      { names: ["x.apps.corp.example"], port: 1, protocol: "udp" },
      false,
      true,
      null,
    ],
    [
      "apps apex is not in the segment",
      subject({ user: "alice" }),
      none,
      { names: ["apps.corp.example"], port: 1, protocol: "udp" },
      true,
      false,
      null,
    ],
    [
      "icmp ignores ports",
      subject({ user: "alice" }),
      none,
      { ip: "10.20.1.1", protocol: "icmp" },
      true,
      true,
      "alice-apps",
    ],
    [
      "machine group, not a user group",
      subject({ groups: ["lab"] }),
      none,
      { ip: "10.99.0.1", port: 22, protocol: "tcp" },
      false,
      true,
      null,
    ],
    [
      "machine device in lab",
      subject({ user: null, machine: ["lab"] }),
      none,
      { ip: "10.99.0.1", port: 22, protocol: "tcp" },
      true,
      true,
      "lab-machines-corp",
    ],
    [
      "hr with posture",
      subject({ groups: ["hr"] }),
      new Map([["disk-encrypted", ok()]]),
      { ip: "10.40.0.2", port: 443, protocol: "tcp" },
      true,
      true,
      "HR apps",
    ],
    [
      "hr posture failing: the posture rule is named, not the later deny",
      subject({ groups: ["hr"] }),
      new Map([["disk-encrypted", bad("not encrypted")]]),
      { ip: "10.40.0.2", port: 443, protocol: "tcp" },
      false,
      true,
      "HR apps",
    ],
    [
      "hr kiosk by device id",
      subject({ id: "dev_kiosk", user: null }),
      none,
      { ip: "10.40.0.2", port: 443, protocol: "tcp" },
      true,
      true,
      "hr kiosk",
    ],
    [
      "hr kiosk name is not an id",
      subject({ id: "dev_other", user: null }),
      none,
      { ip: "10.40.0.2", port: 443, protocol: "tcp" },
      false,
      true,
      "nobody-else-hr",
    ],
    [
      "hr posture failing but a later rule allows",
      subject({ id: "dev_kiosk", groups: ["hr"] }),
      new Map([["disk-encrypted", bad("not encrypted")]]),
      { ip: "10.40.0.2", port: 443, protocol: "tcp" },
      true,
      true,
      "hr kiosk",
    ],
    [
      "peer by registered name",
      subject({ groups: ["engineering"] }),
      none,
      {
        ip: "100.64.0.9",
        names: ["gw.clients.portcullis.internal"],
        port: 22,
        protocol: "tcp",
        private: { reason: "x" },
      },
      true,
      true,
      "eng peers",
    ],
    [
      "peer denied to others",
      subject(),
      none,
      {
        ip: "100.64.0.9",
        names: ["gw.clients.portcullis.internal"],
        port: 22,
        protocol: "tcp",
        private: { reason: "x" },
      },
      false,
      true,
      null,
    ],
    [
      "a private destination outside every segment",
      subject({ groups: ["engineering"] }),
      none,
      {
        ip: "100.64.0.9",
        port: 22,
        protocol: "tcp",
        private: { reason: 'device "gw" has no valid registered host name' },
      },
      false,
      true,
      null,
    ],
  ];
  for (const [name, subj, posture, dest, allowed, priv, rule] of table) {
    const d = policy.explain(subj, posture, dest, NOW);
    assert.equal(d.allowed, allowed, `${name}: ${d.reason}`);
    assert.equal(d.private, priv, `${name}: ${d.reason}`);
    assert.equal(d.rule, rule, `${name}: ${d.reason}`);
    assert.match(d.reason, allowed ? (priv ? /^allowed: / : /^internet: /) : /^denied: /, name);
  }
});

Deno.test("access: reasons say which rule, which posture and what the device reported", () => {
  const hr = { ip: "10.40.0.2", port: 443, protocol: "tcp" } as const;
  const s = subject({ user: "carol", groups: ["hr"] });
  const reason = (p: Map<string, PostureState>) => policy.explain(s, p, hr, NOW).reason;
  assert.equal(
    reason(new Map([["disk-encrypted", bad("not encrypted")]])),
    'denied: rule "HR apps" needs posture "disk-encrypted", device reports not encrypted',
  );
  assert.equal(
    reason(new Map()),
    'denied: rule "HR apps" needs posture "disk-encrypted", the device has not reported it',
  );
  assert.equal(
    reason(new Map([["disk-encrypted", { ...ok(), expiresAt: NOW - 1 }]])),
    `denied: rule "HR apps" needs posture "disk-encrypted", the device's last result expired at ${
      new Date(NOW - 1).toISOString()
    }`,
  );
  assert.equal(
    reason(new Map([["disk-encrypted", ok()]])),
    'allowed: rule "HR apps" allows user "carol" on device "ws" to reach "hr"',
  );
  const denied = policy.explain(subject(), new Map(), {
    ip: "10.30.0.9",
    port: 5432,
    protocol: "tcp",
  }, NOW);
  assert.equal(
    denied.reason,
    'denied: no rule allows user "bob" on device "ws" to reach "db", "corp" (default deny)',
  );
  assert.deepEqual(denied.segments, ["db", "corp"]);
  const peer = policy.explain(subject(), new Map(), {
    ip: "100.64.0.9",
    port: 22,
    protocol: "tcp",
    private: { reason: 'device "gw" has no valid registered host name' },
  }, NOW);
  assert.equal(
    peer.reason,
    'denied: device "gw" has no valid registered host name, and no application segment covers it (default deny)',
  );
});

Deno.test("access: the data path's form agrees with explain", () => {
  const ps = prepareSubject(subject({ groups: ["engineering"] }));
  const base = new Map([["baseline", ok()]]);
  const buf = new Uint8Array([0, 0, 10, 30, 0, 9]);
  const d = policy.decideAt(ps, base, buf, 2, 4, "tcp", 5432, null, null, NOW);
  assert.equal(d.rule, "engineers-db");
  assert.equal(d.allowed, true);
  const v6 = new Uint8Array(16);
  v6.set([0xfd, 0, 0, 0x20], 0);
  v6[15] = 9;
  const alice = prepareSubject(subject({ user: "alice" }));
  assert.equal(
    policy.decideAt(alice, base, v6, 0, 6, "udp", 53, null, null, NOW).rule,
    "alice-apps",
  );
});

Deno.test("access: segment standings for a subject (its policy bundle)", () => {
  const st = (s: AccessSubject, p = new Map<string, PostureState>()) =>
    Object.fromEntries(policy.standings(s, p, NOW).map((x) => [x.segment, x.state]));
  assert.deepEqual(st(subject({ groups: ["hr"] })), {
    wiki: "allowed",
    apps: "denied",
    db: "denied",
    corp: "denied",
    hr: "posture_failing",
    peers: "denied",
  });
  assert.deepEqual(
    st(subject({ groups: ["hr"] }), new Map([["disk-encrypted", ok()]])).hr,
    "allowed",
  );
  const eng = policy.standings(
    subject({ groups: ["engineering"], machine: ["lab"] }),
    new Map(),
    NOW,
  );
  const byName = Object.fromEntries(eng.map((x) => [x.segment, x]));
  assert.equal(byName.db.state, "posture_failing");
  assert.match(byName.db.reason, /needs posture "baseline", the device has not reported it/);
  assert.equal(byName.corp.state, "allowed");
  assert.equal(byName.peers.state, "allowed");
  assert.equal(st(subject({ groups: ["contractors", "engineering"] })).db, "denied");
  assert.deepEqual(policy.unknownSegments, ["ghost"]);
});

Deno.test("access: ties keep the given order; bad ports fail compilation", () => {
  const p = compileAccessPolicy(segments, [
    AccessRule.parse({ name: "first", action: "deny", segments: ["wiki"] }),
    AccessRule.parse({ name: "second", segments: ["wiki"] }),
  ]);
  assert.equal(
    p.explain(subject(), new Map(), { ip: "10.10.0.5", port: 80, protocol: "tcp" }, NOW).rule,
    "first",
  );
  assert.throws(
    () => compileAccessPolicy([{ ...segments[0], ports: ["9-1"] }], []),
    /Cannot compile segment "wiki": invalid port range "9-1"/,
  );
  assert.deepEqual(p.segmentsFor({ ip: "10.20.3.4", protocol: "udp", port: 53 }), ["apps"]);
  assert.ok(p.nameInSegments("Wiki.Corp.Example."));
  assert.ok(p.nameInSegments("a.b.apps.corp.example"));
  assert.ok(!p.nameInSegments("apps.corp.example"));
});

Deno.test("access: 10,000 segments and 1,000 rules compile and decide by index", () => {
  const segs = Array.from({ length: 10_000 }, (_, i) =>
    AppSegment.parse({
      name: `s${i}`,
      cidrs: [`10.${(i >> 8) & 0xff}.${i & 0xff}.0/24`],
      domains: [`app${i}.corp.example`],
      ports: ["443"],
    }));
  const rs = Array.from({ length: 1000 }, (_, i) =>
    AccessRule.parse({
      name: `r${i}`,
      ruleOrder: i,
      segments: Array.from({ length: 10 }, (_, k) => `s${i * 10 + k}`),
      groups: [`g${i}`],
    }));
  const p = compileAccessPolicy(segs, rs);
  assert.equal(p.segmentCount, 10_000);
  assert.equal(p.ruleCount, 1000);
  const hit = p.explain(subject({ groups: ["g777"] }), new Map(), {
    ip: "10.30.90.7", // segment 7770 = 30 * 256 + 90
    port: 443,
    protocol: "tcp",
  }, NOW);
  assert.equal(hit.rule, "r777");
  assert.deepEqual(hit.segments, ["s7770"]);
  const byName = p.explain(subject({ groups: ["g999"] }), new Map(), {
    names: ["app9999.corp.example"],
    port: 443,
    protocol: "tcp",
  }, NOW);
  assert.equal(byName.rule, "r999");
  assert.equal(
    p.explain(subject({ groups: ["g1"] }), new Map(), {
      ip: "10.30.90.7",
      port: 443,
      protocol: "tcp",
    }, NOW).allowed,
    false,
  );
});

Deno.test("access: the prefix trie yields every containing prefix", () => {
  const t = new PrefixTrie();
  t.insert(new Uint8Array([0, 0, 0, 0]), 0, 9);
  t.insert(new Uint8Array([10, 0, 0, 0]), 8, 1);
  t.insert(new Uint8Array([10, 1, 0, 0]), 16, 2);
  t.insert(new Uint8Array([10, 1, 2, 3]), 32, 3);
  t.insert(new Uint8Array([10, 1, 0, 0]), 16, 4);
  t.freeze();
  const at = (a: number[]) => {
    const out: number[] = [];
    t.lookup(new Uint8Array(a), 0, 32, out);
    return out;
  };
  assert.deepEqual(at([10, 1, 2, 3]), [9, 1, 2, 4, 3]);
  assert.deepEqual(at([10, 1, 9, 9]), [9, 1, 2, 4]);
  assert.deepEqual(at([10, 2, 0, 0]), [9, 1]);
  assert.deepEqual(at([11, 0, 0, 0]), [9]);
  assert.throws(() => t.insert(new Uint8Array(4), 1, 1), /frozen/);
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
