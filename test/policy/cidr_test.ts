import assert from "node:assert/strict";
import {
  addressScope,
  addressScope4,
  aggregatePrefixes,
  canonicalIp,
  formatPrefix,
  ipv4Netmask,
  isPrivateOrLoopback,
  parseIp,
  parsePrefix,
  prefixContains,
  prefixesOverlap,
  specialPrefixes,
  subtract,
  subtractPrefixes,
  tryParseIp,
  tryParsePrefix,
} from "../../src/policy/cidr.ts";
import { DEFAULT_EXCLUDES } from "../../src/policy/types.ts";

Deno.test("cidr: addresses parse and format canonically", () => {
  const table: [string, string | null][] = [
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["192.0.2.1", "192.0.2.1"],
    [" 10.1.2.3 ", "10.1.2.3"],
    ["256.0.0.1", null],
    ["1.2.3", null],
    ["1.2.3.4.5", null],
    ["010.0.0.1", null],
    ["1.2.3.-1", null],
    ["", null],
    ["a.b.c.d", null],
    ["::", "::"],
    ["::1", "::1"],
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["::ffff:c000:0201", "::ffff:192.0.2.1"],
    ["64:ff9b::192.0.2.1", "64:ff9b::c000:201"],
    ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
    ["fe80::1%eth0", null],
    ["1:2:3:4:5:6:7:8:9", null],
    ["1::2::3", null],
    ["12345::", null],
    [":1::", null],
    ["1:2:3:4:5:6:7:8::", null],
    ["::1.2.3", null],
  ];
  for (const [input, want] of table) {
    assert.equal(canonicalIp(input), want, input);
  }
  assert.equal(parseIp("1.2.3.4").value, 0x01020304n);
  assert.equal(parseIp("::2").family, 6);
  assert.throws(() => parseIp("nope"), /Cannot parse IP address "nope"/);
  assert.equal(tryParseIp("1.1.1.1")?.family, 4);
});

Deno.test("cidr: prefixes normalise host bits, strict mode rejects them", () => {
  const table: [string, string | null][] = [
    ["10.0.0.0/8", "10.0.0.0/8"],
    ["10.0.0.1/8", "10.0.0.0/8"],
    ["0.0.0.0/0", "0.0.0.0/0"],
    ["1.2.3.4/0", "0.0.0.0/0"],
    ["1.2.3.4", "1.2.3.4/32"],
    ["1.2.3.4/32", "1.2.3.4/32"],
    ["1.2.3.4/33", null],
    ["1.2.3.4/", null],
    ["1.2.3.4/08", null],
    ["2001:db8::1/32", "2001:db8::/32"],
    ["::/0", "::/0"],
    ["::1", "::1/128"],
    ["2001:db8::/129", null],
    ["2001:db8::7/127", "2001:db8::6/127"],
  ];
  for (const [input, want] of table) {
    const p = tryParsePrefix(input);
    assert.equal(p ? formatPrefix(p) : null, want, input);
  }
  assert.throws(
    () => parsePrefix("10.0.0.1/8", { strict: true }),
    /Cannot parse IP prefix "10.0.0.1\/8": host bits are set/,
  );
  assert.equal(formatPrefix(parsePrefix("10.0.0.0/8", { strict: true })), "10.0.0.0/8");
});

Deno.test("cidr: contains and overlaps", () => {
  const p = (s: string) => parsePrefix(s);
  const table: [string, string, boolean, boolean][] = [
    // a, b, a contains b, overlap
    ["10.0.0.0/8", "10.1.2.3/32", true, true],
    ["10.0.0.0/8", "11.0.0.0/32", false, false],
    ["10.0.0.0/8", "10.0.0.0/8", true, true],
    ["10.1.0.0/16", "10.0.0.0/8", false, true],
    ["0.0.0.0/0", "255.255.255.255/32", true, true],
    ["0.0.0.0/0", "::/0", false, false],
    ["2001:db8::/32", "2001:db8:ffff::/48", true, true],
    ["2001:db8::/32", "2001:db9::/32", false, false],
    ["::/0", "::1/128", true, true],
  ];
  for (const [a, b, contains, overlap] of table) {
    assert.equal(prefixContains(p(a), p(b)), contains, `${a} contains ${b}`);
    assert.equal(prefixesOverlap(p(a), p(b)), overlap, `${a} overlaps ${b}`);
    assert.equal(prefixesOverlap(p(b), p(a)), overlap, `${b} overlaps ${a}`);
  }
  assert.equal(prefixContains(p("192.168.0.0/16"), parseIp("192.168.44.1")), true);
  assert.equal(prefixContains(p("192.168.0.0/16"), parseIp("192.169.0.1")), false);
  assert.equal(prefixContains(p("::/0"), parseIp("1.2.3.4")), false);
});

