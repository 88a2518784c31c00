import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, sh } from "../e2e/netns.ts";
import { LinuxTun } from "../../src/tun/linux.ts";
import { InputError, SyscallError } from "../../src/errors.ts";

function checksum(b: Uint8Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i += 2) sum += (b[i] << 8) | (i + 1 < end ? b[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Turns an ICMP echo request (IPv4, at b[off..off+len]) into the echo reply, in place. */
function makeEchoReply(b: Uint8Array, off: number, len: number): void {
  const p = b.subarray(off, off + len);
  const ihl = (p[0] & 0x0f) * 4;
  const src = p.slice(12, 16);
  p.copyWithin(12, 16, 20);
  p.set(src, 16);
  p[8] = 64;
  p[10] = p[11] = 0;
  const c = checksum(p, 0, ihl);
  p[10] = c >> 8;
  p[11] = c & 0xff;
  p[ihl] = 0; // echo reply
  p[ihl + 2] = p[ihl + 3] = 0;
  const ic = checksum(p, ihl, len);
  p[ihl + 2] = ic >> 8;
  p[ihl + 3] = ic & 0xff;
}

Deno.test({
  name: "linux tun: ping through the device and answer it by hand",
  ignore: !canUseNetns,
}, async () => {
  await using lab = new NetnsLab("tun");
  const ns = await lab.ns("a");
  const name = `${lab.prefix}t`.slice(-15);
  const tun = LinuxTun.open({ name, mtu: 1400, up: false });
  lab.defer(() => tun.close());
  assert.equal(tun.name, name);
  assert.equal(tun.mtu, 1400);
  assert.ok(tun.fd >= 0);
  // Move the interface into the test's namespace; the fd stays ours.
  await sh(["ip", "link", "set", name, "netns", ns]);
  await sh(["ip", "-n", ns, "addr", "add", "10.99.0.1/24", "dev", name]);
  await sh(["ip", "-n", ns, "link", "set", name, "mtu", "1400", "up"]);

  const ping = lab.spawn(ns, ["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.0.2"], {
    output: "piped",
  });
  const slab = new ArrayBuffer(8 * 2048);
  const bufs = Array.from({ length: 8 }, (_, i) => new Uint8Array(slab, i * 2048, 2048));
  const sizes = new Int32Array(8);
  const OFF = 16;
  let echoes = 0;
  const deadline = performance.now() + 8000;
  while (echoes < 3 && performance.now() < deadline) {
    await tun.readable(500);
    const n = tun.read(bufs, sizes, OFF);
    const replies: Uint8Array[] = [];
    const rsizes = new Int32Array(8);
    for (let i = 0; i < n; i++) {
      const p = bufs[i].subarray(OFF, OFF + sizes[i]);
      if (p[0] >> 4 !== 4) continue; // IPv6 noise (router solicitations)
      assert.equal(p[0] & 0x0f, 5, "IHL 5");
      assert.equal((p[2] << 8) | p[3], sizes[i], "total length matches the read size");
      assert.equal(p[9], 1, "protocol ICMP");
      assert.deepEqual([...p.subarray(12, 16)], [10, 99, 0, 1]);
      assert.deepEqual([...p.subarray(16, 20)], [10, 99, 0, 2]);
      assert.equal(checksum(p, 0, 20), 0, "header checksum verifies");
      assert.equal(p[20], 8, "ICMP echo request");
      makeEchoReply(bufs[i], OFF, sizes[i]);
      rsizes[replies.length] = sizes[i];
      replies.push(bufs[i]);
      echoes++;
    }
    if (replies.length) {
      assert.equal(tun.write(replies, rsizes, OFF, replies.length), replies.length);
    }
  }
  assert.equal(echoes, 3);
  const out = await ping.output();
  const text = new TextDecoder().decode(out.stdout);
  assert.match(text, /3 packets transmitted, 3 received/);
  assert.equal(out.code, 0);
  assert.equal(tun.stats.writePackets, 3);
});

Deno.test(
  { name: "linux tun: kernel-chosen name and close semantics", ignore: !canUseNetns },
  async () => {
    const tun = LinuxTun.open({ name: "pcq%d", up: false });
    try {
      assert.match(tun.name, /^pcq\d+$/);
      assert.equal(tun.mtu, 1500);
      const bufs = [new Uint8Array(2048)];
      const sizes = new Int32Array(1);
      assert.equal(tun.read(bufs, sizes, 0), 0, "nothing to read on a down device");
      const link = await sh(["ip", "link", "show", tun.name]);
      assert.match(link.stdout, /mtu 1500/);
      tun.setUp(true);
      assert.match((await sh(["ip", "link", "show", tun.name])).stdout, /[<,]UP[,>]/);
    } finally {
      tun.close();
    }
    tun.close(); // twice is fine
    assert.equal(tun.fd, -1);
    assert.throws(
      () => tun.read([new Uint8Array(64)], new Int32Array(1), 0),
      (e) =>
        e instanceof SyscallError &&
        /Cannot read from TUN device "pcq\d+": the device is closed/.test(e.message),
    );
    assert.throws(() => tun.write([new Uint8Array(64)], new Int32Array([20]), 0, 1), /closed/);
    await assert.rejects(() => tun.readable(10), /closed/);
    const gone = await sh(["ip", "link", "show", tun.name], { check: false });
    assert.notEqual(gone.code, 0, "the interface is gone after close");
  },
);

Deno.test(
  { name: "linux tun: bad names give typed errors naming the value", ignore: !canUseNetns },
  () => {
    for (const bad of ["this-name-is-far-too-long", "bad name", "a/b", ".."]) {
      assert.throws(
        () => LinuxTun.open({ name: bad }),
        (e) => e instanceof InputError && e.message.includes(`"${bad}"`),
        bad,
      );
    }
    // "lo" exists and is not a TUN device: the kernel refuses it.
    assert.throws(
      () => LinuxTun.open({ name: "lo" }),
      (e) =>
        e instanceof SyscallError && e.call === "ioctl(TUNSETIFF)" &&
        /^Cannot open TUN device "lo": .+ \(E[A-Z]+\)$/.test(e.message),
    );
    assert.throws(() => LinuxTun.open({ name: "pcx0", mtu: 100 }), /Cannot set MTU 100/);
  },
);

Deno.test(
  { name: "linux tun: readable() ends when the device is closed", ignore: !canUseNetns },
  async () => {
    const tun = LinuxTun.open({ name: "pcq%d", up: false });
    const r = tun.readable(-1);
    setTimeout(() => tun.close(), 10);
    await r;
    assert.equal(tun.fd, -1);
  },
);
