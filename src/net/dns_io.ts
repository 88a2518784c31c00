/**
 * The I/O half of a DNS server, shared by the edge's DNS service and the
 * connector's split-DNS stub: a UDP+TCP listener that hands each query to a
 * handler, and a forwarder that relays a query to upstream servers and
 * matches the answer.
 *
 * Neither is on the packet hot path (DNS is a few queries a second), so they
 * use node:dgram and Deno.listen, which need no --unstable flag (Deno's own
 * Deno.listenDatagram still requires --unstable-net in Deno 2.x).
 *
 * Forwarding rewrites the query id to a fresh random one per upstream
 * attempt and accepts an answer only when it comes from the server asked,
 * carries that id, is a response, and repeats the question (RFC 5452), so a
 * blind spoofer must guess 16 bits of id against a short window. The client's
 * own id is put back before the answer is returned.
 */
import dgram from "node:dgram";
import {
  DNS_HEADER_SIZE,
  type DnsMessage,
  type DnsQuestion,
  normalizeDnsName,
  parseDnsHeader,
  tryParseDnsMessage,
} from "../packet/dns.ts";
import { formatIpBytes, parseIpText } from "../packet/addr.ts";
import { InputError, PortcullisError } from "../errors.ts";
import { logger } from "../log.ts";

const log = logger("dns");

/** A DNS server address. */
export interface DnsServerAddress {
  address: string;
  port: number;
}

/** Parses "192.0.2.1", "192.0.2.1:5353", "2001:db8::1" or "[2001:db8::1]:5353" (default port 53). */
export function parseDnsServerAddress(text: string): DnsServerAddress {
  const t = text.trim();
  let m = t.match(/^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/);
  if (!m) m = t.match(/^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/);
  if (!m && /^[0-9a-fA-F:.]+$/.test(t) && t.includes(":")) {
    m = [t, t, undefined] as unknown as RegExpMatchArray;
  }
  if (!m) {
    throw new InputError(
      "bad_dns_server",
      `Cannot parse DNS server "${text}": expected IP or IP:PORT`,
    );
  }
  const port = m[2] === undefined ? 53 : Number(m[2]);
  if (port < 1 || port > 65535) {
    throw new InputError(
      "bad_dns_server",
      `Cannot parse DNS server "${text}": port ${port} is out of range 1-65535`,
    );
  }
  return { address: m[1].toLowerCase(), port };
}

/** Where a query came from. */
export interface DnsSource {
  address: string;
  port: number;
  transport: "udp" | "tcp";
}

/** Answers one raw query; null means send nothing. Must not throw for bad input. */
export type DnsHandler = (query: Uint8Array, source: DnsSource) => Promise<Uint8Array | null>;

/** Where and how to listen. */
export interface DnsListenOptions {
  hostname: string;
  /** 0 picks a free port (the same one for UDP and TCP). */
  port: number;
  /** Also serve DNS over TCP on the same port; default true. */
  tcp?: boolean;
  /** Most TCP connections served at once; default 64. */
  maxTcpConnections?: number;
  /** A TCP connection idle this long is closed; default 10 s. */
  tcpIdleMs?: number;
}

/** A running listener. */
export interface DnsListener {
  /** The port bound (UDP and TCP). */
  readonly port: number;
  /** Stops listening and closes open TCP connections. */
  close(): Promise<void>;
}

function bindUdp(hostname: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: hostname.includes(":") ? "udp6" : "udp4" });
    const onError = (e: Error) => {
      try {
        sock.close();
      } catch { /* already closed */ }
      reject(e);
    };
    sock.once("error", onError);
    sock.bind(port, hostname, () => {
      sock.off("error", onError);
      resolve(sock);
    });
  });
}

function closeUdp(sock: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      sock.close(() => resolve());
    } catch {
      resolve();
    }
  });
}

