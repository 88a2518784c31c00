import assert from "node:assert/strict";
import { buildIcmpEcho, buildIp, buildTcp, buildUdp } from "../../src/packet/build.ts";
import {
  explainIp,
  IpHeader,
  IPPROTO,
  ipv4HeaderChecksumOk,
  type MalformedReason,
  parseIp,
} from "../../src/packet/ip.ts";
import {
  computeTransportChecksum,
  FiveTuple,
  fiveTuple,
  ICMP_TYPE,
  ICMPV6_TYPE,
  parseTransport,
  TCP_FLAGS,
  transportChecksumOk,
  TransportHeader,
  validatePacket,
} from "../../src/packet/transport.ts";
import { checksumUpdate32 } from "../../src/packet/checksum.ts";
import { formatIpv4Number, parseIpv6Text } from "../../src/packet/addr.ts";

Deno.test("parseIp reads IPv4 and IPv6 headers of built packets", () => {
  const cases = [
    {
      pkt: buildIcmpEcho({ src: "10.0.0.1", dst: "192.0.2.7", ttl: 33, id: 0x1234 }),
      version: 4,
      proto: IPPROTO.ICMP,
      src: "10.0.0.1",
      dst: "192.0.2.7",
      ttl: 33,
      hl: 20,
    },
    {
      pkt: buildUdp({ src: "2001:db8::1", dst: "fd00::53", srcPort: 5353, dstPort: 53, ttl: 7 }),
      version: 6,
      proto: IPPROTO.UDP,
      src: "2001:db8::1",
      dst: "fd00::53",
      ttl: 7,
      hl: 40,
    },
    {
      pkt: buildTcp({ src: "100.64.0.2", dst: "100.64.0.3", srcPort: 40000, dstPort: 443 }),
      version: 4,
      proto: IPPROTO.TCP,
      src: "100.64.0.2",
      dst: "100.64.0.3",
      ttl: 64,
      hl: 20,
    },
  ];
  const h = new IpHeader();
  for (const c of cases) {
    assert.equal(parseIp(c.pkt, 0, c.pkt.length, h), null);
    assert.equal(h.version, c.version);
    assert.equal(h.protocol, c.proto);
    assert.equal(h.srcText(), c.src);
    assert.equal(h.dstText(), c.dst);
    assert.equal(h.ttl, c.ttl);
    assert.equal(h.headerLength, c.hl);
    assert.equal(h.totalLength, c.pkt.length);
    assert.equal(h.payloadLength, c.pkt.length - c.hl);
    if (c.version === 4) {
      assert.equal(formatIpv4Number(h.src4), c.src);
      assert.ok(ipv4HeaderChecksumOk(h));
    }
    assert.ok(transportChecksumOk(h), `checksum of ${c.src} -> ${c.dst}`);
  }
});

Deno.test("parseIp works at an offset and ignores trailing padding", () => {
  const p = buildIcmpEcho({ src: "10.1.2.3", dst: "10.3.2.1" });
  const buf = new Uint8Array(p.length + 64);
  buf.set(p, 16);
  const h = new IpHeader();
  assert.equal(parseIp(buf, 16, p.length + 10, h), null);
  assert.equal(h.totalLength, p.length);
  assert.equal(h.srcText(), "10.1.2.3");
  const dst = new Uint8Array(4);
  h.copyDst(dst);
  assert.deepEqual([...dst], [10, 3, 2, 1]);
});

Deno.test("parseIp says why a packet is malformed", () => {
  const v4 = buildUdp({
    src: "10.0.0.1",
    dst: "10.0.0.2",
    srcPort: 1,
    dstPort: 2,
    data: new Uint8Array(8),
  });
  const v6 = buildUdp({ src: "fd00::1", dst: "fd00::2", srcPort: 1, dstPort: 2 });
  const mut = (p: Uint8Array, f: (b: Uint8Array) => void) => {
    const c = p.slice();
    f(c);
    return c;
  };
  const cases: [string, Uint8Array, number, MalformedReason][] = [
    ["empty", v4, 0, "empty"],
    ["v4 shorter than 20", v4, 19, "truncated"],
    ["version 5", mut(v4, (b) => (b[0] = 0x55)), v4.length, "bad_version"],
    ["IHL 4", mut(v4, (b) => (b[0] = 0x44)), v4.length, "bad_ihl"],
    ["IHL 15 beyond packet", mut(v4, (b) => (b[0] = 0x4f)), v4.length, "bad_ihl"],
    ["total < IHL", mut(v4, (b) => (b[2] = 0, b[3] = 10)), v4.length, "total_length_too_small"],
    ["total > buffer", v4, v4.length - 1, "total_length_exceeds_buffer"],
    ["v6 shorter than 40", v6, 39, "truncated"],
    ["v6 payload > buffer", v6, v6.length - 1, "total_length_exceeds_buffer"],
  ];
  const h = new IpHeader();
  for (const [name, pkt, len, want] of cases) {
    assert.equal(parseIp(pkt, 0, len, h), want, name);
    assert.equal(h.version, 0, name);
  }
  assert.equal(explainIp(v4, 0, 3), "packet is shorter than its header");
  assert.equal(explainIp(v4), null);
});

