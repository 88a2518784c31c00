import assert from "node:assert/strict";
import { canUseNetns, NetnsLab, sh, waitUntil } from "../e2e/netns.ts";
import { LinuxTun } from "../../src/tun/linux.ts";
import { PacketArena } from "../../src/packet/arena.ts";
import { Poller, POLLIN } from "../../src/net/poller.ts";
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

/** Two namespaces joined by two offloading TUN devices and a relay through their read/write. */
async function tunPair(lab: NetnsLab, offload: { tso?: boolean; uso?: boolean; gro?: boolean }) {
  const a = await lab.ns("a"), b = await lab.ns("b");
  const ta = LinuxTun.open({ name: `${lab.prefix}a`.slice(-15), mtu: 1420, up: false, offload });
  const tb = LinuxTun.open({ name: `${lab.prefix}b`.slice(-15), mtu: 1420, up: false, offload });
  lab.defer(() => ta.close());
  lab.defer(() => tb.close());
  for (
    const [t, ns, v4, v6] of [[ta, a, "10.76.0.1", "fd76::1"], [tb, b, "10.76.0.2", "fd76::2"]]
  ) {
    const tun = t as LinuxTun;
    await sh(["ip", "link", "set", tun.name, "netns", ns as string]);
    await sh(["ip", "-n", ns as string, "addr", "add", `${v4}/24`, "dev", tun.name]);
    await sh(["ip", "-n", ns as string, "-6", "addr", "add", `${v6}/64`, "dev", tun.name, "nodad"]);
    await sh(["ip", "-n", ns as string, "link", "set", tun.name, "up"]);
  }
  const arena = new PacketArena(128 * 2112 + 2 * ta.stagingBytes + 256);
  const slots = arena.carveMany(128, 2112);
  if (ta.stagingBytes) ta.useStaging(arena.carve(ta.stagingBytes));
  if (tb.stagingBytes) tb.useStaging(arena.carve(tb.stagingBytes));
  const sizes = new Int32Array(128);
  const poller = new Poller();
  poller.add(ta.fd, POLLIN);
  poller.add(tb.fd, POLLIN);
  let running = true;
  const relay = (async () => {
    while (running) {
      let moved = 0;
      for (const [src, dst] of [[ta, tb], [tb, ta]]) {
        const n = src.read(slots, sizes, 16);
        if (n) assert.equal(dst.write(slots, sizes, 16, n), n, "every packet written");
        moved += n;
      }
      if (!moved) await poller.wait(50);
    }
  })();
  lab.defer(async () => {
    running = false;
    poller.wake();
    await relay;
    poller.close();
  });
  return { a, b, ta, tb };
}

const TOOLS = new URL("../e2e/tools/", import.meta.url).pathname;

/** A TCP transfer from ns a to `dst` in ns b through the pair; returns both sides' SHA-256. */
async function tcpThrough(
  lab: NetnsLab,
  a: string,
  b: string,
  dst: string,
  port: number,
  bytes: number,
) {
  const sink = lab.spawn(b, [
    Deno.execPath(),
    "run",
    "-A",
    `${TOOLS}tcp_sink.ts`,
    dst,
    String(port),
  ], {
    output: "piped",
  });
  await waitUntil(
    "TCP sink listening",
    async () => {
      return (await lab.exec(b, ["ss", "-ltn"], { check: false })).stdout.includes(`:${port}`);
    },
    10_000,
    50,
  );
  const src = await lab.exec(a, [
    Deno.execPath(),
    "run",
    "-A",
    `${TOOLS}tcp_source.ts`,
    dst,
    String(port),
    String(bytes),
  ]);
  const got = new TextDecoder().decode((await sink.output()).stdout).trim().split("\n").pop();
  return { sent: src.stdout.trim(), received: got };
}

