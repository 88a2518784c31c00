/**
 * SSL inspection on loopback sockets: the real engine and inspector (leaf
 * from an in-memory inspection CA, TLS listener per name), a real HTTPS
 * origin with a CA of its own, and a raw TLS client speaking HTTP/1.0 and
 * HTTP/1.1 byte by byte through CONNECT, so what the proxy announces about
 * the connection is checked against what it does: a response that says
 * keep-alive must leave the connection usable for the next request, one
 * that does not must end where its body ends. Bodies of every size arrive
 * whole, and the web log has their bytes. A client whose ALPN offer the
 * listeners cannot meet is refused with TLS's own alert, and logged.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { ProxyEngine, type WebLogEntry } from "../../src/proxy/engine.ts";
import { InspectionCa } from "../../src/proxy/inspection_ca.ts";
import { Inspector, SMALL_BODY } from "../../src/proxy/inspector.ts";
import { OriginClient } from "../../src/proxy/origin_client.ts";
import { startProxyServer } from "../../src/proxy/server.ts";
import { UrlPolicy } from "../../src/proxy/url_policy.ts";
import { listenerNoDelay } from "../../src/net/tcp_nodelay.ts";
import { waitUntil } from "../e2e/netns.ts";
import { OriginReach } from "../../src/proxy/origin_reach.ts";

/** Origins in these tests listen on loopback, which the proxy refuses by default. */
const LOOPBACK = new OriginReach({ allow: ["127.0.0.0/8", "::1/128"] });

const SUBJECT = {
  deviceId: "dev-1",
  deviceName: "workstation",
  user: "alice",
  groups: [],
  machine: false,
};

/** A byte reader over a connection: heads by CRLFCRLF, bodies by length or to the end. */
class Wire {
  #buf = new Uint8Array(0);
  constructor(readonly conn: Deno.Conn) {}
  async #more(): Promise<boolean> {
    const chunk = new Uint8Array(65536);
    const n = await this.conn.read(chunk).catch(() => null);
    if (n === null) return false;
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }
  /** The response head (status, lower-case headers), or null at end of stream. */
  async head(): Promise<{ status: number; version: string; h: Map<string, string> } | null> {
    for (;;) {
      const text = new TextDecoder("latin1").decode(this.#buf);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        this.#buf = this.#buf.slice(end + 4);
        const [line, ...rest] = text.slice(0, end).split("\r\n");
        const [version, status] = line.split(" ");
        const h = new Map<string, string>();
        for (const l of rest) {
          const c = l.indexOf(":");
          h.set(l.slice(0, c).toLowerCase(), l.slice(c + 1).trim());
        }
        return { status: Number(status), version, h };
      }
      if (!(await this.#more())) return null;
    }
  }
  /** `n` body bytes (fewer if the stream ends first). */
  async take(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n && await this.#more());
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(out.length);
    return out;
  }
  /** Everything up to the end of the stream. */
  async rest(): Promise<Uint8Array> {
    while (await this.#more());
    const out = this.#buf;
    this.#buf = new Uint8Array(0);
    return out;
  }
}

/**
 * The real engine and inspector on loopback in front of an HTTPS origin
 * (a CA of its own) answering with `handler`; `close` stops all of it.
 */
async function inspectingProxy(handler: (req: Request) => Response | Promise<Response>) {
  const originCa = await InspectionCa.ephemeral("Test Origin CA");
  const originLeaf = await originCa.issue("localhost");
  const ac = new AbortController();
  const origin = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: originLeaf.cert,
    key: originLeaf.key,
    signal: ac.signal,
    onListen() {},
  }, handler);
  const ca = await InspectionCa.ephemeral();
  const client = new OriginClient({ reach: LOOPBACK, caCerts: [originCa.certPem] });
  const logs: WebLogEntry[] = [];
  const inspector = new Inspector({
    ca,
    serve: (o, h) => Deno.serve(o, h),
    inspects: () => true,
    origin: client,
  });
  const engine = new ProxyEngine({
    identify: () => SUBJECT,
    policy: () => new UrlPolicy([], new Map()),
    log: (e) => logs.push(e),
    clock: new ManualClock(Date.UTC(2026, 0, 1)),
    tls: inspector.intercept,
    reach: LOOPBACK,
    webPorts: [origin.addr.port],
  });
  inspector.attach(engine);
  const server = startProxyServer({ hostname: "127.0.0.1", port: 0, engine });
  return {
    origin,
    ca,
    logs,
    server,
    authority: `localhost:${origin.addr.port}`,
    async close() {
      await server.close();
      await inspector.close();
      client.close();
      ac.abort();
      await origin.finished;
    },
  };
}

