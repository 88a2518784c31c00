/**
 * The pump with fake TUN devices and real loopback UDP sockets: packets
 * injected into one side's TUN come out of the other side's TUN, through a
 * real handshake and real encryption; the UAPI socket reports the session.
 */
import assert from "node:assert/strict";
import { MemoryTun } from "../../src/tun/memory.ts";
import { UdpSocket } from "../../src/net/udp.ts";
import { endpoint } from "../../src/net/endpoint.ts";
import { Pump } from "../../src/dataplane/pump.ts";
import { Poller } from "../../src/net/poller.ts";
import { queryStats, queryUapi, serveUapi } from "../../src/dataplane/uapi.ts";
import {
  encodeKey,
  generatePrivateKey,
  publicKeyOf,
  WireGuardDevice,
} from "../../src/wireguard/mod.ts";
import { ManualClock, RoundClock, systemClock } from "../../src/clock.ts";
import { buildIcmpEcho } from "../../src/packet/build.ts";
import { fixture } from "../packet/offload_fixtures.ts";

function side(address: string) {
  const priv = generatePrivateKey();
  const device = new WireGuardDevice({ privateKey: priv, clock: systemClock });
  const tun = new MemoryTun({ name: `mem${address.split(".").pop()}`, mtu: 1420 });
  const udp = UdpSocket.bind({ address: "127.0.0.1", port: 0 });
  const pump = new Pump({ tun, device, udp });
  return { priv, pub: publicKeyOf(priv), device, tun, udp, pump: pump as Pump, address };
}

async function until<T>(fn: () => T | null | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("timed out");
}

Deno.test("pump: packets cross a real WireGuard session between two fake TUNs", async () => {
  const a = side("10.7.0.1"), b = side("10.7.0.2");
  const dir = await Deno.makeTempDir();
  const runs = [a.pump.run(), b.pump.run()];
  const uapi = await serveUapi(
    "pctest0",
    a.device,
    () => ({
      privateKey: a.priv,
      listenPort: a.udp.port,
    }),
    { dir, counters: () => ({ ...a.pump.stats }) },
  );
  try {
    a.device.setPeer({
      publicKey: b.pub,
      allowedIps: ["10.7.0.2/32"],
      endpoint: endpoint("udp", "127.0.0.1", b.udp.port),
    });
    b.device.setPeer({ publicKey: a.pub, allowedIps: ["10.7.0.1/32"] });
    a.pump.kick();
    b.pump.kick();
    // Packets sent before the handshake are staged, then delivered in order.
    for (let seq = 1; seq <= 20; seq++) {
      a.tun.inject(buildIcmpEcho({ src: "10.7.0.1", dst: "10.7.0.2", ident: 9, seq }));
    }
    const got: Uint8Array[] = [];
    await until(() => {
      got.push(...b.tun.take());
      return got.length >= 20;
    });
    assert.equal(got.length, 20);
    assert.equal(got[0][9], 1, "ICMP arrives intact");
    assert.equal((got[19][26] << 8) | got[19][27], 20, "in order");
    // The reply path works too, and a packet to an address nobody owns is dropped.
    b.tun.inject(buildIcmpEcho({ src: "10.7.0.2", dst: "10.7.0.1", kind: "reply", seq: 1 }));
    b.tun.inject(buildIcmpEcho({ src: "10.7.0.2", dst: "10.7.0.99", seq: 2 }));
    const back = await until(() => {
      const t = a.tun.take();
      return t.length ? t : null;
    });
    assert.equal(back.length, 1);
    await until(() => b.device.drops.no_route >= 1);

    const show = await queryUapi(`${dir}/pctest0.sock`, "pctest0");
    assert.equal(show.publicKey, encodeKey(a.pub));
    assert.equal(show.peers[0].publicKey, encodeKey(b.pub));
    assert.equal(show.peers[0].endpoint, `127.0.0.1:${b.udp.port}`);
    assert.ok(show.peers[0].txBytes > 0 && show.peers[0].rxBytes > 0);
    assert.ok(Date.now() / 1000 - show.peers[0].lastHandshakeSec < 10);
    const stats = await queryStats(`${dir}/pctest0.sock`);
    assert.equal(stats.tunRead, 20);
    assert.equal(stats.tunWritten, 1);
  } finally {
    await uapi.close();
    await Promise.all([a.pump.stop(), b.pump.stop()]);
    await Promise.all(runs);
    for (const s of [a, b]) {
      s.device.close();
      s.udp.close();
      s.tun.close();
    }
    await Deno.remove(dir, { recursive: true });
  }
});

