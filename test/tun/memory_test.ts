import assert from "node:assert/strict";
import { MemoryTun } from "../../src/tun/memory.ts";
import { SyscallError } from "../../src/errors.ts";

function ipv4(len: number, tag: number): Uint8Array {
  const p = new Uint8Array(len);
  p[0] = 0x45;
  p[len - 1] = tag;
  return p;
}

function slots(n: number, size: number): Uint8Array[] {
  const slab = new ArrayBuffer(n * size);
  return Array.from({ length: n }, (_, i) => new Uint8Array(slab, i * size, size));
}

Deno.test("memory tun: injected packets are read in order at the offset, in batches", () => {
  const tun = new MemoryTun({ name: "m0", mtu: 1400 });
  assert.equal(tun.name, "m0");
  assert.equal(tun.mtu, 1400);
  assert.equal(tun.fd, -1);
  for (let i = 0; i < 5; i++) assert.equal(tun.inject(ipv4(40 + i, i)), true);
  const bufs = slots(3, 256);
  const sizes = new Int32Array(3);
  assert.equal(tun.read(bufs, sizes, 16), 3);
  assert.deepEqual([...sizes], [40, 41, 42]);
  assert.equal(bufs[2][16], 0x45);
  assert.equal(bufs[2][16 + 41], 2);
  assert.equal(tun.read(bufs, sizes, 16), 2);
  assert.equal(bufs[1][16 + 43], 4);
  assert.equal(tun.read(bufs, sizes, 16), 0);
  assert.equal(tun.stats.readPackets, 5);
});

Deno.test("memory tun: inject copies, truncates oversize reads and bounds the queue", () => {
  const tun = new MemoryTun({ capacity: 2 });
  const p = ipv4(100, 7);
  tun.inject(p);
  p[99] = 9; // the device kept its own copy
  assert.equal(tun.inject(ipv4(20, 1)), true);
  assert.equal(tun.inject(ipv4(20, 2)), false, "queue full: dropped");
  assert.equal(tun.stats.injectDropped, 1);
  const bufs = slots(2, 64);
  const sizes = new Int32Array(2);
  assert.equal(tun.read(bufs, sizes, 0), 2);
  assert.equal(sizes[0], 64, "truncated to the slot, as the kernel does");
  assert.equal(tun.stats.truncated, 1);
  assert.equal(sizes[1], 20);
  assert.equal(bufs[1][19], 1);
});

Deno.test("memory tun: writes are collected; bad packets are refused and counted", () => {
  const tun = new MemoryTun();
  const bufs = slots(5, 128);
  bufs[0].set(ipv4(30, 1), 8);
  bufs[1].set([0x60, 0, 0, 0], 8); // IPv6
  bufs[2].set([0x00, 1, 2], 8); // not IP
  bufs[3].set(ipv4(20, 3), 8);
  bufs[4].set(ipv4(20, 4), 8);
  const sizes = new Int32Array([30, 40, 3, 0, 500]);
  assert.equal(tun.write(bufs, sizes, 8, 5), 2);
  const out = tun.take();
  assert.equal(out.length, 2);
  assert.equal(out[0].length, 30);
  assert.equal(out[0][29], 1);
  assert.equal(out[1][0] >> 4, 6);
  assert.equal(tun.stats.writeDropped, 3);
  assert.deepEqual(tun.take(), []);
  bufs[0][8 + 29] = 99;
  assert.equal(out[0][29], 1, "collected packets are copies");
});

Deno.test("memory tun: readable resolves on inject, on timeout and on close", async () => {
  const tun = new MemoryTun();
  let woke = false;
  const r = tun.readable(5000).then(() => woke = true);
  await Promise.resolve();
  assert.equal(woke, false);
  tun.inject(ipv4(20, 0));
  await r;
  assert.equal(woke, true);
  await tun.readable(1000); // already readable: at once
  tun.read(slots(1, 64), new Int32Array(1), 0);
  const t0 = performance.now();
  await tun.readable(30);
  assert.ok(performance.now() - t0 >= 25);
  const pending = tun.readable(-1);
  tun.close();
  await pending;
  tun.close();
  assert.throws(() => tun.read(slots(1, 64), new Int32Array(1), 0), SyscallError);
  assert.throws(
    () => tun.inject(ipv4(20, 0)),
    /Cannot inject into TUN device "mem0": the device is closed/,
  );
  await assert.rejects(() => tun.readable(10), /closed/);
});
