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
