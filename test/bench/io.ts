/**
 * Raw I/O benchmark (not a test): µs per packet for UDP sendmmsg/recvmmsg
 * batches on loopback and for TUN write+read batches (packets written to the
 * TUN are forwarded by the kernel back out of the same TUN, inside a
 * namespace). Run as root: `deno run -A test/bench/io.ts`.
 */
import { UdpSocket } from "../../src/net/udp.ts";
import { Poller, POLLIN } from "../../src/net/poller.ts";
import { type Endpoint, endpoint } from "../../src/net/endpoint.ts";
import { LinuxTun } from "../../src/tun/linux.ts";
import { canUseNetns, NetnsLab, sh } from "../e2e/netns.ts";

const BATCH = 64;
const SIZE = 1400;

function slots(n: number, size: number): Uint8Array[] {
  const slab = new ArrayBuffer(n * size);
  return Array.from({ length: n }, (_, i) => new Uint8Array(slab, i * size, size));
}

async function benchUdp(rounds: number): Promise<void> {
  const a = UdpSocket.bind({ address: "127.0.0.1", batch: BATCH });
  const b = UdpSocket.bind({ address: "127.0.0.1", batch: BATCH, rcvbuf: 32 << 20 });
  const poller = new Poller();
  poller.add(b.fd, POLLIN);
  const out = slots(BATCH, 2048);
  const sizes = new Int32Array(BATCH).fill(SIZE);
  const to: Endpoint[] = new Array(BATCH).fill(endpoint("udp", "127.0.0.1", b.port));
  const inb = slots(BATCH, 2048);
  const rsizes = new Int32Array(BATCH);
  const from: Endpoint[] = new Array(BATCH);
  let sendT = 0, recvT = 0, sent = 0, got = 0;
  for (let r = 0; r < rounds; r++) {
    let t = performance.now();
    sent += a.send(out, sizes, to, BATCH, 16);
    sendT += performance.now() - t;
    let want = BATCH;
    while (want > 0) {
      t = performance.now();
      const n = b.recv(inb, rsizes, from, 16);
      recvT += performance.now() - t;
      want -= n;
      got += n;
      if (n === 0 && (await poller.wait(100)) === 0) break; // lost datagrams: move on
    }
  }
  console.log(
    `udp loopback, ${BATCH} x ${SIZE} B: sendmmsg ${(sendT * 1000 / sent).toFixed(2)} µs/pkt, ` +
      `recvmmsg ${(recvT * 1000 / got).toFixed(2)} µs/pkt (${got}/${sent} received)`,
  );
  poller.close();
  a.close();
  b.close();
}

function ipChecksum(p: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (p[i] << 8) | p[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

async function benchTun(rounds: number): Promise<void> {
  await using lab = new NetnsLab("bio");
  const ns = await lab.ns("a");
  const name = `${lab.prefix}t`.slice(-15);
  const tun = LinuxTun.open({ name, mtu: 1500, up: false });
  lab.defer(() => tun.close());
  await sh(["ip", "link", "set", name, "netns", ns]);
  await sh(["ip", "-n", ns, "addr", "add", "10.98.0.1/24", "dev", name]);
  await sh(["ip", "-n", ns, "link", "set", name, "up"]);
  await sh(["ip", "-n", ns, "route", "add", "10.98.1.0/24", "dev", name]);
  for (
    const kv of [
      "net.ipv4.ip_forward=1",
      "net.ipv4.conf.all.send_redirects=0",
      `net.ipv4.conf.${name}.send_redirects=0`,
      "net.ipv4.conf.all.rp_filter=0",
      `net.ipv4.conf.${name}.rp_filter=0`,
    ]
  ) {
    await lab.exec(ns, ["sysctl", "-qw", kv]);
  }
  const out = slots(BATCH, 2048);
  for (const b of out) {
    const p = b.subarray(16, 16 + SIZE);
    p.set([
      0x45,
      0,
      SIZE >> 8,
      SIZE & 0xff,
      0,
      0,
      0x40,
      0,
      64,
      17,
      0,
      0,
      10,
      98,
      0,
      2,
      10,
      98,
      1,
      5,
    ]);
    const c = ipChecksum(p);
    p[10] = c >> 8;
    p[11] = c & 0xff;
    p.set([0x30, 0x39, 0x30, 0x39, (SIZE - 20) >> 8, (SIZE - 20) & 0xff, 0, 0], 20); // UDP, no checksum
  }
  const sizes = new Int32Array(BATCH).fill(SIZE);
  const inb = slots(BATCH, 2048);
  const rsizes = new Int32Array(BATCH);
  const poller = new Poller();
  poller.add(tun.fd, POLLIN);
  // Drain router solicitations and the like before measuring.
  await new Promise((r) => setTimeout(r, 200));
  while (tun.read(inb, rsizes, 16) > 0) { /* discard */ }
  let writeT = 0, readT = 0, written = 0, got = 0;
  for (let r = 0; r < rounds; r++) {
    let t = performance.now();
    written += tun.write(out, sizes, 16, BATCH);
    writeT += performance.now() - t;
    let want = BATCH;
    while (want > 0) {
      t = performance.now();
      const n = tun.read(inb, rsizes, 16);
      readT += performance.now() - t;
      for (let i = 0; i < n; i++) if (inb[i][16 + 19] === 5) want--, got++;
      if (n === 0 && (await poller.wait(100)) === 0) break;
    }
  }
  console.log(
    `tun (kernel forwards back), ${BATCH} x ${SIZE} B: write ${
      (writeT * 1000 / written).toFixed(2)
    } µs/pkt, ` +
      `read ${(readT * 1000 / got).toFixed(2)} µs/pkt (${got}/${written} came back)`,
  );
  poller.close();
}

async function benchPoller(n: number): Promise<void> {
  const a = UdpSocket.bind({ address: "127.0.0.1" });
  const b = UdpSocket.bind({ address: "127.0.0.1" });
  const poller = new Poller();
  poller.add(b.fd, POLLIN);
  a.send([new Uint8Array(8)], new Int32Array([8]), [endpoint("udp", "127.0.0.1", b.port)], 1);
  await poller.wait(100);
  let t = performance.now();
  for (let i = 0; i < n; i++) await poller.wait(100);
  const ready = (performance.now() - t) * 1000 / n;
  b.recv(slots(1, 64), new Int32Array(1), []);
  t = performance.now();
  for (let i = 0; i < n / 10; i++) {
    poller.wake();
    await poller.wait(100);
  }
  const woken = (performance.now() - t) * 1000 / (n / 10);
  // Parked: the nonblocking poll is on a worker thread; time from wake() to resolution.
  let parkedSum = 0;
  const parkedN = 200;
  for (let i = 0; i < parkedN; i++) {
    let t1 = 0;
    setTimeout(() => {
      t1 = performance.now();
      poller.wake();
    }, 0);
    await poller.wait(100);
    parkedSum += performance.now() - t1;
  }
  const parked = parkedSum * 1000 / parkedN;
  console.log(
    `poller: wait() with an fd ready ${ready.toFixed(2)} µs, after wake() ${
      woken.toFixed(2)
    } µs, ` +
      `parked nonblocking poll, wake() to resolution ${parked.toFixed(1)} µs`,
  );
  poller.close();
  a.close();
  b.close();
}

await benchUdp(2000);
await benchPoller(20000);
if (canUseNetns) await benchTun(2000);
else console.log("tun: skipped (needs root)");