Deno.test("cidr: subtract produces the minimal covering set", () => {
  const table: [string[], string[], string[]][] = [
    [["0.0.0.0/0"], [], ["0.0.0.0/0"]],
    [["0.0.0.0/0"], ["0.0.0.0/0"], []],
    [["0.0.0.0/0"], ["0.0.0.0/1"], ["128.0.0.0/1"]],
    [["0.0.0.0/0"], ["128.0.0.0/1"], ["0.0.0.0/1"]],
    [["10.0.0.0/8"], ["10.0.0.0/9"], ["10.128.0.0/9"]],
    [["10.0.0.0/30"], ["10.0.0.1/32"], ["10.0.0.0/32", "10.0.0.2/31"]],
    [["10.0.0.0/24"], ["10.0.0.255/32"], [
      "10.0.0.0/25",
      "10.0.0.128/26",
      "10.0.0.192/27",
      "10.0.0.224/28",
      "10.0.0.240/29",
      "10.0.0.248/30",
      "10.0.0.252/31",
      "10.0.0.254/32",
    ]],
    // Adjacent includes merge into one prefix.
    [["10.0.0.0/25", "10.0.0.128/25"], [], ["10.0.0.0/24"]],
    [["10.0.0.128/25", "10.0.0.0/25", "10.0.0.7/32"], [], ["10.0.0.0/24"]],
    // Adjacent but misaligned ranges stay two prefixes.
    [["10.0.0.128/25", "10.0.1.0/25"], [], ["10.0.0.128/25", "10.0.1.0/25"]],
    // Excludes outside the includes change nothing.
    [["10.0.0.0/8"], ["192.168.0.0/16", "::/0"], ["10.0.0.0/8"]],
    // Host bits in input are normalised.
    [["10.9.9.9/8"], ["10.128.1.1/9"], ["10.0.0.0/9"]],
    [["255.255.255.255/32"], ["255.255.255.255/32"], []],
    [["0.0.0.0/0"], ["0.0.0.0/32", "255.255.255.255/32"], [
      "0.0.0.1/32",
      "0.0.0.2/31",
      "0.0.0.4/30",
      "0.0.0.8/29",
      "0.0.0.16/28",
      "0.0.0.32/27",
      "0.0.0.64/26",
      "0.0.0.128/25",
      "0.0.1.0/24",
      "0.0.2.0/23",
      "0.0.4.0/22",
      "0.0.8.0/21",
      "0.0.16.0/20",
      "0.0.32.0/19",
      "0.0.64.0/18",
      "0.0.128.0/17",
      "0.1.0.0/16",
      "0.2.0.0/15",
      "0.4.0.0/14",
      "0.8.0.0/13",
      "0.16.0.0/12",
      "0.32.0.0/11",
      "0.64.0.0/10",
      "0.128.0.0/9",
      "1.0.0.0/8",
      "2.0.0.0/7",
      "4.0.0.0/6",
      "8.0.0.0/5",
      "16.0.0.0/4",
      "32.0.0.0/3",
      "64.0.0.0/2",
      "128.0.0.0/2",
      "192.0.0.0/3",
      "224.0.0.0/4",
      "240.0.0.0/5",
      "248.0.0.0/6",
      "252.0.0.0/7",
      "254.0.0.0/8",
      "255.0.0.0/9",
      "255.128.0.0/10",
      "255.192.0.0/11",
      "255.224.0.0/12",
      "255.240.0.0/13",
      "255.248.0.0/14",
      "255.252.0.0/15",
      "255.254.0.0/16",
      "255.255.0.0/17",
      "255.255.128.0/18",
      "255.255.192.0/19",
      "255.255.224.0/20",
      "255.255.240.0/21",
      "255.255.248.0/22",
      "255.255.252.0/23",
      "255.255.254.0/24",
      "255.255.255.0/25",
      "255.255.255.128/26",
      "255.255.255.192/27",
      "255.255.255.224/28",
      "255.255.255.240/29",
      "255.255.255.248/30",
      "255.255.255.252/31",
      "255.255.255.254/32",
    ]],
    // IPv6.
    [["::/0"], [], ["::/0"]],
    [["::/0"], ["::/1"], ["8000::/1"]],
    [["2001:db8::/32"], ["2001:db8::/33"], ["2001:db8:8000::/33"]],
    [["2001:db8::/126"], ["2001:db8::2/128"], ["2001:db8::/127", "2001:db8::3/128"]],
    [
      ["::/0"],
      ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"],
      [
        ...Array.from({ length: 128 }, (_, i) => i + 1).map((len) => {
          // The i-th block covers the next half of what is left.
          const v = ((1n << 128n) - 1n) ^ ((1n << BigInt(129 - len)) - 1n);
          return formatPrefix({ family: 6, addr: v, len });
        }),
      ].slice(0, 128),
    ],
    // Mixed families are handled independently.
    [["0.0.0.0/0", "::/0"], ["0.0.0.0/1", "8000::/1"], ["128.0.0.0/1", "::/1"]],
    [["1.2.3.4/32"], [], ["1.2.3.4/32"]],
    [["1.2.3.4/32", "1.2.3.5/32"], [], ["1.2.3.4/31"]],
    [["1.2.3.5/32", "1.2.3.6/32"], [], ["1.2.3.5/32", "1.2.3.6/32"]],
  ];
  for (const [inc, exc, want] of table) {
    assert.deepEqual(subtract(inc, exc), want, `${inc} - ${exc}`);
  }
});

