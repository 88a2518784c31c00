import assert from "node:assert/strict";
import {
  buildSockaddr,
  formatIpv6,
  ipFamily,
  parseIpv4,
  parseIpv6,
} from "../../src/net/sockaddr.ts";

Deno.test("sockaddr: IPv4 parsing", () => {
  const table: [string, number[] | null][] = [
    ["192.0.2.1", [192, 0, 2, 1]],
    ["0.0.0.0", [0, 0, 0, 0]],
    ["255.255.255.255", [255, 255, 255, 255]],
    ["256.0.0.1", null],
    ["1.2.3", null],
    ["01.2.3.4", null],
    ["1.2.3.4 ", null],
    ["a.b.c.d", null],
  ];
  for (const [text, want] of table) {
    const got = parseIpv4(text);
    assert.deepEqual(got ? [...got] : null, want, text);
  }
});

Deno.test("sockaddr: IPv6 parse and canonical format round trip", () => {
  const table: [string, string | null][] = [
    ["::", "::"],
    ["::1", "::1"],
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"],
    ["fe80::1%eth0", "fe80::1"],
    ["::ffff:192.0.2.1", "::ffff:c000:201"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["1:0:3:4:5:6:7:8", "1:0:3:4:5:6:7:8"],
    ["1::2::3", null],
    ["1:2:3:4:5:6:7:8:9", null],
    ["12345::", null],
    ["::g", null],
    ["", null],
  ];
  for (const [text, want] of table) {
    const b = parseIpv6(text);
    assert.equal(b ? formatIpv6(b) : null, want, text);
  }
  assert.equal(ipFamily("10.0.0.1"), 4);
  assert.equal(ipFamily("::1"), 6);
  assert.equal(ipFamily("example.com"), 0);
});

Deno.test("sockaddr: sockaddr_in and sockaddr_in6 layouts", () => {
  const v4 = buildSockaddr("192.0.2.1", 443, 4)!;
  assert.deepEqual([...v4], [2, 0, 1, 187, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  const mapped = buildSockaddr("192.0.2.1", 443, 6)!;
  assert.equal(mapped.length, 28);
  assert.deepEqual([...mapped.subarray(0, 4)], [10, 0, 1, 187]);
  assert.deepEqual([...mapped.subarray(8, 24)], [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    255,
    255,
    192,
    0,
    2,
    1,
  ]);
  const v6 = buildSockaddr("2001:db8::1", 51820, 6)!;
  assert.equal(v6[8], 0x20);
  assert.equal(v6[23], 1);
  assert.equal(buildSockaddr("2001:db8::1", 1, 4), null, "IPv6 cannot go out of an IPv4 socket");
  assert.equal(buildSockaddr("nope", 1, 6), null);
});
