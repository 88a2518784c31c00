/**
 * A small Microsoft Graph client for drive scanning: JSON requests with the
 * app's bearer token, `@odata.nextLink` / `@odata.deltaLink` paging,
 * throttling (429, 503 and 504 wait for Retry-After — seconds or an HTTP
 * date — or back off exponentially when it is absent), file content
 * download through the pre-authenticated redirect Graph answers with, and
 * the calls remediation needs (move, permissions).
 *
 * The base URL is configurable (national clouds; tests use an emulator),
 * and every link Graph hands back must stay on that origin: the bearer
 * token never goes anywhere else. Content downloads follow the redirect
 * without the token, as Graph documents.
 */
import { PortcullisError } from "../errors.ts";
import type { FetchFn } from "./fetch_network.ts";

/** Microsoft's public-cloud Graph endpoint. */
export const DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0";

/** A refused or failed Graph request. */
export class GraphError extends PortcullisError {
  /** HTTP status, or 0 when no answer came. */
  readonly httpStatus: number;
  /** Graph's error code (e.g. "accessDenied"), when it sent one. */
  readonly graphCode: string | null;
  constructor(httpStatus: number, graphCode: string | null, message: string) {
    super("graph_request_failed", message, 502);
    this.httpStatus = httpStatus;
    this.graphCode = graphCode;
  }
}

/** A throttled answer the client waited out. */
export interface ThrottleEvent {
  status: number;
  /** What the server asked for (ms), or null when it gave no Retry-After. */
  retryAfterMs: number | null;
  /** How long the client waited (ms). */
  waitedMs: number;
}

/** Options of `GraphClient`. */
export interface GraphOptions {
  /** e.g. https://graph.microsoft.com/v1.0 */
  baseUrl?: string;
  /** The bearer token for the next request (MSAL caches and renews it). */
  token: () => Promise<string>;
  fetch?: FetchFn;
  /** Stops waits and requests (the edge stopping). */
  signal?: AbortSignal;
  /** Attempts per request, throttled ones included (default 8). */
  maxAttempts?: number;
  /** Longest single wait the client accepts (default 5 minutes); above it the request fails. */
  maxWaitMs?: number;
  /** Told about every throttled answer. */
  onThrottle?: (e: ThrottleEvent) => void;
  /** Per-request timeout (default 60 s). */
  timeoutMs?: number;
}

/** One page of a collection. */
export interface GraphPage<T> {
  value: T[];
  nextLink: string | null;
  deltaLink: string | null;
}

