import assert from "node:assert/strict";
import { Coalescer, GRO_HEAD, GRO_MEMBER, GRO_SINGLE } from "../../src/packet/gro.ts";
import { cutSegments, newSuperPacket, parseSuperPacket } from "../../src/packet/gso.ts";
import { newVnetHeader, readVnetHeader } from "../../src/packet/vnet.ts";
import { buildTcp, buildUdp } from "../../src/packet/build.ts";
import { arenaSlots, fixture, refSum, verifyPacket } from "./offload_fixtures.ts";

const OFF = 16;

/** Puts packets into arena slots at OFF. */
function load(packets: Uint8Array[]): { slots: Uint8Array[]; sizes: Int32Array } {
  const { slots } = arenaSlots(Math.max(packets.length, 1));
  const sizes = new Int32Array(packets.length);
  packets.forEach((p, i) => {
    slots[i].set(p, OFF);
    sizes[i] = p.length;
  });
  return { slots, sizes };
}

/** Plans and seals a batch; returns each frame as written (virtio header + packet) and the plan. */
function coalesce(packets: Uint8Array[], udp = false) {
  const { slots, sizes } = load(packets);
  const co = new Coalescer(64);
  const n = co.plan(slots, sizes, OFF, packets.length, udp);
  const hdrs = new Uint8Array(16 * n);
  const frames: Uint8Array[] = [];
  const groups: number[][] = [];
  for (let k = 0; k < n; k++) {
    const i = co.order[k];
    const total = co.seal(k, slots, sizes, OFF, hdrs, k * 16);
    const f = new Uint8Array(10 + total);
    f.set(hdrs.subarray(k * 16, k * 16 + 10));
    f.set(slots[i].subarray(OFF, OFF + sizes[i]), 10);
    let at = 10 + sizes[i];
    const group = [i];
    for (let m = co.next[i]; m >= 0; m = co.next[m]) {
      const hl = co.headerLength[i];
      f.set(slots[m].subarray(OFF + hl, OFF + sizes[m]), at);
      at += sizes[m] - hl;
      group.push(m);
    }
    assert.equal(at, f.length, "frame length adds up");
    frames.push(f);
    groups.push(group);
  }
  return { frames, groups, co, slots, sizes };
}

/** The kernel-made frame cut into its segments. */
function segmentsOf(frame: Uint8Array): Uint8Array[] {
  const { slots, staging } = arenaSlots(64);
  staging.set(frame);
  const h = readVnetHeader(staging, 0, newVnetHeader());
  const sp = newSuperPacket();
  assert.equal(parseSuperPacket(staging, 10, frame.length - 10, h, 2096, sp), null);
  const sizes = new Int32Array(64);
  cutSegments(staging, 10, sp, 0, sp.segments, slots, sizes, 0, OFF);
  return Array.from({ length: sp.segments }, (_, i) => slots[i].slice(OFF, OFF + sizes[i]));
}

for (const name of ["tcp4_tso", "tcp6_tso", "udp4_uso"] as const) {
  Deno.test(`gro: the segments of the kernel's ${name} merge back into the kernel's own frame`, () => {
    const frame = fixture(name);
    const segs = segmentsOf(frame);
    const { frames, groups } = coalesce(segs, true);
    assert.equal(frames.length, 1);
    assert.deepEqual(groups[0], segs.map((_, i) => i));
    // Byte for byte what the kernel produced: virtio header (NEEDS_CSUM, type,
    // hdr_len, gso_size, csum_start/offset), IP length and checksum, and the
    // pseudo-header sum in the transport checksum field.
    assert.deepEqual(frames[0], frame);
  });
}

const flow = {
  src: "10.9.0.1",
  dst: "10.9.0.2",
  srcPort: 40000,
  dstPort: 5201,
  ack: 777,
  flags: 0x10,
  options: Uint8Array.of(1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7),
};