/** Starts serving DNS on UDP (and TCP) with `handler`. */
export async function startDnsListener(
  opts: DnsListenOptions,
  handler: DnsHandler,
): Promise<DnsListener> {
  const wantTcp = opts.tcp ?? true;
  let udp: dgram.Socket | null = null;
  let tcp: Deno.TcpListener | null = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      udp = await bindUdp(opts.hostname, opts.port);
    } catch (e) {
      throw new PortcullisError(
        "dns_listen_failed",
        `Cannot listen for DNS on ${opts.hostname}:${opts.port}/udp: ${(e as Error).message}`,
      );
    }
    if (!wantTcp) break;
    try {
      tcp = Deno.listen({ hostname: opts.hostname, port: udp.address().port, transport: "tcp" });
      break;
    } catch (e) {
      await closeUdp(udp);
      udp = null;
      // With port 0 the UDP port may be taken on TCP by someone else: pick again.
      if (opts.port !== 0 || attempt === 4) {
        throw new PortcullisError(
          "dns_listen_failed",
          `Cannot listen for DNS on ${opts.hostname}:${opts.port}/tcp: ${(e as Error).message}`,
        );
      }
    }
  }
  const sock = udp!;
  const port = sock.address().port;
  let closed = false;

  sock.on("error", (e) => log.warn("DNS UDP socket error", { error: String(e) }));
  sock.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
    if (closed) return;
    const q = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength).slice();
    handler(q, { address: rinfo.address, port: rinfo.port, transport: "udp" }).then((resp) => {
      if (resp && !closed) {
        sock.send(resp, rinfo.port, rinfo.address, (err) => {
          if (err) log.debug("Cannot send DNS answer", { to: rinfo.address, error: String(err) });
        });
      }
    }).catch((e) => log.error("DNS handler failed", { error: String(e) }));
  });

  const conns = new Set<Deno.TcpConn>();
  const maxConns = opts.maxTcpConnections ?? 64;
  const idleMs = opts.tcpIdleMs ?? 10_000;
  const acceptLoop = tcp
    ? (async () => {
      for (;;) {
        let conn: Deno.TcpConn;
        try {
          conn = await tcp!.accept();
        } catch {
          return; // listener closed
        }
        if (conns.size >= maxConns) {
          conn.close();
          continue;
        }
        conns.add(conn);
        serveTcp(conn, handler, idleMs).finally(() => {
          conns.delete(conn);
          try {
            conn.close();
          } catch { /* already closed */ }
        });
      }
    })()
    : Promise.resolve();

  return {
    port,
    async close() {
      if (closed) return;
      closed = true;
      await closeUdp(sock);
      if (tcp) {
        tcp.close();
        for (const c of conns) {
          try {
            c.close();
          } catch { /* already closed */ }
        }
      }
      await acceptLoop;
    },
  };
}

async function readExact(conn: Deno.Conn, n: number, idleMs: number): Promise<Uint8Array | null> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      conn.read(out.subarray(got)),
      new Promise<null>((res) => (timer = setTimeout(() => res(null), idleMs))),
    ]).finally(() => clearTimeout(timer));
    if (r === null) return null;
    got += r;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  let o = 0;
  while (o < b.length) o += await conn.write(b.subarray(o));
}

function frame(msg: Uint8Array): Uint8Array {
  const f = new Uint8Array(2 + msg.length);
  f[0] = msg.length >> 8;
  f[1] = msg.length & 0xff;
  f.set(msg, 2);
  return f;
}

async function serveTcp(conn: Deno.TcpConn, handler: DnsHandler, idleMs: number): Promise<void> {
  const ra = conn.remoteAddr as Deno.NetAddr;
  try {
    for (;;) {
      const lenB = await readExact(conn, 2, idleMs);
      if (!lenB) return;
      const len = (lenB[0] << 8) | lenB[1];
      if (len < DNS_HEADER_SIZE) return;
      const q = await readExact(conn, len, idleMs);
      if (!q) return;
      const resp = await handler(q, { address: ra.hostname, port: ra.port, transport: "tcp" });
      if (!resp) return;
      await writeAll(conn, frame(resp));
    }
  } catch {
    // Peer reset or listener closed: nothing to answer.
  }
}

/** Tuning for DnsForwarder. */
export interface DnsForwarderOptions {
  /** Wait this long for each upstream before trying the next; default 2000 ms. */
  timeoutMs?: number;
  /** Most UDP queries outstanding at once; beyond it forward() fails fast; default 1024. */
  maxInFlight?: number;
}

interface Pending {
  server: DnsServerAddress;
  question: DnsQuestion;
  resolve: (b: Uint8Array | null) => void;
}

function sameQuestion(a: DnsQuestion, b: DnsQuestion): boolean {
  return a.type === b.type && a.class === b.class &&
    normalizeDnsName(a.name) === normalizeDnsName(b.name);
}

/** Relays queries to upstream servers over UDP or TCP and matches their answers. */
export class DnsForwarder {
  readonly timeoutMs: number;
  readonly maxInFlight: number;
  #pending = new Map<number, Pending>();
  #sockets = new Map<4 | 6, Promise<dgram.Socket>>();
  #closed = false;
  /** Answers dropped because they matched no outstanding query (spoofing or late). */
  unmatched = 0;

  constructor(opts: DnsForwarderOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.maxInFlight = opts.maxInFlight ?? 1024;
  }