Deno.test("IPv6 extension headers are walked, bounded and checked", () => {
  const udp = buildUdp({
    src: "fd00::1",
    dst: "fd00::2",
    srcPort: 7,
    dstPort: 9,
    data: Uint8Array.of(1, 2),
  });
  const upper = udp.subarray(40);
  // hop-by-hop (8 bytes, next = dst opts) + dst opts (8 bytes, next = UDP)
  const ext = Uint8Array.of(60, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0);
  const payload = new Uint8Array(ext.length + upper.length);
  payload.set(ext);
  payload.set(upper, ext.length);
  const p = buildIp({ src: "fd00::1", dst: "fd00::2" }, IPPROTO.HOPOPTS, payload);
  const h = new IpHeader();
  const t = new TransportHeader();
  assert.equal(parseIp(p, 0, p.length, h), null);
  assert.equal(h.protocol, IPPROTO.UDP);
  assert.equal(h.headerLength, 56);
  assert.equal(parseTransport(h, t), null);
  assert.equal(t.dstPort, 9);
  assert.equal(t.payloadLength, 2);
  assert.equal(computeTransportChecksum(h), t.checksum, "checksum is independent of ext headers");

  // Fragment header: offset and id are read, later fragments have no transport header.
  const frag = Uint8Array.of(17, 0, 0x00, 0x11, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0);
  const fp = buildIp({ src: "fd00::1", dst: "fd00::2" }, IPPROTO.IPV6_FRAGMENT, frag);
  assert.equal(parseIp(fp, 0, fp.length, h), null);
  assert.equal(h.fragmentOffset, 16);
  assert.equal(h.moreFragments, true);
  assert.equal(h.identification, 0xdeadbeef);
  assert.equal(parseTransport(h, t), null);
  assert.equal(t.protocol, 0);

  // A chain of 9 destination-options headers exceeds the bound.
  const chain = new Uint8Array(9 * 8);
  for (let i = 0; i < 9; i++) chain[i * 8] = i < 8 ? 60 : 59;
  const cp = buildIp({ src: "fd00::1", dst: "fd00::2" }, 60, chain);
  assert.equal(parseIp(cp, 0, cp.length, h), "too_many_extension_headers");
  // An extension header whose length runs past the payload.
  const bad = buildIp(
    { src: "fd00::1", dst: "fd00::2" },
    60,
    Uint8Array.of(17, 5, 0, 0, 0, 0, 0, 0),
  );
  assert.equal(parseIp(bad, 0, bad.length, h), "bad_extension_header");
});

Deno.test("parseTransport reads ports, flags and ICMP fields", () => {
  const h = new IpHeader();
  const t = new TransportHeader();
  const syn = buildTcp({
    src: "10.0.0.1",
    dst: "10.0.0.2",
    srcPort: 50000,
    dstPort: 22,
    seq: 0xfffffff0,
    flags: TCP_FLAGS.SYN | TCP_FLAGS.ECE | TCP_FLAGS.CWR,
  });
  parseIp(syn, 0, syn.length, h);
  assert.equal(parseTransport(h, t), null);
  assert.deepEqual([t.srcPort, t.dstPort, t.seq, t.headerLength], [50000, 22, 0xfffffff0, 24]);
  assert.ok(t.hasFlags(TCP_FLAGS.SYN));
  assert.ok(!t.hasFlags(TCP_FLAGS.ACK));

  const rows: [Uint8Array, number, number, number][] = [
    [
      buildIcmpEcho({ src: "10.0.0.1", dst: "10.0.0.2", ident: 77, seq: 3 }),
      ICMP_TYPE.ECHO_REQUEST,
      77,
      3,
    ],
    [
      buildIcmpEcho({ src: "10.0.0.1", dst: "10.0.0.2", kind: "reply", ident: 9, seq: 4 }),
      ICMP_TYPE.ECHO_REPLY,
      9,
      4,
    ],
    [
      buildIcmpEcho({ src: "fd00::1", dst: "fd00::2", ident: 5, seq: 6 }),
      ICMPV6_TYPE.ECHO_REQUEST,
      5,
      6,
    ],
    [
      buildIcmpEcho({ src: "fd00::1", dst: "fd00::2", kind: "reply" }),
      ICMPV6_TYPE.ECHO_REPLY,
      1,
      1,
    ],
  ];
  for (const [p, type, id, seq] of rows) {
    parseIp(p, 0, p.length, h);
    assert.equal(parseTransport(h, t), null);
    assert.deepEqual([t.icmpType, t.icmpCode, t.icmpId, t.icmpSeq], [type, 0, id, seq]);
    assert.ok(transportChecksumOk(h));
  }
});

