import assert from "node:assert/strict";
import { type TlsConnEvent, TlsStream } from "../../src/net/tls_stream.ts";
import type { Endpoint } from "../../src/net/endpoint.ts";

interface Pki {
  ca: string;
  otherCa: string;
  cert: string;
  key: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (out.code !== 0) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

let pkiPromise: Promise<Pki> | undefined;
/** A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA. */
function pki(): Promise<Pki> {
  return pkiPromise ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "pc-tls-" });
    try {
      const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
      for (const name of ["ca", "other"]) {
        await openssl([
          "req",
          "-x509",
          ...ec,
          "-keyout",
          `${name}.key`,
          "-out",
          `${name}.pem`,
          "-days",
          "1",
          "-subj",
          `/CN=${name}`,
        ], dir);
      }
      await openssl([
        "req",
        ...ec,
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
      ], dir);
      await Deno.writeTextFile(
        `${dir}/ext.cnf`,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
      );
      await openssl([
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
      ], dir);
      const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
      return {
        ca: await read("ca.pem"),
        otherCa: await read("other.pem"),
        cert: await read("leaf.pem"),
        key: await read("leaf.key"),
      };
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
}

function slots(n: number, size = 4096): Uint8Array[] {
  return Array.from({ length: n }, () => new Uint8Array(size));
}

/** Drains `stream` until `want` frames arrived (or 3 s passed). */
async function collect(
  stream: TlsStream,
  want: number,
): Promise<{ data: Uint8Array[]; from: Endpoint[] }> {
  const bufs = slots(8);
  const sizes = new Int32Array(8);
  const from: Endpoint[] = [];
  const out = { data: [] as Uint8Array[], from: [] as Endpoint[] };
  const deadline = performance.now() + 3000;
  while (out.data.length < want && performance.now() < deadline) {
    const n = stream.drain(bufs, sizes, from, 8, 4);
    for (let i = 0; i < n; i++) {
      out.data.push(bufs[i].slice(4, 4 + sizes[i]));
      out.from.push(from[i]);
    }
    if (n === 0) await new Promise((r) => setTimeout(r, 5));
  }
  return out;
}

