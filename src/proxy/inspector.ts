/**
 * SSL inspection: takes over a TLS connection the URL policy allowed by
 * name, unless the name is on the Do-Not-Inspect list (then the engine
 * passes it through untouched, and the client sees the origin's own
 * certificate).
 *
 * How a connection is terminated without a TLS server API that takes a
 * socket already read from: the proxy has read the ClientHello to learn the
 * SNI, so it opens a loopback connection to a TLS listener of its own for
 * that name (one per name, with the leaf the inspection CA issued, kept in
 * an LRU), replays the ClientHello and pipes the rest. The listener is an
 * ordinary HTTP server (the ServeFn main.ts hands down), so ALPN offers h2
 * and http/1.1 and both work. Each request it serves is matched back to the
 * device by the loopback source port, decided by the engine's URL policy
 * (path and method now visible), uploads inspected, and sent to the origin
 * by the proxy's own HTTP/1.1 client (origin_client.ts: kept-alive TLS
 * connections, full verification against the system roots plus any CA the
 * admin configured); an origin certificate that does not verify is answered
 * with the block page, never trusted silently.
 *
 * The listeners negotiate h2 and http/1.1 by ALPN (Deno.serve takes no
 * other list). A ClientHello that offers only other protocols is refused
 * here, with the alert the listener would send, and logged with the offer.
 *
 * Each listener gets TCP_NODELAY (src/net/tcp_nodelay.ts): without it every
 * keep-alive response of the loopback hop waited 40 ms for a delayed ACK.
 */
import { logger } from "../log.ts";
import { setListenerNoDelay } from "../net/tcp_nodelay.ts";
import type { AccessSubject } from "../policy/access.ts";
import { type ServeFn, shutdownWithin } from "../serve.ts";
import { renderPage } from "./block_page.ts";
import type { ProxyEngine, TlsInterceptor, UploadCheck } from "./engine.ts";
import type { RequestTarget } from "./http_head.ts";
import type { InspectionCa } from "./inspection_ca.ts";
import { originFailure } from "./origin_reach.ts";
import { ClientGone, ClientLeft, type OriginClient, type OriginResponse } from "./origin_client.ts";
import { closeQuietly, pipe, writeAll } from "./stream.ts";

const log = logger("proxy.inspect");

/** Bodies of known length up to this size are read whole, not streamed (256 KiB). */
export const SMALL_BODY = 256 * 1024;

/**
 * The protocols the TLS listeners negotiate by ALPN (`Deno.serve` offers
 * these two and no others).
 */
export const INSPECTED_ALPN: readonly string[] = ["h2", "http/1.1"];

/** A fatal TLS alert "no_application_protocol" (RFC 7301 §3.2), plaintext as before ServerHello. */
const NO_APPLICATION_PROTOCOL = new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 120]);

/** Names with a listener kept at most. */
export const TERMINATORS = 256;

const UPLOAD_METHODS = new Set(["POST", "PUT", "PATCH"]);
const HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  // Asked for plain: the body the client gets is the body that was seen.
  "accept-encoding",
]);

/** Options of the inspector. */
export interface InspectorOptions {
  ca: InspectionCa;
  serve: ServeFn;
  /** Whether inspection is on, and whether a name is on the Do-Not-Inspect list (read per connection). */
  inspects(host: string): boolean;
  /** The client for origins (TLS verified against the system roots and the extra CAs). */
  origin: OriginClient;
  uploads?: { check: UploadCheck; limit: number };
}

interface ConnInfo {
  subject: AccessSubject;
  src: string;
  host: string;
  port: number;
  /** Ended with the client's connection (its requests' origin waits end with it). */
  gone: ClientGone;
}

interface Terminator {
  server: Deno.HttpServer<Deno.NetAddr>;
  port: number;
}

/** The SSL inspector; `attach` it to the engine it serves. */
export class Inspector {
  readonly #o: InspectorOptions;
  readonly #origin: OriginClient;
  #engine: ProxyEngine | null = null;
  readonly #conns = new Map<number, ConnInfo>();
  readonly #terms = new Map<string, Promise<Terminator>>();
  #closed = false;

  constructor(o: InspectorOptions) {
    this.#o = o;
    this.#origin = o.origin;
  }

  /** Binds the engine whose policy and log the inspected requests use. */
  attach(engine: ProxyEngine): void {
    this.#engine = engine;
  }

