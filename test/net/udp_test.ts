import assert from "node:assert/strict";
import { UdpSocket } from "../../src/net/udp.ts";
import { Poller, POLLIN } from "../../src/net/poller.ts";
import { type Endpoint, endpoint } from "../../src/net/endpoint.ts";
import { InputError, SyscallError } from "../../src/errors.ts";
import { canUseNetns, NetnsLab, sh } from "../e2e/netns.ts";

const isLinux = Deno.build.os === "linux";

function slots(n: number, size: number): Uint8Array[] {
  const slab = new ArrayBuffer(n * size);
  return Array.from({ length: n }, (_, i) => new Uint8Array(slab, i * size, size));
}

/** Receives until `want` datagrams arrived or 2 s passed. */
async function recvAll(
  sock: UdpSocket,
  want: number,
  offset = 0,
): Promise<{ data: Uint8Array[]; from: Endpoint[] }> {
  const poller = new Poller();
  poller.add(sock.fd, POLLIN);
  const bufs = slots(16, 2048);
  const sizes = new Int32Array(16);
  const from: Endpoint[] = new Array(16);
  const data: Uint8Array[] = [];
  const senders: Endpoint[] = [];
  const deadline = performance.now() + 2000;
  try {
    while (data.length < want && performance.now() < deadline) {
      const n = sock.recv(bufs, sizes, from, offset);
      for (let i = 0; i < n; i++) {
        data.push(bufs[i].slice(offset, offset + sizes[i]));
        senders.push(from[i]);
      }
      if (n === 0) await poller.wait(200);
    }
  } finally {
    poller.close();
  }
  return { data, from: senders };
}

function burst(n: number, offset: number, to: Endpoint): {
  bufs: Uint8Array[];
  sizes: Int32Array;
  to: Endpoint[];
} {
  const bufs = slots(n, 1600);
  const sizes = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    sizes[i] = 20 + i * 7;
    bufs[i].fill(i & 0xff, offset, offset + sizes[i]);
    bufs[i][offset] = 0xa0 ^ i;
  }
  return { bufs, sizes, to: new Array(n).fill(to) };
}

for (
  const [label, addr] of [["IPv4", "127.0.0.1"], ["IPv6", "::1"]] as const
) {
  Deno.test(
    { name: `udp ${label}: a batch round-trips with interned senders`, ignore: !isLinux },
    async () => {
      const a = UdpSocket.bind({ address: addr, port: 0, batch: 16 });
      const b = UdpSocket.bind({ address: addr, port: 0 });
      try {
        assert.ok(a.port > 0 && b.port > 0 && a.port !== b.port);
        assert.equal(a.family, label === "IPv4" ? 4 : 6);
        const OFF = 16;
        const out = burst(40, OFF, endpoint("udp", addr, b.port));
        assert.equal(
          a.send(out.bufs, out.sizes, out.to, 40, OFF),
          40,
          "40 > batch: sent in chunks",
        );
        const got = await recvAll(b, 40, 8);
        assert.equal(got.data.length, 40);
        for (let i = 0; i < 40; i++) {
          assert.equal(got.data[i].length, out.sizes[i]);
          assert.equal(got.data[i][0], 0xa0 ^ i);
          assert.equal(got.data[i][got.data[i].length - 1], i);
          assert.equal(got.from[i], endpoint("udp", addr, a.port), "the interned object itself");
        }
        // Answer the sender at the endpoint we learnt.
        const back = burst(3, 0, got.from[0]);
        assert.equal(b.send(back.bufs, back.sizes, back.to, 3), 3);
        const reply = await recvAll(a, 3);
        assert.equal(reply.data.length, 3);
        assert.equal(reply.from[2], endpoint("udp", addr, b.port));
        assert.equal(a.stats.sentPackets, 40);
        assert.equal(b.stats.recvPackets, 40);
      } finally {
        a.close();
        b.close();
      }
    },
  );
}

Deno.test(
  { name: "udp dual-stack: v4 peers appear as plain IPv4 endpoints", ignore: !isLinux },
  async () => {
    const dual = UdpSocket.bind({ address: "::", port: 0 });
    const v4 = UdpSocket.bind({ address: "127.0.0.1" });
    try {
      const out = burst(2, 0, endpoint("udp", "127.0.0.1", dual.port));
      assert.equal(v4.send(out.bufs, out.sizes, out.to, 2), 2);
      const got = await recvAll(dual, 2);
      assert.equal(got.from[0], endpoint("udp", "127.0.0.1", v4.port));
      assert.equal(got.from[0].family, 4);
      // Reply through the dual-stack socket to the v4 endpoint (sent as ::ffff:127.0.0.1).
      const back = burst(1, 0, got.from[0]);
      assert.equal(dual.send(back.bufs, back.sizes, back.to, 1), 1);
      const reply = await recvAll(v4, 1);
      assert.equal(reply.data.length, 1);
    } finally {
      dual.close();
      v4.close();
    }
  },
);