function frame(len: number, tag: number): Uint8Array {
  const f = new Uint8Array(len + 2);
  f[0] = len >> 8;
  f[1] = len & 0xff;
  f.fill(tag, 2);
  return f;
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function server(opts: ConstructorParameters<typeof TlsStream>[0] = {}): Promise<TlsStream> {
  const { cert, key } = await pki();
  const s = new TlsStream(opts);
  s.listen({ hostname: "127.0.0.1", port: 0, cert, key });
  return s;
}

Deno.test("tls stream: frames round-trip between a dialled and an accepted connection", async () => {
  let wakes = 0;
  const srv = await server({ wake: () => wakes++ });
  const cli = new TlsStream();
  const events: TlsConnEvent[] = [];
  cli.onEvent((e) => events.push(e));
  try {
    const ep = await cli.dial({
      hostname: "127.0.0.1",
      port: srv.port,
      caCerts: [(await pki()).ca],
    });
    assert.equal(ep.transport, "tls");
    assert.equal(ep.address, "127.0.0.1");
    assert.equal(ep.port, srv.port);
    assert.ok(ep.connId > 0);
    assert.equal(cli.connection(ep)?.state, "open");
    const sizes = [1, 32, 148, 1420, 2112];
    for (const [i, n] of sizes.entries()) {
      assert.equal(cli.send(ep, new Uint8Array(n).fill(i + 1)), true);
    }
    const got = await collect(srv, sizes.length);
    assert.deepEqual(got.data.map((d) => d.length), sizes);
    assert.deepEqual(got.data.map((d) => d[d.length - 1]), [1, 2, 3, 4, 5]);
    assert.ok(wakes >= 1, "the poller was woken");
    const peer = got.from[0];
    assert.equal(peer.transport, "tls");
    assert.notEqual(peer.connId, ep.connId);
    assert.ok(got.from.every((f) => f === peer), "one interned endpoint per connection");
    assert.equal(srv.connections().length, 1);
    // Reply on the accepted connection.
    assert.equal(srv.send(peer, new Uint8Array([9, 9, 9])), true);
    const back = await collect(cli, 1);
    assert.deepEqual([...back.data[0]], [9, 9, 9]);
    assert.equal(back.from[0], ep);
    // Too big, empty and unknown endpoints are refused.
    assert.equal(cli.send(ep, new Uint8Array(0)), false);
    assert.equal(cli.send(ep, new Uint8Array(70000)), false);
    assert.equal(srv.send(ep, new Uint8Array(1)), false, "ep belongs to the client stream");
  } finally {
    await cli.close();
    await srv.close();
  }
  assert.deepEqual(events.map((e) => e.type), ["open", "close"]);
  assert.equal(events[1].conn.reason, "stream closed");
});

Deno.test("tls stream: frames split across reads and packed into one read", async () => {
  const srv = await server();
  const raw = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: srv.port,
    caCerts: [(await pki()).ca],
    alpnProtocols: ["portcullis-wg"],
  });
  try {
    await raw.handshake();
    const f = frame(300, 7);
    for (let i = 0; i < f.length; i += 37) {
      await raw.write(f.subarray(i, Math.min(i + 37, f.length)));
      await new Promise((r) => setTimeout(r, 1)); // separate TLS records, separate reads
    }
    await raw.write(frame(1, 1).subarray(0, 1)); // header split in the middle
    await new Promise((r) => setTimeout(r, 5));
    const many = new Uint8Array(1 + 1 + 10 * 102);
    many.set(frame(1, 1).subarray(1)); // rest of the header
    many[1] = 1; // body of the 1-byte frame
    for (let i = 0; i < 10; i++) many.set(frame(100, 10 + i), 2 + i * 102);
    await raw.write(many);
    const got = await collect(srv, 12);
    assert.deepEqual(got.data.map((d) => d.length), [300, 1, ...new Array(10).fill(100)]);
    assert.deepEqual(got.data.map((d) => d[0]), [7, 1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    assert.equal(srv.stats.badFrames, 0);
  } finally {
    raw.close();
    await srv.close();
  }
});

for (const [label, bytes] of [["an empty", [0, 0]], ["an oversized", [0x08, 0x41]]] as const) {
  Deno.test(`tls stream: ${label} frame closes only that connection`, async () => {
    const srv = await server({ maxFrame: 2112 });
    const good = new TlsStream();
    const raw = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: srv.port,
      caCerts: [(await pki()).ca],
      alpnProtocols: ["portcullis-wg"],
    });
    try {
      const ep = await good.dial({
        hostname: "127.0.0.1",
        port: srv.port,
        caCerts: [(await pki()).ca],
      });
      await raw.handshake();
      await raw.write(frame(5, 5));
      await raw.write(new Uint8Array(bytes));
      await until(() => srv.stats.badFrames === 1, "the bad frame");
      await until(() => srv.connections().length === 1, "the bad connection to close");
      assert.equal(await raw.read(new Uint8Array(16)), null, "the server hung up");
      good.send(ep, new Uint8Array([42]));
      const got = await collect(srv, 2);
      assert.deepEqual(
        got.data.map((d) => d[0]),
        [5, 42],
        "frames before the bad one and other connections survive",
      );
    } finally {
      raw.close();
      await good.close();
      await srv.close();
    }
  });
}

Deno.test("tls stream: garbage from a raw TCP client does not hurt the server", async () => {
  const srv = await server({ handshakeTimeoutMs: 2000 });
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port: srv.port });
  const cli = new TlsStream();
  try {
    await tcp.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n" + "\x00\xff".repeat(500)));
    await until(
      () => srv.connections().length === 0 && srv.stats.accepted === 1,
      "the garbage connection to go",
    );
    const ep = await cli.dial({
      hostname: "127.0.0.1",
      port: srv.port,
      caCerts: [(await pki()).ca],
    });
    cli.send(ep, new Uint8Array([1, 2]));
    assert.equal((await collect(srv, 1)).data.length, 1);
  } finally {
    tcp.close();
    await cli.close();
    await srv.close();
  }
});

Deno.test("tls stream: a wrong CA is refused with a sentence naming the edge", async () => {
  const srv = await server();
  const cli = new TlsStream();
  try {
    await assert.rejects(
      async () =>
        cli.dial({ hostname: "127.0.0.1", port: srv.port, caCerts: [(await pki()).otherCa] }),
      new RegExp(`^Error: Cannot connect over TLS to 127\\.0\\.0\\.1:${srv.port}: `),
    );
    assert.equal(cli.connections().length, 0);
  } finally {
    await cli.close();
    await srv.close();
  }
});

Deno.test("tls stream: many connections, each with its own endpoint", async () => {
  const srv = await server();
  const clients = Array.from({ length: 12 }, () => new TlsStream());
  try {
    const eps = await Promise.all(
      clients.map(async (c) =>
        c.dial({ hostname: "127.0.0.1", port: srv.port, caCerts: [(await pki()).ca] })
      ),
    );
    clients.forEach((c, i) => {
      for (let k = 0; k < 3; k++) c.send(eps[i], new Uint8Array([i, k]));
    });
    const got = await collect(srv, 36);
    assert.equal(got.data.length, 36);
    const byConn = new Map<Endpoint, Set<number>>();
    got.data.forEach((d, i) =>
      byConn.set(got.from[i], (byConn.get(got.from[i]) ?? new Set()).add(d[0]))
    );
    assert.equal(byConn.size, 12, "12 distinct endpoints");
    for (const set of byConn.values()) assert.equal(set.size, 1, "one client per endpoint");
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  }
});