/** A run of in-order TCP segments of `sizes` payload bytes starting at seq 1000. */
function run(sizes: number[], over: Partial<typeof flow & { window: number; ttl: number }>[] = []) {
  let seq = 1000;
  return sizes.map((n, i) => {
    const p = buildTcp({ ...flow, ...over[i], seq, data: new Uint8Array(n).fill(i + 1) });
    seq += n;
    return p;
  });
}

Deno.test("gro: which segments merge (table)", () => {
  const plain = run([1000, 1000, 1000]);
  const bad = run([1000, 1000, 1000]);
  bad[1][bad[1].length - 1] ^= 0xff; // corrupt the second segment's payload
  const gap = run([1000, 1000, 1000]);
  gap[2] = buildTcp({ ...flow, seq: 1000 + 3000, data: new Uint8Array(1000) });
  const fin = run([1000, 1000, 1000]);
  fin[1] = buildTcp({ ...flow, seq: 2000, flags: 0x11, data: new Uint8Array(1000) });
  const pureAck = run([1000, 0, 1000]);
  const other = buildTcp({ ...flow, srcPort: 40001, seq: 1, data: new Uint8Array(1000) });
  const a = run([1000, 1000]);
  const b = [other, buildTcp({ ...flow, srcPort: 40001, seq: 1001, data: new Uint8Array(1000) })];
  const cases: [string, Uint8Array[], number[][]][] = [
    ["in order, same size", plain, [[0, 1, 2]]],
    ["a shorter last one joins", run([1000, 1000, 400]), [[0, 1, 2]]],
    ["nothing after a shorter one", run([1000, 400, 1000]), [[0, 1], [2]]],
    ["a bigger one does not join", run([1000, 1400]), [[0], [1]]],
    ["PSH ends it", run([1000, 1000, 1000], [{}, { flags: 0x18 }]), [[0, 1], [2]]],
    ["another ACK number", run([1000, 1000], [{}, { ack: 778 }]), [[0], [1]]],
    ["another window", run([1000, 1000], [{}, { window: 1000 }]), [[0], [1]]],
    ["another TTL", run([1000, 1000], [{}, { ttl: 63 }]), [[0], [1]]],
    [
      "other options",
      run([1000, 1000], [{}, { options: Uint8Array.of(1, 1, 8, 10, 0, 0, 0, 10, 0, 0, 0, 7) }]),
      [[0], [1]],
    ],
    ["a sequence gap", gap, [[0, 1], [2]]],
    ["a bad checksum joins nothing", bad, [[0], [1], [2]]],
    ["FIN in the middle keeps its place", fin, [[0], [1], [2]]],
    ["a pure ACK keeps its place", pureAck, [[0], [1], [2]]],
    ["two connections interleaved", [a[0], b[0], a[1], b[1]], [[0, 2], [1, 3]]],
  ];
  for (const [what, packets, want] of cases) {
    const { groups, frames } = coalesce(packets);
    assert.deepEqual(groups, want, what);
    for (const f of frames) {
      if (f[1] === 0) continue;
      // A merged frame: its IPv4 length and header checksum are right.
      assert.equal(refSum(f, 10, 20), 0xffff, `${what}: IPv4 header checksum`);
      assert.equal((f[12] << 8) | f[13], f.length - 10, `${what}: total length`);
    }
  }
});

