import assert from "node:assert/strict";
import { AllowedIps } from "../../src/wireguard/allowed_ips.ts";
import { formatIp, parseIp, parsePrefix } from "../../src/wireguard/ip.ts";

Deno.test("allowed_ips: longest prefix wins, IPv4 and IPv6", () => {
  const t = new AllowedIps<string>();
  t.insert("0.0.0.0/0", "default4");
  t.insert("10.0.0.0/8", "ten");
  t.insert("10.1.0.0/16", "ten-one");
  t.insert("10.1.2.3/32", "host");
  t.insert("::/0", "default6");
  t.insert("fd00::/8", "ula");
  t.insert("fd00:1::/32", "ula1");
  const cases: Array<[string, string | null]> = [
    ["10.1.2.3", "host"],
    ["10.1.2.4", "ten-one"],
    ["10.2.0.1", "ten"],
    ["192.0.2.1", "default4"],
    ["fd00:1::5", "ula1"],
    ["fd00:2::5", "ula"],
    ["2001:db8::1", "default6"],
    ["not-an-ip", null],
  ];
  for (const [addr, want] of cases) assert.equal(t.lookupText(addr), want, addr);
});

Deno.test("allowed_ips: host bits are cleared, prefixes move between owners, removal prunes", () => {
  const t = new AllowedIps<string>();
  t.insert("192.168.1.77/24", "a");
  assert.deepEqual(t.prefixesOf("a"), ["192.168.1.0/24"]);
  t.insert("192.168.1.0/24", "b");
  assert.deepEqual(t.prefixesOf("a"), []);
  assert.equal(t.lookupText("192.168.1.9"), "b");
  t.insert("2001:db8::/32", "b");
  assert.deepEqual(t.prefixesOf("b").sort(), ["192.168.1.0/24", "2001:db8::/32"]);
  t.removeValue("b");
  assert.equal(t.lookupText("192.168.1.9"), null);
  assert.equal(t.lookupText("2001:db8::1"), null);
  assert.throws(() => t.insert("10.0.0.0/33", "x"), /not an IPv4 or IPv6 prefix/);
});

Deno.test("allowed_ips: every value's prefixes in one walk are what prefixesOf gives each", () => {
  // [prefix, owner]: nested, moved, both families, a default route, a host.
  const rows: [string, string][] = [
    ["0.0.0.0/0", "a"],
    ["10.0.0.0/8", "b"],
    ["10.1.0.0/16", "a"],
    ["10.1.2.3/32", "c"],
    ["192.168.7.0/24", "b"],
    ["192.168.7.0/24", "c"],
    ["::/0", "b"],
    ["fd00::/8", "c"],
    ["2001:db8::1", "a"],
  ];
  const t = new AllowedIps<string>();
  for (const [p, v] of rows) t.insert(p, v);
  t.insert("172.16.0.0/12", "d");
  t.removeValue("d");
  const all = t.prefixesByValue();
  assert.deepEqual([...all.keys()].sort(), ["a", "b", "c"]);
  for (const v of ["a", "b", "c", "d"]) assert.deepEqual(all.get(v) ?? [], t.prefixesOf(v), v);
  assert.deepEqual(all.get("c"), ["10.1.2.3/32", "192.168.7.0/24", "fd00::/8"]);
  assert.equal(new AllowedIps<string>().prefixesByValue().size, 0);
});

Deno.test("allowed_ips: packet lookups read source and destination from the bytes", () => {
  const t = new AllowedIps<string>();
  t.insert("10.0.0.1/32", "src");
  t.insert("10.0.0.2/32", "dst");
  t.insert("fd00::1/128", "src6");
  t.insert("fd00::2/128", "dst6");
  const v4 = new Uint8Array(16 + 20);
  v4[16] = 0x45;
  v4.set([10, 0, 0, 1], 16 + 12);
  v4.set([10, 0, 0, 2], 16 + 16);
  assert.equal(t.lookupSource(v4, 16, 20), "src");
  assert.equal(t.lookupDestination(v4, 16, 20), "dst");
  assert.equal(t.lookupDestination(v4, 16, 19), null, "too short");
  const v6 = new Uint8Array(40);
  v6[0] = 0x60;
  v6.set(parseIp("fd00::1")!, 8);
  v6.set(parseIp("fd00::2")!, 24);
  assert.equal(t.lookupSource(v6, 0, 40), "src6");
  assert.equal(t.lookupDestination(v6, 0, 40), "dst6");
  v6[0] = 0x50;
  assert.equal(t.lookupDestination(v6, 0, 40), null, "unknown version");
});

Deno.test("ip: parse and format addresses and prefixes", () => {
  const good: Array<[string, string]> = [
    ["1.2.3.4", "1.2.3.4"],
    ["::", "::"],
    ["::1", "::1"],
    ["2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["fe80::1:2", "fe80::1:2"],
    ["::ffff:192.0.2.1", "::ffff:c000:201"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
  ];
  for (const [text, want] of good) assert.equal(formatIp(parseIp(text)!), want, text);
  for (
    const bad of [
      "1.2.3",
      "1.2.3.256",
      "01.2.3.4",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "g::1",
      "",
      "1:2:3:4:5:6:7::8",
    ]
  ) {
    assert.equal(parseIp(bad), null, bad);
  }
  assert.equal(parsePrefix("10.1.2.3/8")?.addr.join("."), "10.0.0.0");
  assert.equal(parsePrefix("10.0.0.1")?.bits, 32);
  assert.equal(parsePrefix("fd00::/129"), null);
  assert.equal(parsePrefix("10.0.0.0/x"), null);
});
