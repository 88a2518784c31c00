/**
 * Web probe: fetches one URL and times each phase from real socket events,
 * no guessing — DNS (Deno.resolveDns), TCP connect (Deno.connect resolves
 * when the handshake completes), TLS (Deno.startTls + handshake()), time to
 * first byte (first read after the request is written), total (the server
 * closes: we send `Connection: close`), HTTP status and body bytes.
 *
 * One request per probe over a fresh connection, so every phase is measured
 * every time (a pooled client would hide DNS, connect and TLS).
 */
import type { Phases } from "./score.ts";

/** What to probe. */
export interface WebProbeTarget {
  url: string;
  timeoutMs?: number;
  /** Extra CA certificates (PEM) trusted besides the system's (tests, private apps). */
  caCerts?: string[];
  /** Resolver to use (default the system's). */
  nameServer?: { ipAddr: string; port?: number };
}

/** One web probe result. */
export interface WebProbeResult {
  url: string;
  at: number;
  ok: boolean;
  status: number | null;
  bytes: number;
  /** The address connected to. */
  address: string | null;
  phases: Phases | null;
  error: string | null;
}

const MAX_HEADER = 64 * 1024;

/** True when a URL's host is an address (IPv6 bracketed or not), which needs no lookup. */
export function isIp(h: string): boolean {
  return /^[0-9.]+$/.test(h) || h.includes(":");
}

/** Runs one web probe; never throws. */
export async function probeWeb(t: WebProbeTarget, now: () => number = Date.now): Promise<
  WebProbeResult
> {
  const at = now();
  let started = performance.now();
  const timeoutMs = t.timeoutMs ?? 10_000;
  const ms = () => Math.round((performance.now() - started) * 10) / 10;
  let conn: Deno.Conn | Deno.TlsConn | null = null;
  let address: string | null = null;
  const timer = setTimeout(() => {
    try {
      conn?.close();
    } catch { /* closed */ }
  }, timeoutMs);
  const fail = (error: string): WebProbeResult => ({
    url: t.url,
    at,
    ok: false,
    status: null,
    bytes: 0,
    address,
    phases: null,
    error,
  });
  try {
    const u = new URL(t.url);
    if (u.protocol !== "https:" && u.protocol !== "http:") {
      return fail(`unsupported scheme ${u.protocol}`);
    }
    const host = u.hostname.replace(/^\[|\]$/g, "");
    const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
    let ip = host;
    // The phases start here: an address needs no lookup, and its DNS phase is 0.
    started = performance.now();
    if (!isIp(host)) {
      const signal = AbortSignal.timeout(timeoutMs);
      const ips = await Deno.resolveDns(host, "A", { signal, nameServer: t.nameServer })
        .catch(() => [] as string[]);
      if (!ips.length) return fail(`cannot resolve ${host}`);
      ip = ips[0];
    }
    const dns = isIp(host) ? 0 : ms();
    address = `${ip}:${port}`;
    const tcp = await Promise.race([
      Deno.connect({ hostname: ip, port }),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
      ),
    ]);
    conn = tcp;
    const connected = ms();
    let tlsDone = connected;
    if (u.protocol === "https:") {
      const tls = await Deno.startTls(tcp, { hostname: host, caCerts: t.caCerts });
      conn = tls;
      await tls.handshake();
      tlsDone = ms();
    }
    const path = `${u.pathname || "/"}${u.search}`;
    const req = `GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: portcullis-zdx\r\n` +
      "Accept: */*\r\nConnection: close\r\n\r\n";
    await writeAll(conn, new TextEncoder().encode(req));
    const sent = ms();
    const buf = new Uint8Array(16 * 1024);
    let first: number | null = null;
    let head = "";
    let headerDone = false;
    let bytes = 0;
    let status: number | null = null;
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      if (first === null) first = ms();
      if (!headerDone) {
        head += new TextDecoder("latin1").decode(buf.subarray(0, n));
        const end = head.indexOf("\r\n\r\n");
        if (end >= 0) {
          headerDone = true;
          const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
          status = m ? Number(m[1]) : null;
          bytes += head.length - end - 4;
        } else if (head.length > MAX_HEADER) {
          return fail("response header too large");
        }
      } else {
        bytes += n;
      }
    }
    const total = ms();
    if (first === null || status === null) return fail("no HTTP response");
    return {
      url: t.url,
      at,
      ok: status < 400,
      status,
      bytes,
      address,
      phases: {
        dns,
        connect: Math.round((connected - dns) * 10) / 10,
        tls: Math.round((tlsDone - connected) * 10) / 10,
        ttfb: Math.round((first - sent) * 10) / 10,
        total,
      },
      error: null,
    };
  } catch (e) {
    const timedOut = ms() >= timeoutMs;
    return fail(timedOut ? `no answer within ${timeoutMs} ms` : (e as Error).message);
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed */ }
  }
}

async function writeAll(c: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await c.write(data.subarray(off));
}