Deno.test({
  name: "linux tun offloads: TCP (v4, v6) and UDP GSO cross as super-packets, cut and merged again",
  ignore: !canUseNetns,
}, async () => {
  await using lab = new NetnsLab("tvo");
  const { a, b, ta, tb } = await tunPair(lab, { tso: true, uso: true, gro: true });
  for (const t of [ta, tb]) {
    for (const o of Object.values(t.offloads)) assert.deepEqual(o, { on: true, why: "" });
  }
  const v4 = await tcpThrough(lab, a, b, "10.76.0.2", 5001, 8 << 20);
  assert.equal(v4.received, v4.sent, "IPv4 transfer intact");
  const v6 = await tcpThrough(lab, a, b, "fd76::2", 5002, 2 << 20);
  assert.equal(v6.received, v6.sent, "IPv6 transfer intact");
  const udp = new URL("../../src/net/udp.ts", import.meta.url).href;
  const ep = new URL("../../src/net/endpoint.ts", import.meta.url).href;
  const sink = lab.spawn(b, [
    Deno.execPath(),
    "eval",
    "--no-check",
    `
    import { UdpSocket } from "${udp}";
    const s = UdpSocket.bind({ address: "10.76.0.2", port: 9999 });
    console.log("ready");
    const bufs = Array.from({ length: 64 }, () => new Uint8Array(2048));
    const sizes = new Int32Array(64);
    const got = [];
    const end = Date.now() + 5000;
    while (got.length < 40 && Date.now() < end) {
      const n = s.recv(bufs, sizes, []);
      for (let i = 0; i < n; i++) got.push([sizes[i], bufs[i][0]]);
      if (!n) await new Promise((r) => setTimeout(r, 10));
    }
    console.log(JSON.stringify(got));
    s.close();
  `,
  ], { output: "piped" });
  const reader = sink.stdout.getReader();
  let text = "";
  while (!text.includes("ready")) text += new TextDecoder().decode((await reader.read()).value);
  await lab.exec(a, [
    Deno.execPath(),
    "eval",
    "--no-check",
    `
    import { UdpSocket } from "${udp}";
    import { endpoint } from "${ep}";
    const s = UdpSocket.bind({ address: "10.76.0.1", gso: true });
    const bufs = Array.from({ length: 8 }, (_, i) => new Uint8Array(1300).fill(0x61 + i));
    const sizes = new Int32Array(8).fill(1200);
    const to = new Array(8).fill(endpoint("udp", "10.76.0.2", 9999));
    for (let i = 0; i < 5; i++) { s.send(bufs, sizes, to, 8); await new Promise((r) => setTimeout(r, 20)); }
    s.close();
  `,
  ]);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  const got: number[][] = JSON.parse(text.trim().split("\n").pop()!);
  assert.equal(got.length, 40, "every UDP datagram arrived");
  got.forEach(([size, tag], i) => assert.deepEqual([size, tag], [1200, 0x61 + (i % 8)]));
  const sa = ta.stats, sb = tb.stats;
  assert.ok(sa.superPackets! > 10, `super-packets read: ${JSON.stringify(sa)}`);
  assert.ok(sa.segments! > 2 * sa.superPackets!, "each cut into several segments");
  assert.ok(sb.coalescedFrames! > 10, `merged frames written: ${JSON.stringify(sb)}`);
  assert.ok(sb.coalescedPackets! > 2 * sb.coalescedFrames!);
  assert.equal(sa.badFrames, 0);
  assert.equal(sb.writeDropped, 0);
});

Deno.test({
  name: "linux tun offloads: each one can be left off; the others still work",
  ignore: !canUseNetns,
}, async () => {
  await using lab = new NetnsLab("tvf");
  // Merging on writes without TSO on reads: the kernel hands plain packets.
  const { a, b, ta, tb } = await tunPair(lab, { gro: true });
  assert.deepEqual(ta.offloads.tso, { on: false, why: "not requested" });
  assert.deepEqual(ta.offloads.groTcp, { on: true, why: "" });
  assert.deepEqual(ta.offloads.groUdp, { on: false, why: "needs USO (not requested)" });
  const t = await tcpThrough(lab, a, b, "10.76.0.2", 5003, 2 << 20);
  assert.equal(t.received, t.sent);
  assert.equal(ta.stats.superPackets, 0, "no super-packets without TSO");
  assert.ok(tb.stats.coalescedFrames! > 0, "writes still merged");
});
