import assert from "node:assert/strict";
import {
  completeChecksum,
  cutSegments,
  newSuperPacket,
  parseSuperPacket,
} from "../../src/packet/gso.ts";
import { newVnetHeader, readVnetHeader } from "../../src/packet/vnet.ts";
import { arenaSlots, fixture, u16, u32, verifyPacket } from "./offload_fixtures.ts";

/** Cuts a kernel frame into slots at offset 16; returns the segments as copies. */
function cut(frame: Uint8Array, slotSize = 2112, chunk = 0): Uint8Array[] {
  const { slots, staging } = arenaSlots(64, slotSize);
  staging.set(frame);
  const h = readVnetHeader(staging, 0, newVnetHeader());
  const sp = newSuperPacket();
  const err = parseSuperPacket(staging, 10, frame.length - 10, h, slotSize - 16, sp);
  assert.equal(err, null);
  const sizes = new Int32Array(64);
  // In pieces of `chunk` (as when the caller's batch fills up), or all at once.
  const step = chunk || sp.segments;
  for (let first = 0; first < sp.segments; first += step) {
    const n = Math.min(step, sp.segments - first);
    cutSegments(staging, 10, sp, first, n, slots, sizes, first, 16);
  }
  return Array.from({ length: sp.segments }, (_, i) => slots[i].slice(16, 16 + sizes[i]));
}

for (const name of ["tcp4_tso", "tcp6_tso"] as const) {
  Deno.test(`gso: the kernel's ${name} super-packet becomes segments that verify on their own`, () => {
    const frame = fixture(name);
    const sup = frame.subarray(10);
    const h = readVnetHeader(frame, 0, newVnetHeader());
    const v6 = name === "tcp6_tso";
    const ipHl = v6 ? 40 : 20;
    const thl = (sup[ipHl + 12] >> 4) * 4;
    const hl = ipHl + thl;
    const segs = cut(frame);
    assert.equal(segs.length, Math.ceil((sup.length - hl) / h.gsoSize));
    assert.ok(segs.length >= 3, "the fixture is a real super-packet");
    const payload: number[] = [];
    segs.forEach((s, j) => {
      const last = j === segs.length - 1;
      const check = verifyPacket(s);
      assert.ok(check.ip, `segment ${j}: IPv4 header checksum`);
      assert.ok(check.transport, `segment ${j}: TCP checksum`);
      if (v6) assert.equal(u16(s, 4), s.length - 40, "IPv6 payload length");
      else {
        assert.equal(u16(s, 2), s.length, "IPv4 total length");
        assert.equal(u16(s, 4), (u16(sup, 4) + j) & 0xffff, "IPv4 id counts up");
      }
      assert.equal(u32(s, ipHl + 4), (u32(sup, ipHl + 4) + j * h.gsoSize) >>> 0, "sequence");
      assert.equal(s.length - hl, last ? sup.length - hl - j * h.gsoSize : h.gsoSize);
      // PSH (and FIN) only on the last segment; ACK everywhere; options repeated.
      assert.equal(s[ipHl + 13], last ? sup[ipHl + 13] : sup[ipHl + 13] & ~0x09);
      assert.deepEqual(s.subarray(ipHl + 20, hl), sup.subarray(ipHl + 20, hl));
      payload.push(...s.subarray(hl));
    });
    assert.deepEqual(new Uint8Array(payload), sup.subarray(hl), "payload intact and in order");
  });
}

Deno.test("gso: the kernel's UDP (USO) super-packet becomes datagrams that verify", () => {
  const frame = fixture("udp4_uso");
  const sup = frame.subarray(10);
  const segs = cut(frame);
  assert.deepEqual(segs.map((s) => s.length - 28), [1200, 1200, 1200, 1200, 700]);
  segs.forEach((s, j) => {
    assert.deepEqual(verifyPacket(s), { ip: true, transport: true }, `datagram ${j}`);
    assert.equal(u16(s, 24), s.length - 20, "UDP length");
    assert.equal(u16(s, 4), (u16(sup, 4) + j) & 0xffff);
    assert.ok(s.subarray(28).every((x) => x === 0x41 + j), "each datagram's own bytes");
  });
});

Deno.test("gso: cutting in pieces gives the same segments as cutting at once", () => {
  for (const name of ["tcp4_tso", "tcp6_tso", "udp4_uso"] as const) {
    const whole = cut(fixture(name));
    for (const chunk of [1, 2, 3]) assert.deepEqual(cut(fixture(name), 2112, chunk), whole, name);
  }
});