/** A valid-mac1 initiation for `to` from a throwaway key (a flooder can replay one forever). */
function floodInitiation(to: Uint8Array, port: number): Uint8Array {
  const dev = new WireGuardDevice({ privateKey: generatePrivateKey(), clock: systemClock });
  const peer = dev.setPeer({
    publicKey: to,
    allowedIps: [],
    endpoint: endpoint("udp", "127.0.0.1", port),
  });
  assert.ok(dev.initiateHandshake(peer));
  const [m] = dev.drainOutgoing();
  assert.equal(m.data.length, 148);
  dev.close();
  return m.data;
}

Deno.test("pump: an initiation flood turns on cookies; a real peer still gets through", async () => {
  const a = side("10.7.0.1"), b = side("10.7.0.2");
  const flooder = UdpSocket.bind({ address: "127.0.0.1", port: 0 });
  const runs = [a.pump.run(), b.pump.run()];
  const init = floodInitiation(b.pub, b.udp.port);
  const to = endpoint("udp", "127.0.0.1", b.udp.port);
  let flooding = true;
  const flood = (async () => {
    while (flooding) {
      const bufs = Array.from({ length: 40 }, () => init);
      flooder.send(bufs, new Int32Array(40).fill(148), bufs.map(() => to), 40);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    await until(() => b.pump.underLoad);
    assert.equal(b.pump.stats.underLoadEntered, 1);
    const repliesBefore = b.device.cookieRepliesSent;
    await until(() => b.device.cookieRepliesSent > repliesBefore + 40);
    // Processing stopped: the replayed initiation is no longer decrypted, while
    // forty more of them are answered with cookie replies.
    const badBefore = b.device.drops.unknown_peer;
    const answered = b.device.cookieRepliesSent;
    await until(() => b.device.cookieRepliesSent > answered + 40);
    assert.equal(b.device.drops.unknown_peer, badBefore, "flood initiations are not processed");

    const pa = a.device.setPeer({
      publicKey: b.pub,
      allowedIps: ["10.7.0.2/32"],
      endpoint: endpoint("udp", "127.0.0.1", b.udp.port),
    });
    b.device.setPeer({ publicKey: a.pub, allowedIps: ["10.7.0.1/32"] });
    const receivedBefore = a.pump.stats.received;
    a.tun.inject(buildIcmpEcho({ src: "10.7.0.1", dst: "10.7.0.2", ident: 9, seq: 1 }));
    a.pump.kick();
    // The first initiation earns a cookie reply (the only datagram a receives);
    // the retry (forced here instead of waiting 5 s) carries mac2 and is
    // processed despite the flood.
    await until(() => a.pump.stats.received > receivedBefore);
    assert.equal(a.device.stats()[0].hasSession, false, "no session without mac2 under load");
    assert.ok(a.device.initiateHandshake(pa, undefined, true));
    a.pump.kick();
    await until(() => a.device.stats()[0].hasSession);
    const got = await until(() => {
      const t = b.tun.take();
      return t.length ? t : null;
    });
    assert.equal(got.length, 1);
    assert.ok(b.pump.underLoad, "flood still on");

    flooding = false;
    await flood;
    await until(() => !b.pump.underLoad, 3000);
  } finally {
    flooding = false;
    await flood;
    await Promise.all([a.pump.stop(), b.pump.stop()]);
    await Promise.all(runs);
    flooder.close();
    for (const s of [a, b]) {
      s.device.close();
      s.udp.close();
      s.tun.close();
    }
  }
});

Deno.test("pump: throwing tap, filter or router and a failing read do not stop packets", async () => {
  const a = side("10.7.0.1"), b = side("10.7.0.2");
  const errors: string[] = [];
  // b's pump gets hooks; rebuild it so the options apply.
  let failReads = 0;
  const realRead = b.tun.read.bind(b.tun);
  b.tun.read = (bufs, sizes, offset) => {
    if (failReads > 0) {
      failReads--;
      throw new Error("Cannot read from TUN device: injected EIO");
    }
    return realRead(bufs, sizes, offset);
  };
  let stoppedWith: unknown = "not yet";
  b.pump = new Pump({
    tun: b.tun,
    device: b.device,
    udp: b.udp,
    retryPauseMs: 10,
    onError: (_e, where) => errors.push(where),
    onStopped: (e) => (stoppedWith = e),
  });
  const runs = [a.pump.run(), b.pump.run()];
  try {
    a.device.setPeer({
      publicKey: b.pub,
      allowedIps: ["10.7.0.2/32"],
      endpoint: endpoint("udp", "127.0.0.1", b.udp.port),
    });
    b.device.setPeer({ publicKey: a.pub, allowedIps: ["10.7.0.1/32"] });
    let tapCalls = 0;
    b.pump.setTap(() => {
      tapCalls++;
      throw new Error("capture buffer gone");
    });
    let routeThrows = true;
    b.pump.setRoute(() => {
      if (routeThrows) {
        routeThrows = false;
        throw new Error("policy bug");
      }
      return "tun";
    });
    const ping = (seq: number) =>
      a.tun.inject(buildIcmpEcho({ src: "10.7.0.1", dst: "10.7.0.2", ident: 9, seq }));
    ping(1); // dropped by the throwing router
    await until(() => b.pump.stats.routeErrors === 1);
    ping(2); // the tap throws on it and is removed; the packet still arrives
    ping(3);
    const got: Uint8Array[] = [];
    await until(() => {
      got.push(...b.tun.take());
      return got.length >= 2;
    });
    assert.equal(tapCalls, 1, "a throwing tap is removed after its first failure");
    assert.deepEqual(errors, ["route", "tap"]);

    b.pump.setFilter(() => {
      throw new Error("filter bug");
    });
    failReads = 2;
    b.tun.inject(buildIcmpEcho({ src: "10.7.0.2", dst: "10.7.0.1", seq: 4 }));
    await until(() => b.pump.stats.filterErrors === 1);
    assert.equal(b.pump.stats.roundErrors, 2, "two failed reads, each retried");
    b.pump.setFilter(null);
    b.tun.inject(buildIcmpEcho({ src: "10.7.0.2", dst: "10.7.0.1", seq: 5 }));
    const back = await until(() => {
      const t = a.tun.take();
      return t.length ? t : null;
    });
    assert.equal(back.length, 1, "the filter's packet was dropped, the next one passes");
    assert.deepEqual(errors, ["route", "tap", "round", "round", "filter"]);
    assert.equal(stoppedWith, "not yet");
  } finally {
    await Promise.all([a.pump.stop(), b.pump.stop()]);
    await Promise.all(runs);
    for (const s of [a, b]) {
      s.device.close();
      s.udp.close();
      s.tun.close();
    }
  }
  assert.equal(stoppedWith, null, "onStopped tells a clean stop");
});

Deno.test("pump with offloads: a super-packet crosses as segments policy sees one by one, and arrives merged", async () => {
  const offload = { tso: true, uso: true, gro: true };
  const mk = (n: number) => {
    const priv = generatePrivateKey();
    const device = new WireGuardDevice({ privateKey: priv, clock: systemClock });
    const tun = new MemoryTun({ name: `memo${n}`, mtu: 1420, offload });
    const udp = UdpSocket.bind({ address: "127.0.0.1", port: 0, gso: true, gro: true });
    return { priv, pub: publicKeyOf(priv), device, tun, udp };
  };
  const a = mk(1), b = mk(2);
  const filtered: number[] = [], routed: number[] = [];
  const pa = new Pump({
    tun: a.tun,
    device: a.device,
    udp: a.udp,
    filter: (_buf, _off, len) => (filtered.push(len), "pass"),
  });
  const pb = new Pump({
    tun: b.tun,
    device: b.device,
    udp: b.udp,
    route: (_buf, _off, len) => (routed.push(len), "tun"),
  });
  const runs = [pa.run(), pb.run()];
  try {
    // The fixture was captured between 10.77.0.1 and 10.77.0.2.
    a.device.setPeer({
      publicKey: b.pub,
      allowedIps: ["10.77.0.2/32"],
      endpoint: endpoint("udp", "127.0.0.1", b.udp.port),
    });
    b.device.setPeer({ publicKey: a.pub, allowedIps: ["10.77.0.1/32"] });
    a.tun.inject(buildIcmpEcho({ src: "10.77.0.1", dst: "10.77.0.2", seq: 1 }));
    pa.kick();
    await until(() => b.tun.takeFrames().length === 1);
    filtered.length = routed.length = 0;
    const frame = fixture("tcp4_tso");
    const segments = Math.ceil((frame.length - 10 - 52) / 1368);
    a.tun.injectFrame(frame);
    pa.kick();
    const frames: Uint8Array[] = [];
    await until(() => {
      frames.push(...b.tun.takeFrames());
      return routed.length >= segments;
    });
    await until(() => (frames.push(...b.tun.takeFrames()), frames.length > 0));
    // Policy saw every inner packet, each an MTU-sized segment.
    assert.equal(filtered.length, segments);
    assert.equal(routed.length, segments);
    assert.ok(filtered.every((l) => l <= 1420));
    // They left as GSO runs, came in as GRO runs, and were merged back into the kernel's frame.
    assert.ok(a.udp.stats.gsoSends! >= 1, JSON.stringify(a.udp.stats));
    assert.ok(b.udp.stats.groRuns! >= 1, JSON.stringify(b.udp.stats));
    assert.equal(frames.length, 1);
    assert.deepEqual(frames[0], frame);
    const report = pb.report();
    for (const k of ["tun_tso", "tun_uso", "tun_gro_tcp", "tun_gro_udp", "udp_gso", "udp_gro"]) {
      assert.equal(report[`offload_${k}`], "on", k);
    }
    assert.equal(report.tun_coalescedFrames, 1);
    assert.ok((report.udp_groDatagrams as number) >= segments);
  } finally {
    await Promise.all([pa.stop(), pb.stop()]);
    await Promise.all(runs);
    for (const s of [a, b]) {
      s.device.close();
      s.udp.close();
      s.tun.close();
    }
  }
});

Deno.test("pump report: offloads that are off say why", () => {
  const device = new WireGuardDevice({ privateKey: generatePrivateKey(), clock: systemClock });
  const tun = new MemoryTun({
    offload: { tso: true, uso: true, gro: true },
    refuse: { uso: true },
  });
  const pump = new Pump({ tun, device, udp: null });
  const r = pump.report();
  assert.equal(r.offload_tun_tso, "on");
  assert.equal(r.offload_tun_uso, "off: refused by the fake kernel");
  assert.equal(r.offload_udp_gso, "off: no UDP socket");
  assert.equal(typeof r.tunRead, "number");
  device.close();
  tun.close();
});

Deno.test("pump: poke ends a parked wait on the next turn, not when the poll wakes", async () => {
  const priv = generatePrivateKey();
  const device = new WireGuardDevice({ privateKey: priv, clock: systemClock });
  const tun = new MemoryTun({ name: "mempoke", mtu: 1420 });
  const poller = new Poller();
  // No linger and no peers: the pump parks for up to a second at a time.
  const pump = new Pump({ tun, device, poller, lingerMs: 0 });
  const run = pump.run();
  try {
    for (let i = 1; i <= 3; i++) {
      await until(() => poller.waiting);
      let polled = false;
      poller.wait(-1).then(() => (polled = true)); // the parked poll itself (shared)
      const rounds = pump.stats.rounds;
      pump.poke();
      pump.poke(); // the wait is already ended: not counted twice
      assert.equal(pump.stats.pokes, i);
      await until(() => pump.stats.rounds > rounds);
      assert.ok(!polled, "the round ran before the parked poll ended: the poke ran it");
    }
  } finally {
    pump.stop();
    await run;
    poller.close();
  }
});

Deno.test("RoundClock: held for a pump round, running outside it", async () => {
  const manual = new ManualClock();
  const round = new RoundClock(manual);
  assert.equal(round.monotonic(), manual.monotonic());
  assert.equal(round.hold(), manual.monotonic());
  manual.advance(5);
  assert.equal(round.monotonic(), manual.monotonic() - 5, "held: the round's time");
  assert.equal(round.now(), manual.now(), "wall time is never held");
  round.release();
  assert.equal(round.monotonic(), manual.monotonic());
  // The pump holds it while a round runs, and lets go between rounds.
  const priv = generatePrivateKey();
  const device = new WireGuardDevice({ privateKey: priv, clock: round });
  const tun = new MemoryTun({ name: "memclock", mtu: 1420 });
  const poller = new Poller();
  let heldInRound = 0;
  const pump = new Pump({
    tun,
    device,
    poller,
    clock: round,
    lingerMs: 0,
    tap: () => {
      // A tap runs inside a round: the clock is held there.
      const t = round.monotonic();
      manual.advance(1);
      if (round.monotonic() === t) heldInRound++;
    },
  });
  const run = pump.run();
  try {
    tun.inject(buildIcmpEcho({ src: "10.9.0.1", dst: "10.9.0.2", ident: 1, seq: 1 }));
    await until(() => heldInRound > 0);
    await until(() => poller.waiting);
    const t = round.monotonic();
    manual.advance(1);
    assert.equal(round.monotonic(), t + 1, "between rounds the clock runs");
  } finally {
    pump.stop();
    await run;
    poller.close();
  }
});