Deno.test({
  name: "udp: unreachable destinations are dropped and counted, the rest go out",
  ignore: !isLinux,
}, async () => {
  const a = UdpSocket.bind({ address: "127.0.0.1" });
  const b = UdpSocket.bind({ address: "127.0.0.1" });
  try {
    const good = endpoint("udp", "127.0.0.1", b.port);
    const out = burst(4, 0, good);
    out.to[1] = endpoint("udp", "::1", b.port); // v6 on a v4 socket
    out.to[2] = endpoint("tls", "127.0.0.1", b.port, 7); // not a UDP endpoint
    assert.equal(a.send(out.bufs, out.sizes, out.to, 4), 4);
    assert.equal(a.stats.sendDropped, 2);
    const got = await recvAll(b, 2);
    assert.deepEqual(got.data.map((d) => d[0]), [0xa0, 0xa3]);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test({
  name: "udp: a full send buffer reports EAGAIN as a short count",
  ignore: !canUseNetns,
}, async () => {
  // Loopback frees send-buffer memory at once, so the burst goes through a
  // veth whose qdisc holds packets back (tbf), inside a namespace of its own.
  await using lab = new NetnsLab("udp");
  const ns = await lab.ns("a");
  await sh(["ip", "-n", ns, "link", "add", "slow0", "type", "veth", "peer", "name", "slow1"]);
  await sh(["ip", "-n", ns, "addr", "add", "10.77.0.1/24", "dev", "slow0"]);
  await sh(["ip", "-n", ns, "link", "set", "slow0", "up"]);
  await sh(["ip", "-n", ns, "link", "set", "slow1", "up"]);
  await sh([
    "ip",
    "-n",
    ns,
    "neigh",
    "add",
    "10.77.0.2",
    "lladdr",
    "02:00:00:00:00:02",
    "dev",
    "slow0",
    "nud",
    "permanent",
  ]);
  await sh([
    "tc",
    "-n",
    ns,
    "qdisc",
    "add",
    "dev",
    "slow0",
    "root",
    "tbf",
    "rate",
    "1mbit",
    "burst",
    "32kbit",
    "latency",
    "5s",
  ]);
  const udp = new URL("../../src/net/udp.ts", import.meta.url).href;
  const ep = new URL("../../src/net/endpoint.ts", import.meta.url).href;
  const script = `
    import { UdpSocket } from "${udp}";
    import { endpoint } from "${ep}";
    const s = UdpSocket.bind({ address: "10.77.0.1", sndbuf: 16384, batch: 64 });
    const bufs = Array.from({ length: 64 }, () => new Uint8Array(1500));
    const sizes = new Int32Array(64).fill(1400);
    const to = new Array(64).fill(endpoint("udp", "10.77.0.2", 9));
    const counts = [];
    for (let i = 0; i < 5; i++) counts.push(s.send(bufs, sizes, to, 64));
    console.log(JSON.stringify({ counts, stats: s.stats }));
    s.close();
  `;
  const r = await lab.exec(ns, [Deno.execPath(), "eval", "--no-check", script]);
  const { counts, stats } = JSON.parse(r.stdout);
  assert.ok(counts[0] > 0, "the first datagrams fit");
  assert.ok(counts.some((n: number) => n < 64), `a burst must hit EAGAIN: ${counts}`);
  assert.equal(stats.sendDropped, 0, "EAGAIN is not a drop; the caller decides");
  assert.equal(stats.sentPackets, counts.reduce((a: number, b: number) => a + b, 0));
});

Deno.test({ name: "udp: empty receive, close and errors", ignore: !isLinux }, () => {
  const a = UdpSocket.bind({ address: "127.0.0.1" });
  const bufs = slots(4, 64);
  assert.equal(a.recv(bufs, new Int32Array(4), []), 0);
  assert.ok(a.bufferSizes().rcvbuf >= 8192);
  assert.throws(
    () => UdpSocket.bind({ address: "127.0.0.1", port: a.port }),
    (e) =>
      e instanceof SyscallError && e.call === "bind" &&
      e.message ===
        `Cannot bind UDP socket on 127.0.0.1:${a.port}: address already in use (EADDRINUSE)`,
  );
  a.close();
  a.close();
  assert.equal(a.fd, -1);
  assert.throws(
    () => a.recv(bufs, new Int32Array(4), []),
    /Cannot receive on UDP socket on port \d+: the socket is closed/,
  );
  assert.throws(() => a.send(bufs, new Int32Array(4), [], 1), /closed/);
  assert.throws(() => UdpSocket.bind({ address: "localhost" }), InputError);
  assert.throws(
    () => UdpSocket.bind({ port: 70000 }),
    /Cannot bind UDP socket on \[::\]:70000: port must be 0-65535/,
  );
});

Deno.test(
  { name: "udp: fwmark and device binding as root", ignore: !isLinux || Deno.uid() !== 0 },
  () => {
    const a = UdpSocket.bind({ address: "127.0.0.1", fwmark: 0x5043, device: "lo" });
    a.close();
    assert.throws(
      () => UdpSocket.bind({ address: "127.0.0.1", device: "nosuchdev0" }),
      /Cannot bind UDP socket on 127.0.0.1:0 to device "nosuchdev0": no such device \(ENODEV\)/,
    );
  },
);

Deno.test({
  name: "udp offloads: GSO sends runs, GRO cuts them back into slots, in order, across calls",
  ignore: !isLinux,
}, async () => {
  const a = UdpSocket.bind({ address: "127.0.0.1", gso: true });
  const b = UdpSocket.bind({ address: "127.0.0.1", gro: true });
  const c = UdpSocket.bind({ address: "127.0.0.1" });
  try {
    assert.deepEqual(a.offloads, {
      gso: { on: true, why: "" },
      gro: { on: false, why: "not requested" },
    });
    assert.deepEqual(b.offloads.gro, { on: true, why: "" });
    const toB = endpoint("udp", "127.0.0.1", b.port), toC = endpoint("udp", "127.0.0.1", c.port);
    // Runs of equal sizes (a shorter one ends a run), a second destination in between,
    // and a refused datagram (v6 on a v4 socket) that must not break the order.
    const sizes = [
      ...new Array(20).fill(1452),
      700,
      ...new Array(10).fill(1452),
      300,
      1452,
      ...new Array(40).fill(1000),
    ];
    const n = sizes.length;
    const out = burst(n, 16, toB);
    sizes.forEach((s, i) => {
      out.sizes[i] = s;
      out.bufs[i].fill(i & 0xff, 16, 16 + s);
      out.bufs[i][16] = 0xa0 ^ (i & 0xff);
    });
    out.to[25] = toC;
    out.to[40] = endpoint("udp", "::1", b.port);
    assert.equal(a.send(out.bufs, out.sizes, out.to, n, 16), n);
    const s = a.stats;
    assert.equal(s.sendDropped, 1);
    assert.equal(s.sentPackets, n - 1);
    assert.ok(s.gsoSends! >= 4 && s.gsoDatagrams! >= n - 10, JSON.stringify(s));
    const got = await recvAll(b, n - 2, 16); // 16 slots a call: runs span calls
    const want = sizes.map((_, i) => i).filter((i) => i !== 25 && i !== 40);
    assert.equal(got.data.length, want.length);
    got.data.forEach((d, k) => {
      const i = want[k];
      assert.equal(d.length, sizes[i], `datagram ${i}`);
      assert.equal(d[0], 0xa0 ^ (i & 0xff), `datagram ${i} in order`);
      assert.equal(d[d.length - 1], i & 0xff);
      assert.equal(got.from[k], endpoint("udp", "127.0.0.1", a.port));
    });
    assert.ok(b.stats.groRuns! >= 3, JSON.stringify(b.stats));
    assert.equal((await recvAll(c, 1)).data.length, 1);
  } finally {
    a.close();
    b.close();
    c.close();
  }
});

Deno.test({
  name: "udp offloads: with GRO, datagrams too large for a slot are dropped, the rest kept",
  ignore: !isLinux,
}, async () => {
  const a = UdpSocket.bind({ address: "127.0.0.1" });
  const b = UdpSocket.bind({ address: "127.0.0.1", gro: true });
  try {
    const out = burst(3, 0, endpoint("udp", "127.0.0.1", b.port));
    out.sizes.set([100, 1500, 120]);
    assert.equal(a.send(out.bufs, out.sizes, out.to, 3), 3);
    const poller = new Poller();
    poller.add(b.fd, POLLIN);
    const bufs = slots(4, 512);
    const sizes = new Int32Array(4);
    const from: Endpoint[] = [];
    const seen: number[] = [];
    for (let i = 0; i < 20 && seen.length < 2; i++) {
      const n = b.recv(bufs, sizes, from, 0);
      for (let k = 0; k < n; k++) seen.push(sizes[k]);
      if (n === 0) await poller.wait(100);
    }
    poller.close();
    assert.deepEqual(seen, [100, 120]);
    assert.equal(b.stats.oversized, 1);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test({
  name:
    "udp offloads: runs larger than the path MTU are refused, resent one by one, then GSO goes off",
  ignore: !canUseNetns,
}, async () => {
  await using lab = new NetnsLab("ugso");
  const a = await lab.ns("a"), b = await lab.ns("b");
  await lab.link(a, "10.78.0.1/24", b, "10.78.0.2/24");
  // 1400-byte datagrams over a 1280-byte MTU: the kernel refuses each GSO run (EINVAL)
  // and fragments the same datagrams sent one by one. (Kernels before 6.x also refused
  // GSO with EIO through a device that cannot checksum; this one checksums in software.)
  await lab.exec(a, ["ip", "link", "set", "veth0", "mtu", "1280"]);
  const udp = new URL("../../src/net/udp.ts", import.meta.url).href;
  const ep = new URL("../../src/net/endpoint.ts", import.meta.url).href;
  const poller = new URL("../../src/net/poller.ts", import.meta.url).href;
  const receiver = lab.spawn(b, [
    Deno.execPath(),
    "eval",
    "--no-check",
    `
    import { UdpSocket } from "${udp}";
    import { Poller, POLLIN } from "${poller}";
    const s = UdpSocket.bind({ address: "10.78.0.2", port: 9999, gro: true });
    console.log("ready");
    const p = new Poller(); p.add(s.fd, POLLIN);
    const bufs = Array.from({ length: 64 }, () => new Uint8Array(2048));
    const sizes = new Int32Array(64); const from = [];
    const got = [];
    const end = Date.now() + 5000;
    while (got.length < 300 && Date.now() < end) {
      const n = s.recv(bufs, sizes, from);
      for (let i = 0; i < n; i++) got.push([sizes[i], bufs[i][0]]);
      if (!n) await p.wait(100);
    }
    console.log(JSON.stringify(got));
    p.close(); s.close();
  `,
  ], { output: "piped" });
  const reader = receiver.stdout.getReader();
  let text = "";
  while (!text.includes("ready")) text += new TextDecoder().decode((await reader.read()).value);
  const r = await lab.exec(a, [
    Deno.execPath(),
    "eval",
    "--no-check",
    `
    import { UdpSocket } from "${udp}";
    import { endpoint } from "${ep}";
    const s = UdpSocket.bind({ address: "10.78.0.1", gso: true, sndbuf: 8 << 20 });
    const states = [];
    const bufs = Array.from({ length: 30 }, () => new Uint8Array(1500));
    const sizes = new Int32Array(30).fill(1400); sizes[29] = 500;
    const to = new Array(30).fill(endpoint("udp", "10.78.0.2", 9999));
    let sent = 0;
    for (let round = 0; round < 10; round++) {
      bufs.forEach((b, i) => b.fill((round * 30 + i) & 0xff));
      sent += s.send(bufs, sizes, to, 30);
      states.push(s.offloads.gso.on);
      await new Promise((r) => setTimeout(r, 20));
    }
    console.log(JSON.stringify({ states, sent, offloads: s.offloads, stats: s.stats }));
    s.close();
  `,
  ]);
  const res = JSON.parse(r.stdout);
  assert.equal(res.sent, 300);
  assert.deepEqual(res.states, [true, true, true, true, true, true, true, false, false, false]);
  assert.equal(res.offloads.gso.on, false);
  assert.match(
    res.offloads.gso.why,
    /^kernel refused 8 GSO sends in a row: .+ \((EINVAL|EMSGSIZE)\) \(datagrams larger than the path MTU\)$/,
  );
  assert.equal(res.stats.gsoRefused, 8);
  assert.equal(res.stats.gsoSends, 0);
  assert.equal(res.stats.sentPackets, 300);
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  const got = JSON.parse(text.trim().split("\n").pop()!);
  assert.equal(got.length, 300, "every datagram arrived (as IP fragments, reassembled)");
  got.forEach(([size, tag]: number[], i: number) => {
    assert.equal(size, i % 30 === 29 ? 500 : 1400);
    assert.equal(tag, i & 0xff, "in order");
  });
});
