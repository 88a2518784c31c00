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
 *   through to one address by naming another; and only to addresses on the
 *   internet, never the edge's own, loopback or private ones
 *   (origin_reach.ts).
 *
 * Every request (every TLS connection that is not inspected) is decided by
 * the URL policy with the identity of the tunnel it came from and logged
 * with the bytes each way. Blocks answer with the block page, caution with
 * an interstitial whose Continue link is a one-time token bound to the
 * device, host and rule. Uploads are inspected for sensitive data before
 * any of their bytes reach the origin.
 */
import type { PortcullisError } from "../errors.ts";
import { logger } from "../log.ts";
import type { AccessSubject } from "../policy/access.ts";
import type { ProxyEngineDeps, ProxyStats, RequestDecision, WebLogEntry } from "./engine_types.ts";
import { CautionBook, CONTINUE_PATH } from "./caution.ts";
import { type ForwardHost, forwardRequest } from "./forward.ts";
import {
  headEnd,
  MAX_HEAD,
  parseHead,
  type RequestHead,
  type RequestTarget,
  targetOf,
} from "./http_head.ts";
import { badRequest, page, redirect } from "./replies.ts";
import { parseClientHello, tlsRecordLength } from "./sni.ts";
import { closeQuietly, type Duplex, PeekReader, pipe, writeAll } from "./stream.ts";
import type { UrlVerdict } from "./url_policy.ts";
import { OriginReach, OriginRefused } from "./origin_reach.ts";

const log = logger("proxy");

export type {
  ProxyEngineDeps,
  ProxyStats,
  RequestDecision,
  TlsInterceptor,
  UploadCheck,
  UploadOutcome,
  WebLogEntry,
} from "./engine_types.ts";
export { CAUTION_TTL_MS, CONTINUE_PATH } from "./caution.ts";

/** Ports CONNECT may reach. */
export const WEB_PORTS = [80, 443] as const;

/** The engine; `handle` serves one accepted connection to its end. */
export class ProxyEngine {
  readonly stats: ProxyStats = { connections: 0, requests: 0, blocked: 0, errors: 0 };
  readonly #d: ProxyEngineDeps;
  readonly #caution: CautionBook;
  readonly #forwardHost: ForwardHost;
  readonly #reach: OriginReach;

  constructor(deps: ProxyEngineDeps) {
    this.#d = deps;
    this.#reach = deps.reach ?? new OriginReach();
    this.#caution = new CautionBook(deps.clock);
    this.#forwardHost = {
      uploads: deps.uploads,
      connect: (host, port) => this.#connect(host, port),
      log: (e) => deps.log(e),
      logForwarded: (base, v, o) => this.logForwarded(base, v, o),
      countBlocked: () => this.stats.blocked++,
    };
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
      await badRequest(client, (e as PortcullisError).code ?? "bad_request", e as Error);
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
        await page(client, head, {
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
        await page(client, head, { code: "url_blocked", host: t.host, url, rule: v.rule });
        return;
      }
      // Refused before the tunnel is up, so the client hears why; the
      // connect itself checks again (the address it uses is the one checked).
      // An injected connect decides by itself where names lead.
      const refused = this.#d.connect
        ? null
        : await this.#reach.addresses(t.host).then(() => null, (e) => e);
      if (refused instanceof OriginRefused) {
        this.#d.log({
          ...base,
          action: "block",
          rule: null,
          reason: `origin refused: ${refused.message}`,
          status: 403,
          categories: v.categories,
        });
        this.stats.blocked++;
        await page(client, head, {
          code: refused.code,
          host: t.host,
          url,
          rule: null,
          detail: refused.message,
        });
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
      await page(client, head, d.page);
      return;
    }
    if (d.kind === "redirect") {
      await redirect(client, d.location);
      return;
    }
    if (d.kind === "bad") {
      await badRequest(client, d.code, new Error(d.message));
      return;
    }
    await forwardRequest(this.#forwardHost, {
      reader,
      client,
      head,
      t,
      subject,
      base,
      v: d.verdict,
      url,
      tls: inside?.tls ?? false,
    });
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
    if (v.action === "caution" && !this.#caution.acked(subject, t.host, v.rule)) {
      const token = this.#caution.token(subject, t.host, v.rule);
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
    /** Null where no HTTP answer was given (a TLS connection refused). */
    status: number | null = 403,
  ): void {
    this.stats.blocked++;
    this.#d.log({ ...base, action: "block", rule, categories: v.categories, reason, status });
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
        verdict: v,
        entry: { ...entry, path: null },
        subject,
        src,
        mode,
      });
      if (handled) return;
    }
    let origin: Duplex;
    try {
      origin = await this.#connect(host, port);
    } catch (e) {
      this.#d.log({
        ...entry,
        path: null,
        action: "block",
        rule: null,
        categories: v.categories,
        reason: `${e instanceof OriginRefused ? "origin refused" : "origin unreachable"}: ${
          (e as Error).message.slice(0, 200)
        }`,
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
    const r = this.#caution.redeem(t.path.slice(t.path.indexOf("?") + 1), subject, t.host);
    if (!r.ok) {
      return {
        kind: "bad",
        code: "invalid_continue",
        message: "This Continue link is not valid for this device and site",
      };
    }
    this.#d.log({
      ...base,
      path: CONTINUE_PATH,
      action: "caution",
      rule: r.rule,
      categories: [],
      reason: "caution acknowledged",
      status: 302,
    });
    return { kind: "redirect", location: r.location };
  }

  async #connect(host: string, port: number): Promise<Duplex> {
    if (this.#d.connect) return await this.#d.connect(host, port);
    const conn = await this.#reach.connect(host, port);
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
          await badRequest(client, (e as PortcullisError).code ?? "bad_request", e as Error);
          return null;
        }
      }
      if (b.length > MAX_HEAD) {
        await badRequest(
          client,
          "head_too_large",
          new Error("The request head is larger than 64 KiB"),
        );
        return null;
      }
      if (!(await reader.fill())) return null;
    }
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
