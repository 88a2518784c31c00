/**
 * The forward proxy engine: one code path for every way web traffic reaches
 * it, so URL policy is one engine for all of them.
 *
 * - explicit HTTP: `GET http://host/path` (absolute-form) from a client set
 *   to use the proxy;
 * - CONNECT host:port (web ports only, the "Z-Tunnel 1.0" path), then TLS
 *   decided by host, or plain HTTP inside the tunnel decided per request;
 * - transparent: tunnelled flows to ports 80/443 that the edge's nftables
 *   redirect here. The original destination is not asked of the kernel: a
 *   plain request names its host in the Host header, a TLS one in its SNI,
 *   and the proxy connects to that name itself, so a client cannot be let
 *   through to one address by naming another.
 *
 * Every request (every TLS connection that is not inspected) is decided by
 * the URL policy with the identity of the tunnel it came from and logged
 * with the bytes each way. Blocks answer with the block page, caution with
 * an interstitial whose Continue link is a one-time token bound to the
 * device, host and rule. Uploads are inspected for sensitive data before
 * any of their bytes reach the origin.
 */
import type { Clock } from "../clock.ts";
import type { PortcullisError } from "../errors.ts";
import { logger } from "../log.ts";
import type { AccessSubject } from "../policy/access.ts";
import type { WebLogRecord } from "../store/mod.ts";
import { type PageReason, pageResponse } from "./block_page.ts";
import { readWholeBody } from "./http_body.ts";
import {
  headEnd,
  header,
  MAX_HEAD,
  originHead,
  parseHead,
  type RequestHead,
  type RequestTarget,
  targetOf,
} from "./http_head.ts";
import { parseClientHello, tlsRecordLength } from "./sni.ts";
import { closeQuietly, type Duplex, PeekReader, pipe, writeAll } from "./stream.ts";
import type { UrlPolicy, UrlVerdict } from "./url_policy.ts";

const log = logger("proxy");

/** A web log entry before it is stored. */
export type WebLogEntry = Omit<WebLogRecord, "id">;

/** Path of the caution interstitial's Continue link (on the site's own host). */
export const CONTINUE_PATH = "/.portcullis/continue";

/** How long a caution acknowledgement lasts (1 h). */
export const CAUTION_TTL_MS = 3_600_000;

/** What the upload check says about a request body. */
export interface UploadOutcome {
  block: boolean;
  rule: string | null;
  /** A sentence free of sensitive values ("Rule "Cards" found 5 credit card numbers"). */
  reason: string;
}

/** Inspects an upload body before it is forwarded (the edge wires the DLP engine in). */
export type UploadCheck = (body: Uint8Array, meta: {
  subject: AccessSubject;
  contentType: string | null;
  fileName: string;
  host: string;
  url: string;
}) => Promise<UploadOutcome>;

/**
 * Takes over a TLS connection the policy allowed (SSL inspection). Returns
 * false to let the engine pass it through untouched (Do-Not-Inspect).
 */
export type TlsInterceptor = (c: {
  reader: PeekReader;
  client: Duplex;
  host: string;
  port: number;
  alpn: string[];
  subject: AccessSubject;
  src: string;
  mode: "connect" | "transparent";
}) => Promise<boolean>;

/** What the engine needs from its host. */
export interface ProxyEngineDeps {
  /** The device behind a tunnel address (null: not a device; the connection is closed). */
  identify(ip: string): AccessSubject | null;
  /** The URL policy in force (swapped when rules change). */
  policy(): UrlPolicy;
  log(e: WebLogEntry): void;
  clock: Clock;
  /** Opens a TCP connection to an origin (default Deno.connect). */
  connect?(host: string, port: number): Promise<Duplex>;
  /** Upload inspection and the largest body it sees whole. */
  uploads?: { check: UploadCheck; limit: number };
  /** SSL inspection, when on. */
  tls?: TlsInterceptor;
  /** Ports CONNECT may reach (default WEB_PORTS). */
  webPorts?: readonly number[];
}