Deno.test("tls stream: a peer that stops reading fills only its own bounded queue", async () => {
  const srv = await server({ maxQueuedFrames: 8 });
  const stuck = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: srv.port,
    caCerts: [(await pki()).ca],
    alpnProtocols: ["portcullis-wg"],
  });
  const ok = new TlsStream();
  try {
    await stuck.handshake();
    await stuck.write(frame(1, 1));
    const okEp = await ok.dial({
      hostname: "127.0.0.1",
      port: srv.port,
      caCerts: [(await pki()).ca],
    });
    ok.send(okEp, new Uint8Array([2]));
    const first = await collect(srv, 2);
    const stuckEp = first.from[first.data.findIndex((d) => d[0] === 1)];
    const okPeer = first.from[first.data.findIndex((d) => d[0] === 2)];
    // ~8 MB towards a peer that never reads: TCP backs up, the queue bound drops the rest.
    const big = new Uint8Array(2000);
    let refused = 0;
    for (let round = 0; round < 400; round++) {
      for (let i = 0; i < 10; i++) if (!srv.send(stuckEp, big)) refused++;
      await new Promise((r) => setTimeout(r, 0));
    }
    assert.ok(refused > 0, "the stuck connection's queue filled up");
    assert.ok(srv.stats.outboundDropped >= refused);
    // The other connection still flows both ways.
    assert.equal(srv.send(okPeer, new Uint8Array([3])), true);
    assert.deepEqual([...(await collect(ok, 1)).data[0]], [3]);
  } finally {
    stuck.close();
    await ok.close();
    await srv.close();
  }
});

Deno.test("tls stream: a dial that completes after close() is closed, not adopted", async () => {
  const srv = await server();
  const cli = new TlsStream();
  try {
    const dialling = cli.dial({
      hostname: "127.0.0.1",
      port: srv.port,
      caCerts: [(await pki()).ca],
    });
    await cli.close();
    await assert.rejects(
      dialling,
      /Cannot connect over TLS to 127\.0\.0\.1:\d+: the stream was closed while dialling/,
    );
    assert.equal(cli.connections().length, 0);
    await until(() => srv.connections().length === 0, "the server to see the connection close");
  } finally {
    await cli.close();
    await srv.close();
  }
});

Deno.test("tls stream: an accepted connection that sends no frame is closed after the idle timeout", async () => {
  const srv = await server({ firstFrameTimeoutMs: 150 });
  const idle = new TlsStream(), busy = new TlsStream();
  const events: TlsConnEvent[] = [];
  idle.onEvent((e) => events.push(e));
  try {
    const ca = (await pki()).ca;
    await idle.dial({ hostname: "127.0.0.1", port: srv.port, caCerts: [ca] });
    const ep = await busy.dial({ hostname: "127.0.0.1", port: srv.port, caCerts: [ca] });
    busy.send(ep, new Uint8Array([1, 2, 3]));
    assert.equal((await collect(srv, 1)).data.length, 1);
    await until(() => srv.stats.idleClosed === 1, "the idle connection to be closed");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(srv.connections().length, 1, "the connection that sent a frame stays");
    assert.equal(busy.connection(ep)?.state, "open");
    await until(() => events.some((e) => e.type === "close"), "the client to see the close");
  } finally {
    await idle.close();
    await busy.close();
    await srv.close();
  }
});

Deno.test("tls stream: accepted connections per source IP are capped", async () => {
  const srv = await server({ maxConnectionsPerIp: 2 });
  const clients = Array.from({ length: 3 }, () => new TlsStream());
  try {
    const ca = (await pki()).ca;
    for (const c of clients.slice(0, 2)) {
      await c.dial({ hostname: "127.0.0.1", port: srv.port, caCerts: [ca] });
    }
    await until(() => srv.connections().length === 2, "two accepted connections");
    await clients[2].dial({ hostname: "127.0.0.1", port: srv.port, caCerts: [ca] }).catch(() => {});
    await until(() => srv.stats.refused === 1, "the third to be refused");
    assert.equal(srv.connections().length, 2);
    // A slot frees when one goes.
    await clients[0].close();
    await until(() => srv.connections().length === 1, "the first to go");
    const again = new TlsStream();
    clients.push(again);
    await again.dial({ hostname: "127.0.0.1", port: srv.port, caCerts: [ca] });
    await until(() => srv.connections().length === 2, "a new connection accepted");
    assert.equal(srv.stats.refused, 1);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await srv.close();
  }
});