Deno.test("gso: a super-packet without a partial checksum (csum_start 0) is cut the same", () => {
  // As the kernel may hand over forwarded GSO traffic: only gso_type and gso_size matter.
  const frame = fixture("tcp4_tso").slice();
  frame[0] = 0; // no NEEDS_CSUM
  frame.fill(0, 2, 4); // hdr_len
  frame.fill(0, 6, 10); // csum_start, csum_offset
  assert.deepEqual(cut(frame), cut(fixture("tcp4_tso")));
});

Deno.test("gso: FIN stays on the last segment, CWR on the first (ECN)", () => {
  const frame = fixture("tcp4_tso").slice();
  frame[10 + 20 + 13] |= 0x01 | 0x80; // FIN and CWR on the super-packet
  frame[1] |= 0x80; // VIRTIO_NET_HDR_GSO_ECN
  const segs = cut(frame);
  const flags = segs.map((s) => s[33]);
  assert.equal(flags[0] & 0x80, 0x80, "CWR on the first");
  assert.ok(flags.slice(1).every((f) => (f & 0x80) === 0), "CWR on no other");
  assert.ok(flags.slice(0, -1).every((f) => (f & 0x09) === 0), "FIN/PSH on none but the last");
  assert.equal(flags[flags.length - 1] & 0x09, 0x09);
  for (const s of segs) assert.ok(verifyPacket(s).transport);
});

Deno.test("gso: frames that are not valid super-packets are refused with a reason", () => {
  const base = fixture("tcp4_tso");
  const cases: [string, (f: Uint8Array) => void, string, number?][] = [
    ["UFO is not asked for", (f) => (f[1] = 3), "bad_gso_type"],
    ["TCPv6 type on an IPv4 packet", (f) => (f[1] = 4), "bad_gso_type"],
    ["UDP with ECN", (f) => (f[1] = 0x85), "bad_gso_type"],
    ["IPv4 header length below 20", (f) => (f[10] = 0x44), "bad_ip_header"],
    ["protocol is not TCP", (f) => (f[19] = 17), "bad_ip_header"],
    ["a fragment", (f) => (f[16] |= 0x20), "bad_ip_header"],
    ["TCP data offset below 5", (f) => (f[42] = 0x40), "bad_transport_header"],
    ["gso_size 0", (f) => (f[4] = f[5] = 0), "bad_gso_size"],
    ["segments larger than a slot", () => {}, "segment_too_large", 1000],
  ];
  for (const [what, mutate, want, room] of cases) {
    const f = base.slice();
    mutate(f);
    const h = readVnetHeader(f, 0, newVnetHeader());
    const got = parseSuperPacket(f, 10, f.length - 10, h, room ?? 2096, newSuperPacket());
    assert.equal(got, want, what);
  }
  const h = readVnetHeader(base, 0, newVnetHeader());
  assert.equal(parseSuperPacket(base, 10, 52, h, 2096, newSuperPacket()), "bad_transport_header");
  assert.equal(parseSuperPacket(base, 10, 10, h, 2096, newSuperPacket()), "bad_ip_header");
});

Deno.test("gso: a partial checksum the kernel left (NEEDS_CSUM) is completed", () => {
  const frame = fixture("tcp4_partial");
  const h = readVnetHeader(frame, 0, newVnetHeader());
  assert.equal(h.flags & 1, 1, "the fixture is CHECKSUM_PARTIAL");
  const p = frame.slice(10);
  assert.equal(verifyPacket(p).transport, false, "before: only the pseudo-header sum");
  assert.ok(completeChecksum(p, 0, p.length, h.csumStart, h.csumOffset));
  assert.deepEqual(verifyPacket(p), { ip: true, transport: true });
  assert.equal(completeChecksum(p, 0, p.length, p.length, 16), false, "offsets outside");
  assert.equal(completeChecksum(p, 0, p.length, 20, p.length), false);
});

Deno.test("gso: a UDP checksum that sums to zero is sent as 0xffff", () => {
  // Find a payload word that makes the UDP sum come out 0, then complete it.
  const p = new Uint8Array(20 + 8 + 4);
  p.set([0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  p.set([0x30, 0x39, 0x00, 0x35, 0, 12], 20);
  for (let w = 0; w < 0x10000; w++) {
    p[28] = w >> 8;
    p[29] = w & 0xff;
    const pseudo = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + 12;
    let s = pseudo;
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    p[26] = s >> 8;
    p[27] = s & 0xff;
    completeChecksum(p, 0, 32, 20, 6);
    if (u16(p, 26) === 0xffff) {
      assert.ok(verifyPacket(p).transport);
      return;
    }
  }
  assert.fail("no payload made the sum zero");
});