/** What `ProxyEngine.decide` says about one request. */
export type RequestDecision =
  | { kind: "page"; page: PageReason }
  | { kind: "redirect"; location: string }
  | { kind: "bad"; code: string; message: string }
  | { kind: "forward"; verdict: UrlVerdict };

/** Ports CONNECT may reach. */
export const WEB_PORTS = [80, 443] as const;

const UPLOAD_METHODS = new Set(["POST", "PUT", "PATCH"]);

/** Counters for diagnostics and the benchmark. */
export interface ProxyStats {
  connections: number;
  requests: number;
  blocked: number;
  errors: number;
}

/** The engine; `handle` serves one accepted connection to its end. */
export class ProxyEngine {
  readonly stats: ProxyStats = { connections: 0, requests: 0, blocked: 0, errors: 0 };
  readonly #d: ProxyEngineDeps;
  readonly #tokens = new Map<string, { key: string; expires: number }>();
  readonly #acks = new Map<string, number>();

  constructor(deps: ProxyEngineDeps) {
    this.#d = deps;
  }

  /** Serves one client connection (from a device's tunnel address `src`). */
  async handle(conn: Duplex, src: string): Promise<void> {
    this.stats.connections++;
    const subject = this.#d.identify(src);
    if (!subject) {
      closeQuietly(conn);
      return;
    }
    const reader = new PeekReader(conn);
    try {
      const first = await reader.want(1);
      if (!first.length) return;
      if (first[0] === 0x16) {
        await this.#tls(reader, conn, subject, src, null, 443, "transparent");
      } else {
        await this.#http(reader, conn, subject, src, null);
      }
    } catch (e) {
      this.stats.errors++;
      log.debug("Proxy connection ended", { src, error: (e as Error).message });
    } finally {
      closeQuietly(conn);
    }
  }