Deno.test("malformed transport headers are reported", () => {
  const h = new IpHeader();
  const t = new TransportHeader();
  const short = buildIp({ src: "10.0.0.1", dst: "10.0.0.2" }, IPPROTO.TCP, new Uint8Array(10));
  const doff = buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1, dstPort: 2 });
  doff[20 + 12] = 0x30;
  const udpLen = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1, dstPort: 2 });
  udpLen[20 + 5] = 200;
  const icmp = buildIp({ src: "10.0.0.1", dst: "10.0.0.2" }, IPPROTO.ICMP, new Uint8Array(4));
  const cases: [Uint8Array, MalformedReason][] = [
    [short, "bad_transport_header"],
    [doff, "bad_tcp_data_offset"],
    [udpLen, "bad_udp_length"],
    [icmp, "bad_transport_header"],
  ];
  for (const [p, want] of cases) {
    assert.equal(parseIp(p, 0, p.length, h), null);
    assert.equal(parseTransport(h, t), want);
    assert.equal(validatePacket(p), want);
  }
});

Deno.test("a corrupted payload fails the transport checksum; NAT rewrite fixed incrementally passes", () => {
  const h = new IpHeader();
  const p = buildUdp({
    src: "10.0.0.1",
    dst: "10.0.0.2",
    srcPort: 1000,
    dstPort: 53,
    data: Uint8Array.of(1, 2, 3),
  });
  parseIp(p, 0, p.length, h);
  assert.ok(transportChecksumOk(h));
  p[30] ^= 0xff;
  assert.ok(!transportChecksumOk(h));
  p[30] ^= 0xff;
  // Rewrite the source address (SNAT) and fix both checksums with RFC 1624.
  const oldSrc = h.src4, newSrc = 0xc6336401; // 198.51.100.1
  new DataView(p.buffer).setUint32(12, newSrc);
  const ipc = checksumUpdate32((p[10] << 8) | p[11], oldSrc, newSrc);
  p[10] = ipc >> 8;
  p[11] = ipc & 0xff;
  const uc = checksumUpdate32((p[26] << 8) | p[27], oldSrc, newSrc);
  p[26] = uc >> 8;
  p[27] = uc & 0xff;
  parseIp(p, 0, p.length, h);
  assert.equal(h.srcText(), "198.51.100.1");
  assert.ok(ipv4HeaderChecksumOk(h));
  assert.ok(transportChecksumOk(h));
});

Deno.test("fiveTuple fills a reusable struct", () => {
  const ft = new FiveTuple();
  const other = new FiveTuple();
  const rows: [Uint8Array, string][] = [
    [
      buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 5353, dstPort: 53 }),
      "udp 10.0.0.1:5353 -> 10.0.0.2:53",
    ],
    [
      buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 40000, dstPort: 443 }),
      "tcp 10.0.0.1:40000 -> 10.0.0.2:443",
    ],
    [
      buildIcmpEcho({ src: "10.0.0.1", dst: "10.0.0.2", ident: 42 }),
      "icmp 10.0.0.1:42 -> 10.0.0.2:42",
    ],
    [
      buildUdp({ src: "2001:db8::1", dst: "2001:db8::2", srcPort: 1, dstPort: 2 }),
      "udp [2001:db8:0:0:0:0:0:1]:1 -> [2001:db8:0:0:0:0:0:2]:2",
    ],
  ];
  for (const [p, want] of rows) {
    const buf = new Uint8Array(p.length + 8);
    buf.set(p, 8);
    assert.equal(fiveTuple(buf, 8, p.length, ft), null);
    assert.equal(ft.toString(), want);
    fiveTuple(p, 0, p.length, other);
    assert.ok(ft.equals(other));
    assert.equal(ft.hash(), other.hash());
  }
  const a = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1, dstPort: 2 });
  const b = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1, dstPort: 3 });
  fiveTuple(a, 0, a.length, ft);
  fiveTuple(b, 0, b.length, other);
  assert.ok(!ft.equals(other));
  assert.equal(fiveTuple(a, 0, 10, ft), "truncated");
  assert.equal(ft.family, 0);
  assert.deepEqual([...parseIpv6Text("::ffff:1.2.3.4")!].slice(10), [0xff, 0xff, 1, 2, 3, 4]);
});

Deno.test("fiveTuple costs well under a microsecond per packet", () => {
  const p = buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", srcPort: 1, dstPort: 2 });
  const ft = new FiveTuple();
  for (let i = 0; i < 10000; i++) fiveTuple(p, 0, p.length, ft); // warm up
  const t0 = performance.now();
  const n = 1_000_000;
  for (let i = 0; i < n; i++) fiveTuple(p, 0, p.length, ft);
  const ns = ((performance.now() - t0) * 1e6) / n;
  console.log(`fiveTuple: ${ns.toFixed(1)} ns/packet`);
  assert.ok(ns < 5000, `fiveTuple took ${ns} ns per packet`);
});
