import assert from "node:assert/strict";
import { WindowsTun } from "../../src/tun/windows.ts";
import { InputError, SyscallError } from "../../src/errors.ts";
import { FakeWintun } from "./fake_wintun.ts";

function pkt(len: number, tag: number): Uint8Array {
  const p = new Uint8Array(len).fill(tag);
  p[0] = 0x45;
  return p;
}

function slots(n: number, size: number): Uint8Array[] {
  const slab = new ArrayBuffer(n * size);
  return Array.from({ length: n }, (_, i) => new Uint8Array(slab, i * size, size));
}

function open(fake: FakeWintun, name = "Portcullis"): WindowsTun {
  return WindowsTun.open({ name, ringCapacity: 1 << 20 }, fake.api());
}

Deno.test("windows tun: creates a missing adapter and starts a session", () => {
  const fake = new FakeWintun();
  const tun = open(fake, "pc-edge");
  assert.deepEqual(fake.calls, ["OpenAdapter", "CreateAdapter", "StartSession"]);
  assert.equal(fake.createdName, "pc-edge/Portcullis", "names are passed as UTF-16");
  assert.equal(fake.sessionCapacity, 1 << 20);
  assert.equal(tun.name, "pc-edge");
  assert.equal(tun.fd, -1);
  assert.equal(tun.luid(), 0x1234_5678_9abcn);
  tun.close();
  const reuse = new FakeWintun();
  reuse.existing.add("pc-edge");
  open(reuse, "pc-edge").close();
  assert.deepEqual(
    reuse.calls.slice(0, 2),
    ["OpenAdapter", "StartSession"],
    "an existing adapter is reused",
  );
});

Deno.test("windows tun: packets are copied out of the ring in batches and every one released", () => {
  const fake = new FakeWintun();
  const tun = open(fake);
  for (let i = 0; i < 5; i++) fake.inject(pkt(60 + i, i + 1));
  const bufs = slots(2, 256);
  const sizes = new Int32Array(2);
  const seen: number[] = [];
  for (const want of [2, 2, 1, 0]) {
    const n = tun.read(bufs, sizes, 16);
    assert.equal(n, want);
    for (let i = 0; i < n; i++) {
      assert.equal(bufs[i][16], 0x45);
      assert.equal(bufs[i][16 + sizes[i] - 1], sizes[i] - 59);
      seen.push(sizes[i]);
    }
    assert.equal(fake.outstanding, 0, "nothing left unreleased");
  }
  assert.deepEqual(seen, [60, 61, 62, 63, 64]);
  assert.equal(tun.stats.readPackets, 5);
  tun.close();
  assert.deepEqual(fake.violations, []);
});

Deno.test("windows tun: an oversized packet is truncated to the slot and still released", () => {
  const fake = new FakeWintun();
  const tun = open(fake);
  fake.inject(pkt(1000, 9));
  const sizes = new Int32Array(1);
  assert.equal(tun.read(slots(1, 300), sizes, 44), 1);
  assert.equal(sizes[0], 256);
  assert.equal(tun.stats.truncated, 1);
  assert.equal(fake.outstanding, 0);
  tun.close();
  assert.deepEqual(fake.violations, []);
});

Deno.test("windows tun: a session ended by the driver is a clear error", () => {
  const fake = new FakeWintun();
  const tun = open(fake);
  fake.terminate();
  assert.throws(
    () => tun.read(slots(1, 64), new Int32Array(1), 0),
    (e) =>
      e instanceof SyscallError && e.errno === 38 && /Wintun session has ended/.test(e.message),
  );
  assert.throws(() => tun.write([pkt(20, 1)], new Int32Array([20]), 0, 1), /session has ended/);
  tun.close();
});

Deno.test("windows tun: writes are committed to the ring; a full ring drops the rest", () => {
  const fake = new FakeWintun();
  const tun = open(fake);
  const bufs = slots(4, 128);
  bufs.forEach((b, i) => b.set(pkt(40, i + 1), 8));
  fake.sendRingFree = 2;
  assert.equal(tun.write(bufs, new Int32Array([40, 40, 40, 40]), 8, 4), 2);
  assert.equal(fake.sent.length, 2);
  assert.deepEqual([...fake.sent[1]], [...pkt(40, 2)]);
  assert.equal(tun.stats.writeDropped, 2);
  fake.sendRingFree = Infinity;
  assert.equal(
    tun.write(bufs, new Int32Array([0, 121, 40, 40]), 8, 4),
    2,
    "empty and overlong slots are refused",
  );
  assert.equal(tun.stats.writeDropped, 4);
  tun.close();
  assert.deepEqual(fake.violations, []);
});

Deno.test("windows tun: close ends the session then closes the adapter, exactly once", () => {
  const fake = new FakeWintun();
  const tun = open(fake);
  tun.close();
  tun.close();
  assert.deepEqual(fake.calls.filter((c) => c === "EndSession" || c === "CloseAdapter"), [
    "EndSession",
    "CloseAdapter",
  ]);
  assert.throws(
    () => tun.read(slots(1, 64), new Int32Array(1), 0),
    /Cannot read from TUN device "Portcullis": the device is closed/,
  );
  assert.throws(() => tun.write([], new Int32Array(0), 0, 0), /closed/);
});

Deno.test("windows tun: readable() wakes on a packet, times out, and defers close until the wait ends", async () => {
  const fake = new FakeWintun();
  const tun = open(fake);
  const r = tun.readable(5000);
  setTimeout(() => fake.inject(pkt(20, 1)), 10);
  await r;
  assert.equal(tun.read(slots(1, 64), new Int32Array(1), 0), 1);
  const t0 = performance.now();
  await tun.readable(40);
  assert.ok(performance.now() - t0 >= 35);
  const waits = fake.calls.filter((c) => c === "Wait").length;
  const forever = tun.readable(-1);
  assert.equal(fake.calls.filter((c) => c === "Wait").length, waits + 1, "a wait slice is running");
  tun.close();
  assert.equal(fake.calls.includes("EndSession"), false, "not under a waiting thread");
  await forever;
  assert.deepEqual(fake.calls.filter((c) => c === "EndSession" || c === "CloseAdapter"), [
    "EndSession",
    "CloseAdapter",
  ]);
  await assert.rejects(() => tun.readable(10), /closed/);
  assert.deepEqual(fake.violations, []);
});

Deno.test("windows tun: open failures are typed and release what was opened", () => {
  const fake = new FakeWintun();
  fake.failCreate = 5;
  assert.throws(
    () => open(fake, "pc0"),
    (e) =>
      e instanceof SyscallError && e.errno === 5 &&
      e.message === 'Cannot create Wintun adapter "pc0": Windows error 5',
  );
  const f2 = new FakeWintun();
  f2.failStart = 1450;
  assert.throws(
    () => open(f2, "pc0"),
    /Cannot start a session on Wintun adapter "pc0": Windows error 1450/,
  );
  assert.deepEqual(f2.calls.slice(-1), ["CloseAdapter"]);
  assert.throws(() => WindowsTun.open({ name: "" }, fake.api()), InputError);
  assert.throws(
    () => WindowsTun.open({ name: "x", ringCapacity: 1000 }, fake.api()),
    /ring capacity 1000/,
  );
});