  /**
   * Serves HTTP requests on `client`: `inside` is the CONNECT tunnel or TLS
   * session the request arrived in (null on a fresh connection).
   */
  async #http(
    reader: PeekReader,
    client: Duplex,
    subject: AccessSubject,
    src: string,
    inside: { host: string; port: number; tls: boolean } | null,
  ): Promise<void> {
    const head = await this.#readHead(reader, client);
    if (!head) return;
    let t: RequestTarget;
    try {
      t = targetOf(head, inside?.tls ?? false);
    } catch (e) {
      await this.#badRequest(client, (e as PortcullisError).code ?? "bad_request", e as Error);
      return;
    }
    if (inside && t.form !== "connect") {
      // Inside a tunnel the tunnel's target decides where the bytes go.
      t = { ...t, host: inside.host, port: inside.port };
    }
    this.stats.requests++;
    const mode: WebLogEntry["mode"] = inside?.tls
      ? "inspected"
      : t.form === "connect"
      ? "connect"
      : t.form === "absolute"
      ? "explicit"
      : inside
      ? "connect"
      : "transparent";
    const url = t.form === "connect"
      ? `${t.host}:${t.port}`
      : `${t.scheme}://${t.host}${defaultPort(t) ? "" : `:${t.port}`}${t.path}`;
    const base = this.entry(subject, src, mode, head.method, t);

    if (t.form === "connect") {
      if (!(this.#d.webPorts ?? WEB_PORTS).includes(t.port)) {
        this.#d.log({
          ...base,
          action: "block",
          rule: null,
          reason: `port ${t.port} is not a web port`,
          status: 403,
          categories: [],
        });
        this.stats.blocked++;
        await this.#page(client, head, {
          code: "port_not_allowed",
          host: t.host,
          url,
          rule: null,
        });
        return;
      }
      const v = this.#d.policy().evaluate({ host: t.host, path: null, method: null, subject });
      if (v.action === "block") {
        this.#blocked(base, v, 403, "blocked at CONNECT");
        await this.#page(client, head, { code: "url_blocked", host: t.host, url, rule: v.rule });
        return;
      }
      await writeAll(
        client,
        new TextEncoder().encode("HTTP/1.1 200 Connection Established\r\n\r\n"),
      );
      const next = await reader.want(1);
      if (!next.length) return;
      if (next[0] === 0x16) {
        await this.#tls(reader, client, subject, src, t.host, t.port, "connect");
      } else {
        await this.#http(reader, client, subject, src, { host: t.host, port: t.port, tls: false });
      }
      return;
    }

    const d = this.decide(subject, base, t, head.method, url);
    if (d.kind === "page") {
      await this.#page(client, head, d.page);
      return;
    }
    if (d.kind === "redirect") {
      await writeAll(
        client,
        new TextEncoder().encode(
          `HTTP/1.1 302 Found\r\nLocation: ${d.location}\r\nContent-Length: 0\r\n` +
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        ),
      );
      return;
    }
    if (d.kind === "bad") {
      await this.#badRequest(client, d.code, new Error(d.message));
      return;
    }
    await this.#forward(
      reader,
      client,
      head,
      t,
      subject,
      base,
      d.verdict,
      url,
      inside?.tls ?? false,
    );
  }

  /**
   * Decides one HTTP request (plain, or inside inspected TLS): the Continue
   * link of a caution page, then the URL policy. Pages and redirects are
   * logged here; a forwarded request is logged by whoever forwards it, with
   * its status and bytes (`logForwarded`).
   */
  decide(
    subject: AccessSubject,
    base: WebLogEntry,
    t: RequestTarget,
    method: string,
    url: string,
  ): RequestDecision {
    if (t.path.startsWith(`${CONTINUE_PATH}?`)) return this.#continue(t, subject, base);
    const v = this.#d.policy().evaluate({ host: t.host, path: t.path, method, subject });
    if (v.action === "block") {
      this.#blocked(base, v, 403, `blocked by rule "${v.rule}"`);
      return { kind: "page", page: { code: "url_blocked", host: t.host, url, rule: v.rule } };
    }
    if (v.action === "caution" && !this.#acked(subject, t.host, v.rule)) {
      const token = this.#token(subject, t.host, v.rule);
      const continueUrl = `${t.scheme}://${t.host}${defaultPort(t) ? "" : `:${t.port}`}` +
        `${CONTINUE_PATH}?t=${token}&to=${encodeURIComponent(t.path)}`;
      this.#d.log({
        ...base,
        action: "caution",
        rule: v.rule,
        categories: v.categories,
        reason: "caution page shown",
        status: 200,
      });
      return {
        kind: "page",
        page: { code: "caution", host: t.host, url, rule: v.rule, continueUrl },
      };
    }
    return { kind: "forward", verdict: v };
  }

  /** Logs a forwarded request with what came of it. */
  logForwarded(
    base: WebLogEntry,
    v: UrlVerdict,
    o: {
      status: number | null;
      bytesUp: number;
      bytesDown: number;
      uninspectedUpload?: boolean;
      /** The client left before the whole response was delivered (bytes down unknown: 0). */
      incomplete?: boolean;
    },
  ): void {
    const left = o.incomplete ? "; the client left before the end of the response" : "";
    this.#d.log({
      ...base,
      action: v.action,
      rule: v.rule,
      categories: v.categories,
      reason: (v.action === "caution"
        ? "continued after the caution page"
        : o.uninspectedUpload
        ? "allowed; upload larger than the inspection limit was not inspected"
        : v.rule
        ? `allowed by rule "${v.rule}"`
        : "allowed: no rule matched") + left,
      status: o.status,
      bytesUp: o.bytesUp,
      bytesDown: o.bytesDown,
    });
  }

  /** Logs a request the caller refused after the URL policy allowed it (DLP, origin certificate). */
  logBlocked(
    base: WebLogEntry,
    v: UrlVerdict,
    rule: string | null,
    reason: string,
    status = 403,
  ): void {
    this.stats.blocked++;
    this.#d.log({ ...base, action: "block", rule, categories: v.categories, reason, status });
  }

  /** Sends the request to the origin and the answer back, inspecting uploads first. */
  async #forward(
    reader: PeekReader,
    client: Duplex,
    head: RequestHead,
    t: RequestTarget,
    subject: AccessSubject,
    base: WebLogEntry,
    v: UrlVerdict,
    url: string,
    tls: boolean,
  ): Promise<void> {
    const cl = header(head, "content-length");
    const chunked = /chunked/i.test(header(head, "transfer-encoding") ?? "");
    const length = cl === null ? 0 : Number(cl);
    if (cl !== null && (!/^\d{1,15}$/.test(cl.trim()))) {
      await this.#badRequest(client, "bad_length", new Error(`Bad Content-Length "${cl}"`));
      return;
    }
    let body: Uint8Array | null = null;
    let up = 0;
    const up_ = this.#d.uploads;
    if (up_ && UPLOAD_METHODS.has(head.method) && (length > 0 || chunked)) {
      const whole = await readWholeBody(
        reader,
        chunked ? { chunked: true } : { length },
        up_.limit,
      );
      if (whole) {
        // An inspection that fails blocks: an upload is never let through unseen by accident.
        const outcome = await up_.check(whole.bytes, {
          subject,
          contentType: header(head, "content-type"),
          fileName: fileNameOf(t.path),
          host: t.host,
          url,
        }).catch((e): UploadOutcome => {
          log.warn("Upload inspection failed", { host: t.host, error: (e as Error).message });
          return { block: true, rule: null, reason: "the upload could not be inspected" };
        });
        if (outcome.block) {
          this.stats.blocked++;
          this.#d.log({
            ...base,
            action: "block",
            rule: outcome.rule,
            categories: v.categories,
            reason: `upload blocked: ${outcome.reason}`,
            status: 403,
            bytesUp: whole.wireBytes,
          });
          await this.#page(client, head, {
            code: "dlp_blocked",
            host: t.host,
            url,
            rule: outcome.rule,
            detail: outcome.reason,
          });
          return;
        }
        body = whole.bytes;
      }
      // Larger than the limit: forwarded as it streams, not inspected (the log says so).
    }
    let origin: Duplex;
    try {
      origin = await this.#connect(t.host, t.port, tls);
    } catch (e) {
      const err = e as Error;
      const cert = /certificate|UnknownIssuer|CertExpired|NotValidForName|invalid peer/i.test(
        err.message,
      );
      this.#d.log({
        ...base,
        action: "block",
        rule: null,
        categories: v.categories,
        reason: cert
          ? `origin certificate invalid: ${err.message.slice(0, 200)}`
          : `origin unreachable: ${err.message.slice(0, 200)}`,
        status: cert ? 403 : 502,
      });
      await this.#page(client, head, {
        code: cert ? "origin_certificate_invalid" : "origin_unreachable",
        host: t.host,
        url,
        rule: null,
        detail: err.message.slice(0, 200),
      });
      return;
    }
    let status: number | null = null;
    try {
      const extra: [string, string][] = [];
      const sendHead = body
        ? {
          ...head,
          headers: head.headers.filter(([k]) => !/^(content-length|transfer-encoding)$/i.test(k)),
        }
        : head;
      if (body) extra.push(["Content-Length", String(body.length)]);
      const headBytes = new TextEncoder().encode(originHead(sendHead, t, extra));
      await writeAll(origin, headBytes);
      up = headBytes.length;
      let upload: Promise<number> = Promise.resolve(0);
      if (body) {
        await writeAll(origin, body);
        up += body.length;
      } else if (chunked) {
        upload = pipe(reader, origin, { halfClose: false });
      } else if (length > 0) {
        upload = pipe(reader, origin, { limit: length, halfClose: false });
      }
      const down = await pipe(origin, client, {
        onFirst: (chunk) => {
          const m = /^HTTP\/1\.[01] (\d{3})/.exec(new TextDecoder().decode(chunk.subarray(0, 16)));
          status = m ? Number(m[1]) : null;
        },
        halfClose: false,
      });
      closeQuietly(origin);
      up += await upload;
      const uninspectedUpload = body === null &&
        !!(up_ && UPLOAD_METHODS.has(head.method) && (length > 0 || chunked));
      this.logForwarded(base, v, { status, bytesUp: up, bytesDown: down, uninspectedUpload });
    } finally {
      closeQuietly(origin);
    }
  }

  /** A TLS connection: decided by host (CONNECT target or SNI), then inspected or passed through. */
  async #tls(
    reader: PeekReader,
    client: Duplex,
    subject: AccessSubject,
    src: string,
    connectHost: string | null,
    port: number,
    mode: "connect" | "transparent",
  ): Promise<void> {
    let need = tlsRecordLength(await reader.want(5));
    if (need === null) return;
    need = Math.min(need, 16384 + 5);
    const rec = await reader.want(need);
    const hello = parseClientHello(rec);
    const host = connectHost ?? hello?.serverName ?? null;
    const entry = this.entry(subject, src, mode, null, {
      form: "connect",
      scheme: "https",
      host: host ?? "(no server name)",
      port,
      path: "/",
    });
    if (!host) {
      this.#d.log({
        ...entry,
        path: null,
        action: "block",
        rule: null,
        categories: [],
        reason: "TLS without a server name cannot be decided",
        status: null,
      });
      return;
    }
    this.stats.requests++;
    const v = this.#d.policy().evaluate({ host, path: null, method: null, subject });
    if (v.action === "block") {
      // Without inspection there is no way to show a page inside TLS: the connection ends.
      this.#blocked({ ...entry, path: null }, v, null, `blocked by rule "${v.rule}" (TLS by name)`);
      return;
    }
    if (this.#d.tls) {
      const handled = await this.#d.tls({
        reader,
        client,
        host,
        port,
        alpn: hello?.alpn ?? [],
        subject,
        src,
        mode,
      });
      if (handled) return;
    }
    let origin: Duplex;
    try {
      origin = await this.#connect(host, port, false);
    } catch (e) {
      this.#d.log({
        ...entry,
        path: null,
        action: "block",
        rule: null,
        categories: v.categories,
        reason: `origin unreachable: ${(e as Error).message.slice(0, 200)}`,
        status: null,
      });
      return;
    }
    try {
      const [up, down] = await Promise.all([pipe(reader, origin), pipe(origin, client)]);
      this.#d.log({
        ...entry,
        path: null,
        action: v.action,
        rule: v.rule,
        categories: v.categories,
        reason: `${v.rule ? `rule "${v.rule}"` : "no rule matched"}; TLS passed through by name${
          v.action === "caution" ? " (caution needs inspection to show its page)" : ""
        }`,
        status: null,
        bytesUp: up,
        bytesDown: down,
      });
    } finally {
      closeQuietly(origin);
    }
  }

  /** The caution page's Continue link: acknowledges and redirects to the page asked for. */
  #continue(t: RequestTarget, subject: AccessSubject, base: WebLogEntry): RequestDecision {
    const q = new URLSearchParams(t.path.slice(t.path.indexOf("?") + 1));
    const token = q.get("t") ?? "";
    const to = q.get("to") ?? "/";
    const rec = this.#tokens.get(token);
    const now = this.#d.clock.now();
    if (!rec || rec.expires < now || !rec.key.startsWith(`${subject.deviceId}|${t.host}|`)) {
      return {
        kind: "bad",
        code: "invalid_continue",
        message: "This Continue link is not valid for this device and site",
      };
    }
    this.#tokens.delete(token);
    this.#acks.set(rec.key, now + CAUTION_TTL_MS);
    this.#d.log({
      ...base,
      path: CONTINUE_PATH,
      action: "caution",
      rule: rec.key.split("|").slice(2).join("|") || null,
      categories: [],
      reason: "caution acknowledged",
      status: 302,
    });
    // Only a path on the same site: the link cannot send anyone elsewhere.
    const safe = to.startsWith("/") && !to.startsWith("//") && !/[\r\n\\]/.test(to);
    return { kind: "redirect", location: safe ? to : "/" };
  }

  #ackKey(subject: AccessSubject, host: string, rule: string | null): string {
    return `${subject.deviceId}|${host}|${rule ?? ""}`;
  }

  #acked(subject: AccessSubject, host: string, rule: string | null): boolean {
    const until = this.#acks.get(this.#ackKey(subject, host, rule));
    return until !== undefined && until > this.#d.clock.now();
  }

  #token(subject: AccessSubject, host: string, rule: string | null): string {
    const now = this.#d.clock.now();
    if (this.#tokens.size > 10_000) {
      for (const [k, r] of this.#tokens) if (r.expires < now) this.#tokens.delete(k);
      if (this.#tokens.size > 10_000) this.#tokens.clear();
    }
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const token = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    this.#tokens.set(token, { key: this.#ackKey(subject, host, rule), expires: now + 600_000 });
    return token;
  }

  async #connect(host: string, port: number, tls: boolean): Promise<Duplex> {
    if (tls) throw new Error("TLS origins are reached by the inspector");
    if (this.#d.connect) return await this.#d.connect(host, port);
    const conn = await Deno.connect({ hostname: host, port });
    // Relayed bytes go out as they come: Nagle's algorithm would hold small
    // writes for the peer's delayed ACK (40 ms a request).
    conn.setNoDelay(true);
    return conn;
  }

  async #readHead(reader: PeekReader, client: Duplex): Promise<RequestHead | null> {
    for (;;) {
      const b = reader.buffered;
      const end = headEnd(b);
      if (end > 0) {
        try {
          return parseHead(reader.take(end));
        } catch (e) {
          await this.#badRequest(client, (e as PortcullisError).code ?? "bad_request", e as Error);
          return null;
        }
      }
      if (b.length > MAX_HEAD) {
        await this.#badRequest(
          client,
          "head_too_large",
          new Error("The request head is larger than 64 KiB"),
        );
        return null;
      }
      if (!(await reader.fill())) return null;
    }
  }

  async #badRequest(client: Duplex, code: string, e: Error): Promise<void> {
    const body = JSON.stringify({ error: code, message: e.message });
    await writeAll(
      client,
      new TextEncoder().encode(
        `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${
          new TextEncoder().encode(body).length
        }\r\nConnection: close\r\n\r\n${body}`,
      ),
    ).catch(() => {});
  }

  async #page(client: Duplex, head: RequestHead, r: PageReason): Promise<void> {
    await writeAll(
      client,
      pageResponse(r, header(head, "accept"), header(head, "accept-language")),
    ).catch(() => {});
  }

  #blocked(base: WebLogEntry, v: UrlVerdict, status: number | null, reason: string): void {
    this.stats.blocked++;
    this.#d.log({
      ...base,
      action: "block",
      rule: v.rule,
      categories: v.categories,
      reason,
      status,
    });
  }

  /** A web log entry for a request of `subject` (to be completed by the caller). */
  entry(
    subject: AccessSubject,
    src: string,
    mode: WebLogEntry["mode"],
    method: string | null,
    t: RequestTarget,
  ): WebLogEntry {
    const q = t.path.indexOf("?");
    return {
      at: this.#d.clock.now(),
      deviceId: subject.deviceId,
      deviceName: subject.deviceName,
      user: subject.user,
      src,
      mode,
      method: t.form === "connect" ? "CONNECT" : method,
      scheme: t.scheme,
      host: t.host,
      port: t.port,
      path: t.form === "connect" ? null : (q >= 0 ? t.path.slice(0, q) : t.path).slice(0, 2048),
      categories: [],
      action: "allow",
      rule: null,
      reason: "",
      status: null,
      bytesUp: 0,
      bytesDown: 0,
    };
  }
}

function defaultPort(t: RequestTarget): boolean {
  return (t.scheme === "http" && t.port === 80) || (t.scheme === "https" && t.port === 443);
}

/** The last path segment without its query, for incidents ("upload.docx"). */
function fileNameOf(path: string): string {
  const p = path.split("?")[0];
  const seg = p.slice(p.lastIndexOf("/") + 1);
  try {
    return decodeURIComponent(seg).slice(0, 200) || "body";
  } catch {
    return seg.slice(0, 200) || "body";
  }
}
