/**
 * Test helpers for DNS: a fake upstream resolver on loopback (UDP and TCP)
 * that answers every A query with a fixed address and records what it saw,
 * and a tiny UDP/TCP client.
 */
import dgram from "node:dgram";
import {
  DNS_CLASS_IN,
  type DnsMessage,
  dnsResponseTo,
  encodeDnsMessage,
  parseDnsMessage,
} from "../../../src/packet/dns.ts";

/** How the fake misbehaves before (or instead of) answering. */
export interface FakeUpstreamOptions {
  /** The A address in every answer. */
  address: string;
  /** Never answer (a dead upstream). */
  silent?: boolean;
  /** Before the real answer, send one with a wrong id and one with a wrong question. */
  spoofFirst?: boolean;
  /** Number of A records per answer (to force truncation); default 1. */
  count?: number;
}

/** A running fake upstream. */
export interface FakeUpstream {
  port: number;
  /** Queries received (parsed), in order. */
  seen: DnsMessage[];
  /** "127.0.0.1:PORT". */
  addr: string;
  close(): Promise<void>;
}

function answerFor(q: DnsMessage, o: FakeUpstreamOptions, maxSize?: number): Uint8Array {
  const n = o.count ?? 1;
  return encodeDnsMessage(
    dnsResponseTo(q, {
      ra: true,
      answers: Array.from({ length: n }, (_, i) => ({
        name: q.questions[0].name,
        class: DNS_CLASS_IN,
        ttl: 120,
        type: "A" as const,
        address: n === 1 ? o.address : o.address.replace(/\d+$/, String(i)),
      })),
    }),
    maxSize ? { maxSize } : {},
  );
}

/** Starts a fake upstream resolver on 127.0.0.1 (UDP and TCP on one port). */
export async function startFakeUpstream(o: FakeUpstreamOptions): Promise<FakeUpstream> {
  // UDP and TCP on the same port: the UDP port the kernel picks may be taken
  // for TCP by another test's socket, so pick again until both bind.
  let sock: dgram.Socket;
  let tcp: Deno.TcpListener;
  for (let attempt = 1;; attempt++) {
    const s = dgram.createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
    try {
      tcp = Deno.listen({ hostname: "127.0.0.1", port: s.address().port, transport: "tcp" });
      sock = s;
      break;
    } catch (e) {
      s.close();
      if (!(e instanceof Deno.errors.AddrInUse) || attempt >= 20) throw e;
    }
  }
  const port = sock.address().port;
  const seen: DnsMessage[] = [];
  sock.on("message", (m: Uint8Array, r: dgram.RemoteInfo) => {
    const q = parseDnsMessage(new Uint8Array(m));
    seen.push(q);
    if (o.silent) return;
    if (o.spoofFirst) {
      const wrongId = answerFor(q, o);
      wrongId[0] ^= 0xff;
      sock.send(wrongId, r.port, r.address);
      const wrongQ = answerFor(
        { ...q, questions: [{ ...q.questions[0], name: "evil.example" }] },
        o,
      );
      sock.send(wrongQ, r.port, r.address);
    }
    const good = answerFor(q, o, 512);
    setTimeout(() => {
      try {
        sock.send(good, r.port, r.address);
      } catch { /* closed meanwhile */ }
    }, o.spoofFirst ? 20 : 0);
  });
  const conns = new Set<Deno.Conn>();
  const loop = (async () => {
    for await (const c of tcp) {
      conns.add(c);
      (async () => {
        try {
          const buf = new Uint8Array(65537);
          let got = 0;
          while (got < 2 || got < 2 + ((buf[0] << 8) | buf[1])) {
            const n = await c.read(buf.subarray(got));
            if (n === null) return;
            got += n;
          }
          const q = parseDnsMessage(buf.slice(2, 2 + ((buf[0] << 8) | buf[1])));
          seen.push(q);
          if (o.silent) return;
          const a = answerFor(q, o);
          const f = new Uint8Array(2 + a.length);
          f[0] = a.length >> 8;
          f[1] = a.length & 0xff;
          f.set(a, 2);
          await c.write(f);
        } catch {
          /* closed */
        } finally {
          conns.delete(c);
          try {
            c.close();
          } catch { /* closed */ }
        }
      })();
    }
  })().catch(() => {});
  return {
    port,
    seen,
    addr: `127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((r) => sock.close(() => r()));
      tcp.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await loop;
    },
  };
}

/** Sends one UDP datagram to 127.0.0.1:port (or `host`) and returns the first reply, or null after `timeoutMs`. */
export async function udpExchange(
  port: number,
  bytes: Uint8Array,
  timeoutMs = 1500,
  host = "127.0.0.1",
): Promise<Uint8Array | null> {
  const sock = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  try {
    return await new Promise<Uint8Array | null>((resolve) => {
      const t = setTimeout(() => resolve(null), timeoutMs);
      sock.on("message", (m: Uint8Array) => {
        clearTimeout(t);
        resolve(new Uint8Array(m));
      });
      sock.send(bytes, port, host);
    });
  } finally {
    await new Promise<void>((r) => sock.close(() => r()));
  }
}

/** Sends one length-prefixed query over TCP and returns the answer. */
export async function tcpExchange(
  port: number,
  bytes: Uint8Array,
  host = "127.0.0.1",
): Promise<Uint8Array> {
  const c = await Deno.connect({ hostname: host, port, transport: "tcp" });
  try {
    const f = new Uint8Array(2 + bytes.length);
    f[0] = bytes.length >> 8;
    f[1] = bytes.length & 0xff;
    f.set(bytes, 2);
    await c.write(f);
    const buf = new Uint8Array(65537);
    let got = 0;
    while (got < 2 || got < 2 + ((buf[0] << 8) | buf[1])) {
      const n = await c.read(buf.subarray(got));
      if (n === null) throw new Error(`TCP DNS answer cut after ${got} bytes`);
      got += n;
    }
    return buf.slice(2, 2 + ((buf[0] << 8) | buf[1]));
  } finally {
    c.close();
  }
}