  /** The engine hook. */
  readonly intercept: TlsInterceptor = async (c) => {
    if (this.#closed || !this.#o.inspects(c.host)) return false;
    if (c.alpn.length && !c.alpn.some((p) => INSPECTED_ALPN.includes(p))) {
      // The listener would refuse the handshake with this alert and nothing
      // would say why; a client that asks only for HTTP/1.0 (curl --http1.0)
      // is not passed through uninspected either.
      this.#refuseAlpn(c);
      await writeAll(c.client, NO_APPLICATION_PROTOCOL).catch(() => {});
      return true;
    }
    let term: Terminator;
    try {
      term = await this.#terminator(c.host);
    } catch (e) {
      log.warn("Cannot start TLS inspection for a name", {
        host: c.host,
        error: (e as Error).message,
      });
      return false;
    }
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: term.port });
    conn.setNoDelay(true);
    const lport = (conn.localAddr as Deno.NetAddr).port;
    const gone = new ClientGone();
    this.#conns.set(lport, {
      subject: c.subject,
      src: c.src,
      host: c.host,
      port: c.port,
      gone,
    });
    try {
      await Promise.all([
        // The device closed its side: the request it waits for is abandoned,
        // as nginx has it (a TLS client does not half-close to await an
        // answer). Without this the TLS listener keeps the half-closed
        // connection, and the origin request runs on for nobody until the
        // origin answers or times out.
        pipe(c.reader, conn).then(() => gone.end()),
        pipe(conn, c.client),
      ]);
    } finally {
      this.#conns.delete(lport);
      closeQuietly(conn);
      gone.end();
    }
    return true;
  };

  #refuseAlpn(c: Parameters<TlsInterceptor>[0]): void {
    // The client's own bytes: a few, printable, for the log.
    const offered = c.alpn.slice(0, 8).map((p) => p.slice(0, 40).replace(/[^\x21-\x7e]/g, "?"))
      .join(", ");
    this.#engine?.logBlocked(
      c.entry,
      c.verdict,
      null,
      `TLS refused: the client offered only ${offered} by ALPN, and SSL inspection speaks ${
        INSPECTED_ALPN.join(" and ")
      }`,
      null,
    );
  }

  /** Stops every listener. */
  async close(): Promise<void> {
    this.#closed = true;
    const terms = [...this.#terms.values()];
    this.#terms.clear();
    for (const t of terms) await t.then((x) => shutdownWithin(x.server, 500)).catch(() => {});
  }

  #terminator(host: string): Promise<Terminator> {
    const hit = this.#terms.get(host);
    if (hit) {
      this.#terms.delete(host);
      this.#terms.set(host, hit);
      return hit;
    }
    const p = this.#o.ca.leaf(host).then((pem) => {
      const server = this.#o.serve(
        { hostname: "127.0.0.1", port: 0, cert: pem.cert, key: pem.key, onListen: () => {} },
        (req, info) => this.#handle(req, info),
      );
      try {
        setListenerNoDelay(server.addr.port);
      } catch (e) {
        // Still correct, only slower (a delayed-ACK wait on most keep-alive responses).
        log.warn("Cannot set TCP_NODELAY on an inspection listener", {
          host,
          error: (e as Error).message,
        });
      }
      return { server, port: server.addr.port };
    });
    p.catch(() => this.#terms.delete(host));
    this.#terms.set(host, p);
    if (this.#terms.size > TERMINATORS) {
      const [oldest, old] = this.#terms.entries().next().value!;
      this.#terms.delete(oldest);
      old.then((x) => shutdownWithin(x.server, 2000)).catch(() => {});
    }
    return p;
  }

  async #handle(req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> {
    const c = this.#conns.get(info.remoteAddr.port);
    const engine = this.#engine;
    if (!c || !engine) return new Response(null, { status: 421 });
    const u = new URL(req.url);
    const path = `${u.pathname}${u.search}`;
    const t: RequestTarget = { form: "origin", scheme: "https", host: c.host, port: c.port, path };
    const url = `https://${c.host}${c.port === 443 ? "" : `:${c.port}`}${path}`;
    const base = engine.entry(c.subject, c.src, "inspected", req.method, t);
    const accept = req.headers.get("accept"), lang = req.headers.get("accept-language");
    const page = (r: Parameters<typeof renderPage>[0]) => {
      const p = renderPage(r, accept, lang);
      return new Response(p.body, {
        status: p.status,
        headers: {
          "content-type": p.contentType,
          "cache-control": "no-store",
          "x-portcullis-reason": r.code,
        },
      });
    };
    const d = engine.decide(c.subject, base, t, req.method, url);
    if (d.kind === "page") return page(d.page);
    if (d.kind === "redirect") {
      return new Response(null, {
        status: 302,
        headers: { location: d.location, "cache-control": "no-store" },
      });
    }
    if (d.kind === "bad") {
      return Response.json({ error: d.code, message: d.message }, { status: 400 });
    }
    const v = d.verdict;

    let body: Uint8Array | ReadableStream<Uint8Array> | null = req.body;
    let up = 0;
    let uninspectedUpload = false;
    const uploads = this.#o.uploads;
    if (req.body && uploads && UPLOAD_METHODS.has(req.method)) {
      const r = await readUpTo(req.body, uploads.limit);
      if (r.rest) {
        uninspectedUpload = true;
        body = r.rest;
      } else {
        const outcome = await uploads.check(r.bytes, {
          subject: c.subject,
          contentType: req.headers.get("content-type"),
          fileName: decodeURIComponent(u.pathname.slice(u.pathname.lastIndexOf("/") + 1)) || "body",
          host: c.host,
          url,
        }).catch(() => ({ block: true, rule: null, reason: "the upload could not be inspected" }));
        if (outcome.block) {
          engine.logBlocked(
            { ...base, bytesUp: r.bytes.length },
            v,
            outcome.rule,
            `upload blocked: ${outcome.reason}`,
          );
          return page({
            code: "dlp_blocked",
            host: c.host,
            url,
            rule: outcome.rule,
            detail: outcome.reason,
          });
        }
        body = r.bytes;
        up = r.bytes.length;
      }
    }
    const headers: [string, string][] = [];
    for (const [k, val] of req.headers) if (!HOP.has(k)) headers.push([k, val]);
    let res: OriginResponse;
    try {
      res = await this.#origin.request({
        host: c.host,
        port: c.port,
        method: req.method,
        path,
        headers,
        body,
        gone: c.gone,
      });
    } catch (e) {
      if (e instanceof ClientLeft) {
        // Allowed, and nobody to answer: logged as the request it was.
        engine.logForwarded(base, v, { status: null, bytesUp: up, bytesDown: 0, incomplete: true });
        return new Response(null, { status: 499 });
      }
      const f = originFailure(e);
      const msg = `${(e as Error).message}`.slice(0, 200);
      engine.logBlocked(base, v, null, `${f.reason}: ${msg}`, f.status);
      return page({
        code: f.code,
        host: c.host,
        url,
        rule: null,
        detail: msg,
      });
    }
    const out = new Headers();
    const nominated = new Set(
      res.headers.filter(([k]) => k === "connection").flatMap(([, val]) => val.split(","))
        .map((t) => t.trim().toLowerCase()),
    );
    for (const [k, val] of res.headers) {
      if ((!HOP.has(k) || k === "content-length") && !nominated.has(k)) out.append(k, val);
    }
    const logged = (bytesDown: number, incomplete = false) =>
      engine.logForwarded(base, v, {
        status: res.status,
        bytesUp: up,
        bytesDown,
        uninspectedUpload,
        ...(incomplete ? { incomplete } : {}),
      });
    if (!res.body) {
      logged(0);
      return new Response(null, { status: res.status, headers: out });
    }
    const origin = res.body;
    // Logged once it is out (or known not to be), with the bytes that went.
    const loggedWhenOut = (bytes: () => number) =>
      info.completed.then(() => logged(bytes()), () => logged(bytes(), true));
    // A body of known length up to SMALL_BODY is read whole, for every
    // client: a streamed one costs a ReadableStream, its pulls and an
    // event-loop turn per batch. When only HTTP/1.0 keep-alive requests
    // (ab's) were read whole, wrk's HTTP/1.1 requests for 1 KiB did 5,700
    // req/s through the inspector against ab's 7,300; now both do ~7,300.
    if (res.length !== null && res.length <= SMALL_BODY) {
      let whole: Uint8Array<ArrayBuffer>;
      try {
        whole = await origin.bytes();
      } catch (e) {
        logged(origin.received, true);
        return page({
          code: "origin_unreachable",
          host: c.host,
          url,
          rule: null,
          detail: `${(e as Error).message}`.slice(0, 200),
        });
      }
      loggedWhenOut(() => whole.length);
      return new Response(whole, { status: res.status, headers: out });
    }
    // An HTTP/1.0 client that asked for keep-alive (its header says so;
    // HTTP/1.1 clients rarely send it, HTTP/2 never) keeps its connection
    // only if the server knows the body's size, which it does for bytes,
    // not for a stream: a streamed body was announced keep-alive and the
    // connection closed under the next request. So a larger body is sent
    // without a length (close-delimited on 1.0, chunked on 1.1), and the
    // client knows the connection ends.
    if (res.length !== null && /keep-alive/i.test(req.headers.get("connection") ?? "")) {
      out.delete("content-length");
    }
    loggedWhenOut(() => origin.received);
    return new Response(origin.stream(), { status: res.status, headers: out });
  }
}

/** Reads up to `limit` bytes; past it, returns a stream of everything (read part first). */
async function readUpTo(
  stream: ReadableStream<Uint8Array>,
  limit: number,
): Promise<{ bytes: Uint8Array; rest: ReadableStream<Uint8Array> | null }> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
    if (total > limit) {
      const rest = new ReadableStream<Uint8Array>({
        start(ctl) {
          for (const c of chunks) ctl.enqueue(c);
        },
        async pull(ctl) {
          const r = await reader.read();
          if (r.done) ctl.close();
          else ctl.enqueue(r.value);
        },
        cancel: (why) => reader.cancel(why),
      });
      return { bytes: new Uint8Array(0), rest };
    }
  }
  const bytes = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  return { bytes, rest: null };
}