Deno.test({
  name: "inspector: HTTP/1.0 and 1.1 keep-alive through SSL inspection, bodies of every size",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const body = (n: number) => new Uint8Array(n).map((_, i) => 65 + (i % 26));
    let hung = 0;
    const lab = await inspectingProxy((req) => {
      const u = new URL(req.url);
      if (u.pathname === "/hang") {
        // Never answers; lets go once the proxy drops the request.
        hung++;
        return new Promise<Response>((resolve) =>
          req.signal.addEventListener("abort", () => resolve(new Response("late")))
        );
      }
      const n = Number(u.searchParams.get("size") ?? 10);
      // ?stream=1: no Content-Length from the origin (chunked).
      return u.searchParams.get("stream")
        ? new Response(new Blob([body(n)]).stream())
        : new Response(body(n));
    });
    const { ca, logs, server, origin, authority } = lab;

    /** A TLS session to the origin through CONNECT (inspected: the edge's CA signs it). */
    const open = async () => {
      const tcp = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await tcp.write(new TextEncoder().encode(`CONNECT ${authority} HTTP/1.1\r\n\r\n`));
      const w = new Wire(tcp);
      assert.equal((await w.head())?.status, 200);
      const tls = await Deno.startTls(tcp, { hostname: "localhost", caCerts: [ca.certPem] });
      return new Wire(tls);
    };

    try {
      const cases = [
        { version: "1.0", size: 1024, stream: false },
        { version: "1.0", size: SMALL_BODY, stream: false },
        { version: "1.0", size: SMALL_BODY + 1, stream: false },
        { version: "1.0", size: 3_000_000, stream: false },
        { version: "1.0", size: 300_000, stream: true },
        { version: "1.1", size: 1024, stream: false },
        { version: "1.1", size: 3_000_000, stream: false },
        { version: "1.1", size: 300_000, stream: true },
      ];
      for (const c of cases) {
        await t.step(
          `HTTP/${c.version}, ${c.size} bytes${c.stream ? ", chunked origin" : ""}`,
          async () => {
            const w = await open();
            const path = `/?size=${c.size}${c.stream ? "&stream=1" : ""}`;
            const ask = () =>
              w.conn.write(
                new TextEncoder().encode(
                  `GET ${path} HTTP/${c.version}\r\nHost: ${authority}\r\n` +
                    (c.version === "1.0" ? "Connection: keep-alive\r\n" : "") + "\r\n",
                ),
              );
            try {
              for (let round = 0; round < 3; round++) {
                await ask();
                const head = await w.head();
                assert.ok(head, `round ${round}: a response`);
                assert.equal(head.status, 200);
                const length = head.h.get("content-length");
                const chunked = /chunked/i.test(head.h.get("transfer-encoding") ?? "");
                const keepAlive = c.version === "1.1"
                  ? !/close/i.test(head.h.get("connection") ?? "")
                  : /keep-alive/i.test(head.h.get("connection") ?? "");
                if (!c.stream && !(c.version === "1.0" && c.size > SMALL_BODY)) {
                  // Known length, said so: the client can show progress and reuse the connection.
                  assert.equal(length, String(c.size), `round ${round}: Content-Length`);
                }
                let got: Uint8Array;
                if (length !== undefined) got = await w.take(Number(length));
                else if (chunked) got = await dechunk(w);
                else {
                  assert.ok(!keepAlive, "a body without length or chunks cannot say keep-alive");
                  got = await w.rest();
                }
                assert.equal(got.length, c.size, `round ${round}: body length`);
                assert.deepEqual(got.subarray(0, 26), body(26));
                if (!keepAlive) {
                  assert.equal((await w.rest()).length, 0, "the connection ends after the body");
                  break;
                }
                // It said keep-alive: the next round must be answered on this connection.
              }
            } finally {
              try {
                w.conn.close();
              } catch { /* closed */ }
            }
          },
        );
      }
      await t.step("every response is in the web log with its bytes", async () => {
        await waitUntil(
          "log entries",
          () => Promise.resolve(logs.filter((l) => l.mode === "inspected").length >= cases.length),
          5000,
        );
        for (const c of cases) {
          const l = logs.find((e) => e.mode === "inspected" && e.bytesDown === c.size);
          assert.ok(l, `a log entry with ${c.size} bytes down`);
          assert.equal(l.status, 200);
        }
      });
      await t.step(
        "a client that leaves before the origin answers: logged as the allowed request",
        async () => {
          const w = await open();
          await w.conn.write(
            new TextEncoder().encode(`GET /hang HTTP/1.1\r\nHost: ${authority}\r\n\r\n`),
          );
          await waitUntil(
            "the origin to hold the request",
            () => Promise.resolve(hung === 1),
            5000,
          );
          w.conn.close();
          let entry: WebLogEntry | undefined;
          await waitUntil("its log entry", () => {
            entry = logs.find((e) => e.mode === "inspected" && e.path === "/hang");
            return Promise.resolve(entry !== undefined);
          }, 5000);
          assert.equal(entry!.action, "allow", JSON.stringify(entry));
          assert.equal(entry!.status, null);
          assert.match(entry!.reason, /the client left before the end of the response/);
          assert.doesNotMatch(entry!.reason, /unreachable/);
        },
      );
      await t.step("the inspection listeners have TCP_NODELAY", () => {
        const ports = Deno.readTextFileSync("/proc/net/tcp").split("\n").slice(1)
          .map((l) => l.trim().split(/\s+/))
          .filter((f) => f[1]?.startsWith("0100007F:") && f[3] === "0A")
          .map((f) => parseInt(f[1].split(":")[1], 16))
          .filter((p) => p !== server.port && p !== origin.addr.port);
        assert.ok(ports.some((p) => listenerNoDelay(p)), `a terminator among ${ports}`);
        assert.equal(listenerNoDelay(origin.addr.port), false, "a plain Deno.serve has Nagle");
      });
    } finally {
      await lab.close();
    }
  },
});

