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
  // IPv4 first, by address, a prefix before those inside it (the order of a walk of the tables).
  assert.deepEqual(all.get("a"), ["0.0.0.0/0", "10.1.0.0/16", "2001:db8::1/128"]);
  assert.deepEqual(all.get("b"), ["10.0.0.0/8", "::/0"]);
  assert.deepEqual(all.get("c"), ["10.1.2.3/32", "192.168.7.0/24", "fd00::/8"]);
  assert.equal(new AllowedIps<string>().prefixesByValue().size, 0);
});

Deno.test("allowed_ips: random inserts, moves and removals agree with a plain list", () => {
  // A small address space (10.0.0.0/28 and fd00::/124) so prefixes nest and collide often.
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const t = new AllowedIps<number>();
  const model = new Map<string, number>(); // prefix text → owner
  const v4 = (host: number, bits: number) =>
    `10.0.0.${host & ~((1 << (32 - bits)) - 1) & 255}/${bits}`;
  const v6 = (host: number, bits: number) =>
    `fd00::${(host & ~((1 << (128 - bits)) - 1)).toString(16)}/${bits}`;
  for (let step = 0; step < 3000; step++) {
    const owner = rand(12);
    if (rand(10) < 7) {
      const six = rand(2) === 1;
      const bits = six ? 124 + rand(5) : 28 + rand(5);
      const text = six ? v6(rand(16), bits) : v4(rand(16), bits);
      t.insert(text, owner);
      model.set(parsePrefixText(text), owner);
    } else {
      t.removeValue(owner);
      for (const [k, v] of [...model]) if (v === owner) model.delete(k);
    }
    if (step % 50 !== 0) continue;
    for (let v = 0; v < 12; v++) {
      const want = [...model].filter(([, o]) => o === v).map(([k]) => k).sort();
      assert.deepEqual([...t.prefixesOf(v)].sort(), want, `owner ${v} at step ${step}`);
    }
    for (let h = 0; h < 16; h++) {
      for (const [addr, family] of [[`10.0.0.${h}`, 4], [`fd00::${h.toString(16)}`, 6]] as const) {
        assert.equal(t.lookupText(addr), longest(model, addr, family), `${addr} at step ${step}`);
      }
    }
  }
});

/** The canonical text AllowedIps gives a prefix. */
function parsePrefixText(text: string): string {
  const t = new AllowedIps<number>();
  t.insert(text, 0);
  return t.prefixesOf(0)[0];
}

/** Longest-prefix match over the plain list (the prefixes used here are within one last byte). */
function longest(model: Map<string, number>, addr: string, family: 4 | 6): number | null {
  const last = (a: string) =>
    family === 4 ? Number(a.split(".")[3]) : parseInt(a.split(":").pop() || "0", 16);
  const host = last(addr);
  let best: number | null = null, bestBits = -1;
  for (const [k, owner] of model) {
    const [a, b] = k.split("/");
    if ((family === 4) !== a.includes(".")) continue;
    const bits = Number(b), span = (family === 4 ? 32 : 128) - bits;
    if (host >> span === last(a) >> span && bits > bestBits) [best, bestBits] = [owner, bits];
  }
  return best;
}

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