Deno.test("gro: merged frames carry what the kernel needs, and nothing is lost", () => {
  const packets = run([1000, 1000, 1000, 500]);
  const { frames, co } = coalesce(packets);
  assert.equal(frames.length, 1);
  const f = frames[0];
  assert.deepEqual([...f.subarray(0, 10)], [1, 1, 52, 0, 0xe8, 0x03, 20, 0, 16, 0]);
  assert.equal(co.role[0], GRO_HEAD);
  assert.deepEqual([...co.role.subarray(1, 4)], [GRO_MEMBER, GRO_MEMBER, GRO_MEMBER]);
  const ip = f.subarray(10);
  assert.equal((ip[2] << 8) | ip[3], 52 + 3500);
  assert.equal(refSum(ip, 0, 20), 0xffff, "IPv4 header checksum");
  // The payloads in order.
  const data = ip.subarray(52);
  assert.ok(data.subarray(0, 1000).every((x) => x === 1));
  assert.ok(data.subarray(3000).every((x) => x === 4));
  // Completing the partial checksum as the kernel would makes the whole packet verify.
  const whole = ip.slice();
  let s = 0;
  for (let i = 20; i < whole.length; i += 2) s += (whole[i] << 8) | (whole[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  const c = ~s & 0xffff;
  whole[36] = c >> 8;
  whole[37] = c & 0xff;
  assert.deepEqual(verifyPacket(whole), { ip: true, transport: true });
});

Deno.test("gro: the size limit of one super-packet starts a new one", () => {
  const { groups } = coalesce(run(new Array(50).fill(1400)));
  assert.equal(groups.length, 2);
  assert.equal(groups[0].length, Math.floor((65535 - 52) / 1400));
  assert.deepEqual(groups.flat(), Array.from({ length: 50 }, (_, i) => i), "order kept");
});

Deno.test("gro: UDP merges only when allowed, and not without a checksum", () => {
  const dgrams = [0, 1, 2].map((i) =>
    buildUdp({
      src: "10.9.0.1",
      dst: "10.9.0.2",
      srcPort: 4000,
      dstPort: 53,
      data: new Uint8Array(800).fill(i),
    })
  );
  assert.deepEqual(coalesce(dgrams, false).groups, [[0], [1], [2]]);
  const { groups, frames } = coalesce(dgrams, true);
  assert.deepEqual(groups, [[0, 1, 2]]);
  assert.equal(frames[0][1], 5, "VIRTIO_NET_HDR_GSO_UDP_L4");
  assert.equal((frames[0][10 + 24] << 8) | frames[0][10 + 25], 8 + 2400, "UDP length of the run");
  const noSum = dgrams.map((d) => {
    const c = d.slice();
    c[26] = c[27] = 0;
    return c;
  });
  assert.deepEqual(coalesce(noSum, true).groups, [[0], [1], [2]]);
});

Deno.test("gro: packets that are not TCP or UDP segments go out alone", () => {
  const withOptions = buildTcp({ ...flow, seq: 1000, data: new Uint8Array(100) });
  const opt = new Uint8Array(withOptions.length + 4);
  opt.set(withOptions.subarray(0, 20));
  opt[0] = 0x46;
  opt.set([1, 1, 1, 0], 20);
  opt.set(withOptions.subarray(20), 24);
  opt[2] = opt.length >> 8;
  opt[3] = opt.length & 0xff;
  const garbage = new Uint8Array(100).fill(0xee);
  const short = new Uint8Array(20).fill(0x45);
  const { groups, co } = coalesce([opt, garbage, short, opt]);
  assert.deepEqual(groups, [[0], [1], [2], [3]]);
  assert.ok([...co.role.subarray(0, 4)].every((r) => r === GRO_SINGLE));
});

Deno.test("gro: unseal puts a head's original header back", () => {
  const packets = run([1000, 1000]);
  const { slots, sizes } = load(packets);
  const co = new Coalescer(8);
  co.plan(slots, sizes, OFF, 2, false);
  const before = slots[0].slice(OFF, OFF + 52);
  co.seal(0, slots, sizes, OFF, new Uint8Array(16), 0);
  assert.notDeepEqual(slots[0].slice(OFF, OFF + 52), before);
  co.unseal(0, slots, OFF);
  assert.deepEqual(slots[0].slice(OFF, OFF + 52), before);
  assert.deepEqual(verifyPacket(slots[0].slice(OFF, OFF + sizes[0])), {
    ip: true,
    transport: true,
  });
});