/** Parses Retry-After (delta seconds or an HTTP date) into ms from `now`. */
export function parseRetryAfter(v: string | null, now: number): number | null {
  if (v === null) return null;
  const t = v.trim();
  if (/^\d{1,9}$/.test(t)) return Number(t) * 1000;
  // An HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT"); anything else is no answer.
  if (!/^[A-Za-z]{3},? [\w -]{6,24} \d{2}:\d{2}:\d{2} GMT$/.test(t)) return null;
  const at = Date.parse(t);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function abortable(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const id = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(id);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

const RETRY_STATUS = new Set([429, 503, 504]);

/** Graph over fetch with paging and throttling. */
export class GraphClient {
  readonly baseUrl: string;
  readonly #origin: string;
  readonly #o: GraphOptions;
  readonly #fetch: FetchFn;

  constructor(opts: GraphOptions) {
    this.baseUrl = (opts.baseUrl ?? DEFAULT_GRAPH_URL).replace(/\/+$/, "");
    this.#origin = new URL(this.baseUrl).origin;
    this.#o = opts;
    this.#fetch = opts.fetch ?? fetch;
  }

  /** An absolute URL for `pathOrLink`, refusing links off the Graph origin. */
  resolve(pathOrLink: string): string {
    if (pathOrLink.startsWith("/")) return this.baseUrl + pathOrLink;
    let u: URL;
    try {
      u = new URL(pathOrLink);
    } catch {
      throw new GraphError(
        0,
        null,
        `Refused a Graph link that is not a URL: ${pathOrLink.slice(0, 80)}`,
      );
    }
    if (u.origin !== this.#origin) {
      throw new GraphError(
        0,
        null,
        `Refused to follow a Graph link to ${u.origin}: it is not the Graph endpoint ${this.#origin}`,
      );
    }
    return u.toString();
  }

  /** Sends one request, waiting out throttling; returns the final response. */
  async #send(
    url: string,
    init: { method: string; body?: unknown; auth: boolean; redirect?: RequestRedirect },
  ): Promise<Response> {
    const max = this.#o.maxAttempts ?? 8;
    const maxWait = this.#o.maxWaitMs ?? 300_000;
    for (let attempt = 1;; attempt++) {
      this.#o.signal?.throwIfAborted();
      const headers = new Headers({ accept: "application/json" });
      if (init.auth) headers.set("authorization", `Bearer ${await this.#o.token()}`);
      if (init.body !== undefined) headers.set("content-type", "application/json");
      let res: Response;
      try {
        const timeout = AbortSignal.timeout(this.#o.timeoutMs ?? 60_000);
        res = await this.#fetch(url, {
          method: init.method,
          headers,
          body: init.body === undefined ? undefined : JSON.stringify(init.body),
          redirect: init.redirect ?? "follow",
          signal: this.#o.signal ? AbortSignal.any([this.#o.signal, timeout]) : timeout,
        });
      } catch (e) {
        this.#o.signal?.throwIfAborted();
        if (attempt >= max) {
          throw new GraphError(
            0,
            null,
            `Cannot reach Graph at ${new URL(url).origin}: ${(e as Error).message}`,
          );
        }
        await abortable(Math.min(2 ** attempt * 500, 30_000), this.#o.signal);
        continue;
      }
      if (!RETRY_STATUS.has(res.status)) return res;
      const asked = parseRetryAfter(res.headers.get("retry-after"), Date.now());
      await res.body?.cancel();
      const wait = asked ?? Math.min(2 ** attempt * 1000, 60_000);
      if (attempt >= max || wait > maxWait) {
        throw new GraphError(
          res.status,
          "throttled",
          `Graph kept throttling ${init.method} ${
            new URL(url).pathname
          } (HTTP ${res.status}, ${attempt} attempts, asked to wait ${Math.round(wait / 1000)} s)`,
        );
      }
      await abortable(wait, this.#o.signal);
      this.#o.onThrottle?.({ status: res.status, retryAfterMs: asked, waitedMs: wait });
    }
  }

  async #fail(res: Response, what: string): Promise<never> {
    let code: string | null = null;
    let message = "";
    try {
      const j = await res.json();
      code = typeof j?.error?.code === "string" ? j.error.code.slice(0, 64) : null;
      message = typeof j?.error?.message === "string" ? j.error.message.slice(0, 200) : "";
    } catch {
      // no JSON body
    }
    throw new GraphError(
      res.status,
      code,
      `Graph refused ${what}: HTTP ${res.status}${code ? ` ${code}` : ""}${
        message ? `: ${message}` : ""
      }`,
    );
  }

  /** GET a JSON resource. */
  async get<T>(pathOrLink: string): Promise<T> {
    const url = this.resolve(pathOrLink);
    const res = await this.#send(url, { method: "GET", auth: true });
    if (!res.ok) return this.#fail(res, `GET ${new URL(url).pathname}`);
    return await res.json() as T;
  }

  /** One page of a collection or a delta query. */
  async page<T>(pathOrLink: string): Promise<GraphPage<T>> {
    const j = await this.get<Record<string, unknown>>(pathOrLink);
    const link = (k: string) => (typeof j[k] === "string" ? this.resolve(j[k] as string) : null);
    return {
      value: Array.isArray(j.value) ? j.value as T[] : [],
      nextLink: link("@odata.nextLink"),
      deltaLink: link("@odata.deltaLink"),
    };
  }

  /** Every item of a (small) collection, following nextLinks up to `limit` items. */
  async all<T>(path: string, limit = 100_000): Promise<T[]> {
    const out: T[] = [];
    let next: string | null = path;
    while (next && out.length < limit) {
      const p: GraphPage<T> = await this.page<T>(next);
      out.push(...p.value);
      next = p.nextLink;
    }
    return out;
  }

  /** A JSON request other than GET (PATCH, POST, DELETE); null for 204. */
  async send<T>(method: string, path: string, body?: unknown): Promise<T | null> {
    const url = this.resolve(path);
    const res = await this.#send(url, { method, body, auth: true });
    if (!res.ok) return this.#fail(res, `${method} ${new URL(url).pathname}`);
    if (res.status === 204) {
      await res.body?.cancel();
      return null;
    }
    return await res.json() as T;
  }

  /**
   * A file's content, at most `limit` bytes (null when it is larger).
   * Graph answers `/content` with a 302 to a short-lived pre-authenticated
   * URL, fetched without the token.
   */
  async download(driveId: string, itemId: string, limit: number): Promise<Uint8Array | null> {
    const url = this.resolve(
      `/drives/${encodeURIComponent(driveId)}/items/${encodeURIComponent(itemId)}/content`,
    );
    let res = await this.#send(url, { method: "GET", auth: true, redirect: "manual" });
    if (res.status >= 300 && res.status < 400) {
      const loc = res.headers.get("location");
      await res.body?.cancel();
      // Graph's pre-authenticated download URLs are https; nothing else is followed.
      if (!loc || !/^https:\/\//i.test(loc)) {
        throw new GraphError(
          res.status,
          null,
          `Graph sent no download location for item ${itemId}`,
        );
      }
      res = await this.#send(loc, { method: "GET", auth: false });
    }
    if (!res.ok) return this.#fail(res, `the content of item ${itemId}`);
    const declared = Number(res.headers.get("content-length") ?? "NaN");
    if (declared > limit) {
      await res.body?.cancel();
      return null;
    }
    const reader = res.body!.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        await reader.cancel();
        return null;
      }
      chunks.push(value);
    }
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}