Deno.test({
  name:
    "inspector: a client that offers only protocols it does not speak by ALPN is refused and logged",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    let reached = 0;
    const lab = await inspectingProxy(() => {
      reached++;
      return new Response("hello");
    });
    const { ca, logs, server, authority } = lab;
    const through = async (alpn: string[]) => {
      const tcp = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      try {
        await tcp.write(new TextEncoder().encode(`CONNECT ${authority} HTTP/1.1\r\n\r\n`));
        assert.equal((await new Wire(tcp).head())?.status, 200);
        const tls = await Deno.startTls(tcp, {
          hostname: "localhost",
          caCerts: [ca.certPem],
          alpnProtocols: alpn,
        });
        const hs = await tls.handshake();
        await tls.write(new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
        return { alpn: hs.alpnProtocol, status: (await new Wire(tls).head())?.status };
      } finally {
        try {
          tcp.close();
        } catch { /* closed with the TLS session */ }
      }
    };
    try {
      // Each offer, and what comes of it.
      const cases = [
        { alpn: ["http/1.0"], refused: true },
        { alpn: ["spdy/3", "http/1.0"], refused: true },
        { alpn: ["x\u0001y"], refused: true, logged: "x?y" },
        { alpn: ["http/1.0", "http/1.1"], refused: false },
        { alpn: [], refused: false },
      ];
      for (const c of cases) {
        const before = { logs: logs.length, reached };
        if (c.refused) {
          await assert.rejects(
            () => through(c.alpn),
            /NoApplicationProtocol|no.application.protocol/i,
          );
          await waitUntil(
            "the refusal logged",
            () => Promise.resolve(logs.length > before.logs),
            5000,
          );
          const e = logs.at(-1)!;
          assert.equal(e.action, "block");
          assert.equal(e.status, null);
          assert.ok(
            e.reason.includes(`offered only ${c.logged ?? c.alpn.join(", ")} by ALPN`),
            e.reason,
          );
          assert.equal(reached, before.reached, `${c.alpn}: the origin is not reached`);
        } else {
          const r = await through(c.alpn);
          assert.equal(r.status, 200, `${c.alpn}: answered`);
          assert.equal(r.alpn, c.alpn.length ? "http/1.1" : null);
          assert.equal(reached, before.reached + 1);
        }
      }
    } finally {
      await lab.close();
    }
  },
});

/** Reads a chunked body to its last chunk. */
async function dechunk(w: Wire): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (;;) {
    let line = "";
    for (;;) {
      const b = await w.take(1);
      if (!b.length) throw new Error("stream ended inside a chunk size");
      line += String.fromCharCode(b[0]);
      if (line.endsWith("\r\n")) break;
    }
    const n = parseInt(line, 16);
    if (n === 0) {
      await w.take(2);
      break;
    }
    parts.push(await w.take(n));
    await w.take(2);
  }
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