Deno.test("cidr: default excludes and an edge address give disjoint, complete routes", () => {
  const routes = subtract(["0.0.0.0/0"], [...DEFAULT_EXCLUDES, "203.0.113.7/32"]);
  const ps = routes.map((r) => parsePrefix(r));
  const excl = [...DEFAULT_EXCLUDES, "203.0.113.7/32"].map((r) => parsePrefix(r));
  for (const r of ps) for (const e of excl) assert.equal(prefixesOverlap(r, e), false);
  // Total size equals 2^32 minus the excluded sizes (the excludes are disjoint).
  const size = (p: { len: number }) => 1n << BigInt(32 - p.len);
  const total = ps.reduce((a, p) => a + size(p), 0n);
  assert.equal(total, (1n << 32n) - excl.reduce((a, p) => a + size(p), 0n));
  // Sample probes land in the right place.
  for (
    const [ip, inTunnel] of [
      ["8.8.8.8", true],
      ["203.0.113.7", false],
      ["203.0.113.8", true],
      [
        "10.2.3.4",
        false,
      ],
      ["172.31.255.255", false],
      ["172.32.0.0", true],
      ["239.1.1.1", false],
      ["240.0.0.1", true],
    ] as [
      string,
      boolean,
    ][]
  ) {
    assert.equal(ps.some((p) => prefixContains(p, parseIp(ip))), inTunnel, ip);
  }
  // Minimal: aggregating again changes nothing.
  assert.deepEqual(aggregatePrefixes(ps).map(formatPrefix), routes);
});

Deno.test("cidr: random subtractions agree with a brute-force model on a small space", () => {
  // Work inside 10.0.0.0/26 (64 addresses) so every address can be checked.
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const randomPrefix = () => {
    const len = 26 + rnd(7);
    return formatPrefix(parsePrefix(`10.0.0.${rnd(64)}/${len}`));
  };
  for (let round = 0; round < 200; round++) {
    const inc = Array.from({ length: 1 + rnd(4) }, randomPrefix);
    const exc = Array.from({ length: rnd(4) }, randomPrefix);
    const out = subtract(inc, exc).map((r) => parsePrefix(r));
    for (let i = 0; i < 64; i++) {
      const ip = parseIp(`10.0.0.${i}`);
      const want = inc.some((p) => prefixContains(parsePrefix(p), ip)) &&
        !exc.some((p) => prefixContains(parsePrefix(p), ip));
      const got = out.filter((p) => prefixContains(p, ip)).length;
      assert.equal(got, want ? 1 : 0, `${inc} - ${exc} at ${i}`);
    }
    // Minimality: no two results are mergeable.
    assert.deepEqual(aggregatePrefixes(out), out);
  }
});

Deno.test("cidr: aggregate and netmask", () => {
  assert.deepEqual(
    aggregatePrefixes(["10.0.0.0/24", "10.0.1.0/24", "::/1", "8000::/1"].map((s) => parsePrefix(s)))
      .map(formatPrefix),
    ["10.0.0.0/23", "::/0"],
  );
  assert.equal(ipv4Netmask(0), "0.0.0.0");
  assert.equal(ipv4Netmask(12), "255.240.0.0");
  assert.equal(ipv4Netmask(32), "255.255.255.255");
  assert.throws(() => ipv4Netmask(33), /Cannot make an IPv4 netmask for length 33/);
  assert.deepEqual(subtractPrefixes([], []), []);
});

Deno.test("cidr: address scopes (what the web proxy refuses to reach)", () => {
  const table: [string, string | null][] = [
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.1", null],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "shared"],
    ["100.127.255.255", "shared"],
    ["100.128.0.1", null],
    ["169.254.169.254", "link-local"],
    ["fe80::1", "link-local"],
    ["fd00::1", "unique-local"],
    ["224.0.0.251", "multicast"],
    ["ff02::1", "multicast"],
    ["255.255.255.255", "reserved"],
    ["8.8.8.8", null],
    ["198.18.0.80", null],
    ["2001:db8::1", null],
    ["::ffff:8.8.8.8", null],
    ["not an address", null],
  ];
  for (const [ip, want] of table) assert.equal(addressScope(ip), want, ip);
  // The data plane's numeric form agrees on every IPv4 row, and the
  // special blocks are the nftables rules' set.
  for (const [ip, want] of table) {
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
    if (!m) continue;
    const n = ((+m[1] << 24) | (+m[2] << 16) | (+m[3] << 8) | +m[4]) >>> 0;
    assert.equal(addressScope4(n), want, `${ip} as a number`);
  }
  assert.ok(specialPrefixes(4).includes("10.0.0.0/8") && !specialPrefixes(4).includes("fc00::/7"));
  assert.ok(specialPrefixes(6).includes("fe80::/10") && !specialPrefixes(6).includes("10.0.0.0/8"));
  assert.equal(isPrivateOrLoopback("10.0.0.1"), true);
  assert.equal(isPrivateOrLoopback("224.0.0.1"), false, "multicast is not a LAN source");
  assert.equal(isPrivateOrLoopback("8.8.8.8"), false);
});
