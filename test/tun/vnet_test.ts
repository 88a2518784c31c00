/**
 * The offload half of a TUN device (src/tun/vnet.ts) through the in-memory
 * fake, which plays a kernel that took IFF_VNET_HDR: super-packets read
 * across calls, merged writes, and the fallbacks when the kernel says no.
 */
import assert from "node:assert/strict";
import { MemoryTun } from "../../src/tun/memory.ts";
import { buildIcmpEcho, buildUdp } from "../../src/packet/build.ts";
import { arenaSlots, fixture, verifyPacket } from "../packet/offload_fixtures.ts";

const OFF = 16;
const ALL = { tso: true, uso: true, gro: true };

Deno.test("vnet: a super-packet comes out as segments, across as many reads as it takes", () => {
  const tun = new MemoryTun({ offload: ALL });
  const frame = fixture("tcp4_tso");
  tun.injectFrame(frame);
  tun.inject(buildIcmpEcho({ src: "10.77.0.1", dst: "10.77.0.2", seq: 1 }));
  const { slots } = arenaSlots(2);
  const sizes = new Int32Array(2);
  const got: Uint8Array[] = [];
  for (let i = 0; i < 10; i++) {
    const n = tun.read(slots, sizes, OFF);
    for (let k = 0; k < n; k++) got.push(slots[k].slice(OFF, OFF + sizes[k]));
    if (n === 0) break;
  }
  const segments = Math.ceil((frame.length - 10 - 52) / 1368);
  assert.equal(got.length, segments + 1, "every segment, then the ping");
  for (const s of got.slice(0, segments)) {
    assert.deepEqual(verifyPacket(s), { ip: true, transport: true });
  }
  assert.equal(got[segments][9], 1, "the ICMP packet after them, in order");
  assert.equal(tun.stats.superPackets, 1);
  assert.equal(tun.stats.segments, segments);
  assert.equal(tun.stats.readPackets, segments + 1);
});

Deno.test("vnet: segments written back leave as one merged frame", () => {
  const a = new MemoryTun({ offload: ALL });
  a.injectFrame(fixture("tcp6_tso"));
  const { slots } = arenaSlots(64);
  const sizes = new Int32Array(64);
  const n = a.read(slots, sizes, OFF);
  const b = new MemoryTun({ offload: ALL });
  assert.equal(b.write(slots, sizes, OFF, n), n);
  const frames = b.takeFrames();
  assert.equal(frames.length, 1);
  assert.deepEqual(frames[0], fixture("tcp6_tso"), "the kernel's own frame again");
  assert.equal(b.stats.coalescedFrames, 1);
  assert.equal(b.stats.coalescedPackets, n);
});

Deno.test("vnet: a kernel that refuses merged writes gets the packets one by one, and says so", () => {
  const a = new MemoryTun({ offload: ALL });
  a.injectFrame(fixture("tcp4_tso"));
  const { slots } = arenaSlots(64);
  const sizes = new Int32Array(64);
  const n = a.read(slots, sizes, OFF);
  const b = new MemoryTun({ offload: ALL, refuse: { mergedWrites: true } });
  assert.equal(b.offloads.groTcp.on, true);
  assert.equal(b.write(slots, sizes, OFF, n), n, "nothing lost");
  const frames = b.takeFrames();
  assert.equal(frames.length, n);
  for (const f of frames) {
    assert.deepEqual([...f.subarray(0, 10)], new Array(10).fill(0), "plain virtio header");
    assert.deepEqual(
      verifyPacket(f.subarray(10)),
      { ip: true, transport: true },
      "headers restored",
    );
  }
  assert.deepEqual(b.offloads.groTcp, { on: false, why: "refused a merged write (EINVAL)" });
  // From now on it does not try again.
  a.injectFrame(fixture("tcp4_tso"));
  const m = a.read(slots, sizes, OFF);
  assert.equal(b.write(slots, sizes, OFF, m), m);
  assert.equal(b.takeFrames().length, m);
  assert.equal(b.stats.coalescedFrames, 0);
});

Deno.test("vnet: without USO, UDP datagrams are never merged", () => {
  const dgrams = [0, 1, 2].map((i) =>
    buildUdp({
      src: "10.9.0.1",
      dst: "10.9.0.2",
      srcPort: 4000,
      dstPort: 53,
      data: new Uint8Array(900).fill(i),
    })
  );
  const { slots } = arenaSlots(3);
  const sizes = new Int32Array(3);
  dgrams.forEach((d, i) => {
    slots[i].set(d, OFF);
    sizes[i] = d.length;
  });
  const noUso = new MemoryTun({ offload: ALL, refuse: { uso: true } });
  assert.deepEqual(noUso.offloads.uso, { on: false, why: "refused by the fake kernel" });
  assert.equal(noUso.offloads.groUdp.on, false);
  assert.equal(noUso.write(slots, sizes, OFF, 3), 3);
  assert.equal(noUso.takeFrames().length, 3);
  const withUso = new MemoryTun({ offload: ALL });
  assert.equal(withUso.write(slots, sizes, OFF, 3), 3);
  assert.equal(withUso.takeFrames().length, 1);
});

Deno.test("vnet: malformed frames are dropped and counted; reading goes on", () => {
  const tun = new MemoryTun({ offload: ALL });
  const ufo = fixture("tcp4_tso").slice();
  ufo[1] = 3; // UFO: never asked for
  tun.injectFrame(ufo);
  tun.injectFrame(new Uint8Array(6)); // shorter than a virtio header
  const partial = fixture("tcp4_partial");
  tun.injectFrame(partial);
  const { slots } = arenaSlots(8);
  const sizes = new Int32Array(8);
  assert.equal(tun.read(slots, sizes, OFF), 1);
  const p = slots[0].slice(OFF, OFF + sizes[0]);
  assert.deepEqual(verifyPacket(p), { ip: true, transport: true }, "partial checksum completed");
  assert.equal(tun.stats.badFrames, 2);
  assert.equal(tun.stats.checksumsCompleted, 1);
});

Deno.test("vnet: a device without offloads says why, and takes no frames", () => {
  const tun = new MemoryTun();
  assert.deepEqual(tun.offloads.tso, { on: false, why: "not requested" });
  assert.equal(tun.stagingBytes, 0);
  assert.throws(() => tun.injectFrame(fixture("tcp4_tso")), /offloads are off/);
});