  /**
   * Sends `query` (already parsed as `parsed`, one question) to each server
   * in turn until one answers; returns the answer with the client's id, or
   * null when every server failed or timed out.
   */
  async forward(
    query: Uint8Array,
    parsed: DnsMessage,
    servers: readonly DnsServerAddress[],
    transport: "udp" | "tcp" = "udp",
  ): Promise<Uint8Array | null> {
    if (parsed.questions.length !== 1) return null;
    for (const server of servers) {
      if (this.#closed) return null;
      const ans = transport === "udp"
        ? await this.#udpOnce(query, parsed.questions[0], server)
        : await this.#tcpOnce(query, parsed.questions[0], server);
      if (ans) {
        ans[0] = query[0];
        ans[1] = query[1];
        return ans;
      }
    }
    return null;
  }

  #socket(family: 4 | 6): Promise<dgram.Socket> {
    let p = this.#sockets.get(family);
    if (!p) {
      p = bindUdp(family === 4 ? "0.0.0.0" : "::", 0).then((s) => {
        s.on("error", (e) => log.warn("DNS forwarder socket error", { error: String(e) }));
        s.on("message", (m: Uint8Array, r: dgram.RemoteInfo) => this.#onAnswer(m, r));
        return s;
      });
      this.#sockets.set(family, p);
    }
    return p;
  }

  #freshId(): number | null {
    const r = new Uint16Array(1);
    for (let i = 0; i < 16; i++) {
      crypto.getRandomValues(r);
      if (!this.#pending.has(r[0])) return r[0];
    }
    return null;
  }

  async #udpOnce(query: Uint8Array, question: DnsQuestion, server: DnsServerAddress) {
    if (this.#pending.size >= this.maxInFlight) return null;
    const id = this.#freshId();
    if (id === null) return null;
    const out = query.slice();
    out[0] = id >> 8;
    out[1] = id & 0xff;
    let sock: dgram.Socket;
    try {
      sock = await this.#socket(server.address.includes(":") ? 6 : 4);
    } catch (e) {
      log.warn("Cannot open DNS forwarding socket", { error: String(e) });
      return null;
    }
    return await new Promise<Uint8Array | null>((resolve) => {
      const timer = setTimeout(() => done(null), this.timeoutMs);
      const done = (b: Uint8Array | null) => {
        clearTimeout(timer);
        if (this.#pending.get(id)?.resolve === done) this.#pending.delete(id);
        resolve(b);
      };
      this.#pending.set(id, { server, question, resolve: done });
      sock.send(out, server.port, server.address, (err) => {
        if (err) done(null);
      });
    });
  }

  #onAnswer(m: Uint8Array, r: dgram.RemoteInfo): void {
    const b = new Uint8Array(m.buffer, m.byteOffset, m.byteLength).slice();
    const h = parseDnsHeader(b);
    const p = h ? this.#pending.get(h.id) : undefined;
    if (
      !h || !p || !h.qr || p.server.port !== r.port || !sameAddress(p.server.address, r.address)
    ) {
      this.unmatched++;
      return;
    }
    const parsed = tryParseDnsMessage(b);
    // A truncated (TC) answer may legitimately carry the question but no records; it still parses.
    if (
      !("header" in parsed) || parsed.questions.length !== 1 ||
      !sameQuestion(parsed.questions[0], p.question)
    ) {
      this.unmatched++;
      return;
    }
    p.resolve(b);
  }

  async #tcpOnce(query: Uint8Array, question: DnsQuestion, server: DnsServerAddress) {
    const id = this.#freshId() ?? 0;
    const out = query.slice();
    out[0] = id >> 8;
    out[1] = id & 0xff;
    let conn: Deno.TcpConn | null = null;
    let expired = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((res) =>
      timer = setTimeout(() => {
        expired = true;
        try {
          conn?.close(); // unblocks the pending read
        } catch { /* already closed */ }
        res(null);
      }, this.timeoutMs)
    );
    const work = (async () => {
      const c = await Deno.connect({
        hostname: server.address,
        port: server.port,
        transport: "tcp",
      });
      conn = c;
      try {
        if (expired) return null;
        await writeAll(c, frame(out));
        const lenB = await readExact(c, 2, this.timeoutMs);
        if (!lenB) return null;
        const ans = await readExact(c, (lenB[0] << 8) | lenB[1], this.timeoutMs);
        if (!ans) return null;
        const h = parseDnsHeader(ans);
        const parsed = tryParseDnsMessage(ans);
        if (
          !h || h.id !== id || !h.qr || !("header" in parsed) || parsed.questions.length !== 1 ||
          !sameQuestion(parsed.questions[0], question)
        ) return null;
        return ans;
      } finally {
        try {
          c.close();
        } catch { /* closed by the timeout */ }
      }
    })().catch(() => null);
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Fails every outstanding query and closes the sockets. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of [...this.#pending.values()]) p.resolve(null);
    for (const p of this.#sockets.values()) {
      try {
        await closeUdp(await p);
      } catch { /* never opened */ }
    }
  }
}

function canonicalAddress(x: string): string {
  const s = x.toLowerCase().replace(/^::ffff:(?=\d+\.)/, "");
  const b = parseIpText(s);
  return b ? formatIpBytes(b) : s;
}

function sameAddress(a: string, b: string): boolean {
  return canonicalAddress(a) === canonicalAddress(b);
}
