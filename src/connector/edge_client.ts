/**
 * The connector's REST client of the edge API (DESIGN.md §3, src/http/api/schemas.ts).
 *
 * Trust comes from the enrolment key, not from the system's CA store: the key
 * carries the SHA-256 of the edge CA certificate, we fetch the CA over plain
 * HTTP from the bootstrap URL, compare hashes in constant time, and from then
 * on every HTTPS call goes through a Deno HTTP client that trusts that one CA
 * only. A TLS-inspecting middlebox re-signing the edge's certificate is thus
 * refused with an error that says so, instead of silently trusted.
 *
 * Transport is injectable (`fetch`) so tests can run the client against a
 * Hono app in-process; the default is the real `fetch` with the pinned client.
 */
import type { z } from "zod";
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import { InputError, PortcullisError } from "../errors.ts";
import {
  C2cRegisterResponse,
  EnrollmentKeyPayload,
  type EnrollRequest,
  EnrollResponse,
  ErrorBody,
  type HeartbeatRequest,
  PolicyResponse,
  type PostureReport,
} from "../http/api/schemas.ts";
import type { PolicyBundle } from "../policy/types.ts";
import { fromBase64, sha256Hex, toBase64 } from "./identity.ts";

/** How the client sends a request; the default is `fetch` through the pinned client. */
export type FetchLike = (req: Request) => Promise<Response>;

/** The edge answered with its error body (`{"error":{"code","message"}}`). */
export class EdgeApiError extends PortcullisError {
  constructor(code: string, message: string, status: number) {
    super(code, message, status);
  }
}

/** The edge could not be reached at all (DNS, refused, timeout, reset). */
export class EdgeUnreachableError extends PortcullisError {
  constructor(message: string, options?: ErrorOptions) {
    super("edge_unreachable", message, 503, options);
  }
}

/** The edge's TLS certificate is not signed by the pinned CA. */
export class EdgeTlsError extends PortcullisError {
  constructor(message: string, options?: ErrorOptions) {
    super("edge_tls_untrusted", message, 502, options);
  }
}

/** The CA served at the bootstrap URL is not the one the enrolment key names. */
export class CaPinMismatchError extends PortcullisError {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string, url: string) {
    super(
      "ca_pin_mismatch",
      `Cannot trust the edge CA from ${url}: its SHA-256 is ${actual} but the enrolment key expects ${expected}; a TLS-inspecting middlebox or proxy may be in the path`,
      502,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * True when the edge refused the device credential itself (unknown, deleted,
 * or presented from other hardware): retrying cannot help, re-enrolment can.
 * A disabled device (403 device_disabled) is not such a refusal: the admin may
 * enable it again, so the enrolment is kept.
 */
export function isCredentialRefused(err: unknown): boolean {
  return err instanceof EdgeApiError &&
    (err.status === 401 || err.code === "device_fingerprint_mismatch");
}

const KEY_PREFIX = "pc1.";

/** Parses an enrolment key `pc1.<base64url(JSON)>`, naming what is wrong with a bad one. */
export function parseEnrollmentKey(text: string): EnrollmentKeyPayload {
  const key = text.trim();
  if (!key.startsWith(KEY_PREFIX)) {
    throw new InputError(
      "bad_enrollment_key",
      `Cannot parse enrolment key: expected it to start with "${KEY_PREFIX}", got "${
        key.slice(0, 8)
      }…"`,
    );
  }
  const body = key.slice(KEY_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(body)) {
    throw new InputError(
      "bad_enrollment_key",
      'Cannot parse enrolment key: the part after "pc1." is not base64url (was it cut or wrapped when copied?)',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(fromBase64(body)));
  } catch {
    throw new InputError(
      "bad_enrollment_key",
      "Cannot parse enrolment key: its payload is not valid JSON (was it cut when copied?)",
    );
  }
  const r = EnrollmentKeyPayload.safeParse(json);
  if (!r.success) {
    const what = r.error.issues.map((i) => `${i.path.join(".") || "payload"}: ${i.message}`)
      .join("; ");
    throw new InputError("bad_enrollment_key", `Cannot use enrolment key: ${what}`);
  }
  const u = new URL(r.data.u);
  if (u.protocol !== "https:") {
    throw new InputError(
      "bad_enrollment_key",
      `Cannot use enrolment key: edge URL "${r.data.u}" must use https`,
    );
  }
  return r.data;
}

/** The plain-HTTP bootstrap base URL of a key (`b`, or http://<host of u>:8081). */
export function bootstrapBase(p: EnrollmentKeyPayload): string {
  if (p.b) return p.b.replace(/\/+$/, "");
  const u = new URL(p.u);
  return `http://${u.hostname}:8081`; // hostname keeps the brackets of an IPv6 literal
}

/** Decodes the first certificate of a PEM text to DER bytes. */
export function pemToDer(pem: string): Uint8Array {
  const m = pem.match(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/);
  if (!m) {
    throw new InputError("bad_ca_pem", "Cannot read the edge CA: no PEM certificate found");
  }
  return fromBase64(m[1].replace(/\s+/g, ""));
}

/** Encodes DER certificate bytes as one PEM block with 64-column lines. */
export function derToPem(der: Uint8Array): string {
  const b64 = toBase64(der);
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

/**
 * Returns the DER of the only certificate in a PEM text. A bootstrap answer
 * travels over plain HTTP, so anything beyond the one pinned certificate (a
 * second CA appended by a middlebox, a key, other PEM blocks) is refused
 * rather than trusted.
 */
export function singleCertDer(pem: string): Uint8Array {
  const blocks = pem.match(/-----BEGIN [A-Z0-9 ]+-----/g) ?? [];
  const certs = blocks.filter((b) => b === "-----BEGIN CERTIFICATE-----").length;
  if (blocks.length !== 1 || certs !== 1) {
    throw new InputError(
      "bad_ca_pem",
      `Cannot use the edge CA: the PEM must hold exactly one certificate, found ${certs} ` +
        `certificate(s) in ${blocks.length} PEM block(s)`,
    );
  }
  return pemToDer(pem);
}

/** SHA-256 hex of a PEM certificate's DER encoding (the pin in an enrolment key). */
export function caFingerprint(pem: string): Promise<string> {
  return sha256Hex(pemToDer(pem));
}

/** Constant-time comparison of two strings of equal length. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/**
 * Fetches the edge CA from the bootstrap URL and returns its PEM only if its
 * DER hash equals the key's pin.
 */
export async function fetchPinnedCa(
  p: EnrollmentKeyPayload,
  opts: { fetch?: FetchLike; timeoutMs?: number } = {},
): Promise<string> {
  const url = `${bootstrapBase(p)}/ca.pem`;
  const doFetch = opts.fetch ?? ((req: Request) => fetch(req));
  let res: Response;
  try {
    res = await doFetch(new Request(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 15000) }));
  } catch (err) {
    throw new EdgeUnreachableError(
      `Cannot fetch the edge CA from ${url}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new EdgeUnreachableError(`Cannot fetch the edge CA from ${url}: HTTP ${res.status}`);
  }
  const pem = await res.text();
  if (pem.length > 64 * 1024) {
    throw new InputError("bad_ca_pem", `Cannot use the edge CA from ${url}: it is over 64 KiB`);
  }
  let der: Uint8Array;
  try {
    der = singleCertDer(pem);
  } catch (err) {
    throw new InputError("bad_ca_pem", `${(err as Error).message} (from ${url})`, 400, {
      cause: err,
    });
  }
  const actual = await sha256Hex(der);
  if (!constantTimeEqual(actual, p.c)) throw new CaPinMismatchError(p.c, actual, url);
  // Pass on only the certificate that was hashed, re-encoded from its DER.
  return derToPem(der);
}

/** Result of a conditional policy fetch. */
export type PolicyFetch =
  | { status: "updated"; policy: PolicyBundle; etag: string | null }
  | { status: "unchanged" };

/** Options for EdgeClient. */
export interface EdgeClientOptions {
  /** The `u` of the enrolment key (with or without a trailing /api/v1). */
  apiUrl: string;
  /** The pinned edge CA (PEM). */
  caPem: string;
  /** Transport override (tests); defaults to fetch over a client trusting only `caPem`. */
  fetch?: FetchLike;
  clock?: Clock;
  /** Per-request timeout (default 15 s); the policy stream has none. */
  timeoutMs?: number;
  credential?: string | null;
  fingerprintHash?: string | null;
}

/** Options for followPolicy. */
export interface FollowOptions {
  signal: AbortSignal;
  /** Called with each version the stream announces. */
  onVersion: (version: string) => void;
  /** Called when the stream breaks, before the next reconnect. */
  onError?: (err: Error) => void;
  /** Called when the edge announces on the stream that this device was disabled or deleted. */
  onRevoked?: (reason: string) => void;
  /** Called each time the stream (re)connects. */
  onConnected?: () => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** REST client of the edge API with a pinned CA, device credential and clock-skew tracking. */
export class EdgeClient {
  readonly base: string;
  readonly caPem: string;
  #fetch: FetchLike;
  #httpClient: Deno.HttpClient | null = null;
  #clock: Clock;
  #timeoutMs: number;
  #credential: string | null;
  #fpHash: string | null;
  #skewMs: number | null = null;

  constructor(opts: EdgeClientOptions) {
    this.base = opts.apiUrl.replace(/\/+$/, "").replace(/\/api\/v1$/, "");
    this.caPem = opts.caPem;
    this.#clock = opts.clock ?? systemClock;
    this.#timeoutMs = opts.timeoutMs ?? 15000;
    this.#credential = opts.credential ?? null;
    this.#fpHash = opts.fingerprintHash ?? null;
    if (opts.fetch) {
      this.#fetch = opts.fetch;
    } else {
      // Trust only the first (pinned) certificate even if a stored PEM holds more.
      const client = Deno.createHttpClient({ caCerts: [derToPem(pemToDer(opts.caPem))] });
      this.#httpClient = client;
      this.#fetch = (req) => fetch(req, { client });
    }
  }

  /** Sets the device credential and fingerprint hash sent with every later request. */
  setCredentials(credential: string | null, fingerprintHash: string | null): void {
    this.#credential = credential;
    this.#fpHash = fingerprintHash;
  }

  /** Server time minus local time (ms) from the last response, or null before any. */
  get clockSkewMs(): number | null {
    return this.#skewMs;
  }

  /** POST /api/v1/enroll. */
  async enroll(req: EnrollRequest): Promise<EnrollResponse> {
    const res = await this.#request("POST", "/api/v1/enroll", { json: req, auth: false });
    return await this.#parse(res, EnrollResponse, "enroll");
  }

  /** GET /api/v1/policy with If-None-Match: 200 → new bundle, 304 → unchanged. */
  async fetchPolicy(etag: string | null = null): Promise<PolicyFetch> {
    const headers: Record<string, string> = {};
    if (etag) headers["if-none-match"] = etag;
    const res = await this.#request("GET", "/api/v1/policy", { headers });
    if (res.status === 304) {
      await res.body?.cancel();
      return { status: "unchanged" };
    }
    const body = await this.#parse(res, PolicyResponse, "fetch policy");
    return {
      status: "updated",
      policy: body.policy,
      etag: res.headers.get("etag") ?? `"${body.policy.version}"`,
    };
  }

  /** POST /api/v1/posture. */
  async reportPosture(report: PostureReport): Promise<void> {
    await this.#drain(
      await this.#request("POST", "/api/v1/posture", { json: report }),
      "report posture",
    );
  }

  /** POST /api/v1/heartbeat. */
  async heartbeat(req: HeartbeatRequest): Promise<void> {
    await this.#drain(await this.#request("POST", "/api/v1/heartbeat", { json: req }), "heartbeat");
  }

  /** POST /api/v1/c2c/register. */
  async registerC2c(fqdn: string): Promise<C2cRegisterResponse> {
    const res = await this.#request("POST", "/api/v1/c2c/register", { json: { fqdn } });
    return await this.#parse(res, C2cRegisterResponse, "register for client-to-client");
  }

  /** POST /api/v1/support as multipart: `message` and a zip `bundle`. */
  async supportRequest(
    message: string,
    bundle: Uint8Array,
    filename = "support.zip",
  ): Promise<unknown> {
    const form = new FormData();
    form.set("message", message);
    form.set("bundle", new Blob([bundle as BlobPart], { type: "application/zip" }), filename);
    const res = await this.#request("POST", "/api/v1/support", { body: form });
    if (!res.ok) await this.#throwApiError(res, "upload a support request");
    const text = await res.text();
    try {
      return text ? JSON.parse(text) : null;
    } catch {
      return text;
    }
  }

  /**
   * Follows GET /api/v1/policy/stream (server-sent events), calling
   * `onVersion` for each announced version, reconnecting with exponential
   * backoff until `signal` aborts. A refused credential (see
   * isCredentialRefused) ends the loop with the EdgeApiError, since retrying
   * cannot fix it.
   */
  async followPolicy(o: FollowOptions): Promise<void> {
    const min = o.minBackoffMs ?? 1000;
    const max = o.maxBackoffMs ?? 30000;
    let backoff = min;
    while (!o.signal.aborted) {
      let gotEvent = false;
      try {
        const res = await this.#request("GET", "/api/v1/policy/stream", {
          headers: { accept: "text/event-stream" },
          signal: o.signal,
          noTimeout: true,
        });
        if (!res.ok) await this.#throwApiError(res, "follow policy changes");
        if (!res.body) throw new EdgeUnreachableError("Cannot follow policy changes: empty stream");
        o.onConnected?.();
        for await (const ev of readSse(res.body, o.signal)) {
          gotEvent = true;
          if (ev.event === "revoked") {
            o.onRevoked?.(sseReason(ev.data));
            continue;
          }
          const v = sseVersion(ev.data);
          if (v) o.onVersion(v);
        }
        if (!o.signal.aborted) {
          throw new EdgeUnreachableError(
            "Cannot follow policy changes: the edge closed the stream",
          );
        }
      } catch (err) {
        if (o.signal.aborted) return;
        if (isCredentialRefused(err)) throw err;
        o.onError?.(err as Error);
        // Other refusals (a disabled device) wait at the longest backoff.
        if (err instanceof EdgeApiError && err.status < 500) backoff = max;
      }
      if (gotEvent) backoff = min;
      await sleep(backoff + Math.random() * backoff * 0.2, o.signal);
      backoff = Math.min(max, backoff * 2);
    }
  }

  /** Releases the pinned HTTP client. */
  close(): void {
    this.#httpClient?.close();
    this.#httpClient = null;
  }

  async #request(
    method: string,
    path: string,
    o: {
      json?: unknown;
      body?: BodyInit;
      headers?: Record<string, string>;
      auth?: boolean;
      signal?: AbortSignal;
      noTimeout?: boolean;
    } = {},
  ): Promise<Response> {
    const url = this.base + path;
    const headers = new Headers(o.headers);
    headers.set("accept", headers.get("accept") ?? "application/json");
    if (o.auth !== false) {
      if (this.#credential) headers.set("authorization", `Bearer ${this.#credential}`);
      if (this.#fpHash) headers.set("x-device-fingerprint", this.#fpHash);
    }
    let body: BodyInit | undefined = o.body;
    if (o.json !== undefined) {
      headers.set("content-type", "application/json");
      body = JSON.stringify(o.json);
    }
    const signals: AbortSignal[] = [];
    if (o.signal) signals.push(o.signal);
    if (!o.noTimeout) signals.push(AbortSignal.timeout(this.#timeoutMs));
    const req = new Request(url, {
      method,
      headers,
      body,
      signal: signals.length ? AbortSignal.any(signals) : undefined,
    });
    let res: Response;
    try {
      res = await this.#fetch(req);
    } catch (err) {
      throw this.#mapTransportError(err, method, url);
    }
    const st = res.headers.get("x-server-time");
    if (st) {
      const t = Date.parse(st);
      if (Number.isFinite(t)) this.#skewMs = Math.round(t - this.#clock.now());
    }
    return res;
  }

  #mapTransportError(err: unknown, method: string, url: string): Error {
    // Deno puts the TLS detail in the cause chain ("fetch failed" ← "invalid peer certificate").
    const parts: string[] = [];
    for (let e: unknown = err, i = 0; e && i < 5; e = (e as Error).cause, i++) {
      parts.push(e instanceof Error ? e.message : String(e));
    }
    const msg = parts.join(": ");
    if (err instanceof DOMException && (err.name === "TimeoutError" || err.name === "AbortError")) {
      return new EdgeUnreachableError(`Cannot ${method} ${url}: no answer (${err.name})`, {
        cause: err,
      });
    }
    if (/certificate|UnknownIssuer|BadSignature|NotValidForName|tls|handshake/i.test(msg)) {
      const cert = /NotValidForName/i.test(msg)
        ? "its TLS certificate does not name this host"
        : "its TLS certificate is not signed by the pinned edge CA";
      return new EdgeTlsError(
        `Cannot connect to the edge at ${url}: ${cert}; a TLS-inspecting middlebox may be in the path (${msg})`,
        { cause: err },
      );
    }
    return new EdgeUnreachableError(`Cannot ${method} ${url}: ${msg}`, { cause: err });
  }

  async #throwApiError(res: Response, action: string): Promise<never> {
    const text = await res.text().catch(() => "");
    let parsed: ErrorBody | null = null;
    try {
      const r = ErrorBody.safeParse(JSON.parse(text));
      if (r.success) parsed = r.data;
    } catch {
      // not JSON: fall through to the status line
    }
    if (parsed) throw new EdgeApiError(parsed.error.code, parsed.error.message, res.status);
    throw new EdgeApiError(
      `http_${res.status}`,
      `Cannot ${action}: the edge answered HTTP ${res.status}${
        text ? `: ${text.slice(0, 200)}` : ""
      }`,
      res.status,
    );
  }

  async #parse<T extends z.ZodTypeAny>(
    res: Response,
    schema: T,
    action: string,
  ): Promise<z.infer<T>> {
    if (!res.ok) await this.#throwApiError(res, action);
    let json: unknown;
    try {
      json = await res.json();
    } catch {
      throw new EdgeApiError(
        "bad_response",
        `Cannot ${action}: the edge answered with invalid JSON`,
        502,
      );
    }
    const r = schema.safeParse(json);
    if (!r.success) {
      const what = r.error.issues.slice(0, 3).map((i) => `${i.path.join(".")}: ${i.message}`)
        .join("; ");
      throw new EdgeApiError(
        "bad_response",
        `Cannot ${action}: unexpected answer from the edge (${what})`,
        502,
      );
    }
    return r.data;
  }

  async #drain(res: Response, action: string): Promise<void> {
    if (!res.ok) await this.#throwApiError(res, action);
    await res.body?.cancel();
  }
}

/** One server-sent event. */
export interface SseEvent {
  event: string;
  data: string;
  id: string | null;
}

/** Parses a text/event-stream body into events (comments and retry lines ignored). */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  // An aborted fetch does not always cancel an in-flight body (in-process
  // transports never do), so cancel the reader ourselves.
  const onAbort = () => void reader.cancel().catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    while (true) {
      const { value: chunk, done } = await reader.read();
      if (done) break;
      let buf = "";
      let event = "message";
      let data: string[] = [];
      let id: string | null = null;
      buf += decoder.decode(chunk, { stream: true });
      if (buf.length > 1024 * 1024) {
        throw new EdgeApiError("bad_response", "Cannot read policy stream: line over 1 MiB", 502);
      }
      let nl: number;
      while ((nl = buf.search(/\r?\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(buf[nl] === "\r" ? nl + 2 : nl + 1);
        if (line === "") {
          if (data.length) yield { event, data: data.join("\n"), id };
          event = "message";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
        else if (field === "id") id = value;
      }
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
}

/** Extracts the policy version from an event's data: JSON {version} or a bare string. */
export function sseVersion(data: string): string | null {
  const t = data.trim();
  if (!t) return null;
  if (t.startsWith("{")) {
    try {
      const j = JSON.parse(t);
      if (typeof j.version === "string") return j.version;
      if (j.policy && typeof j.policy.version === "string") return j.policy.version;
      return null;
    } catch {
      return null;
    }
  }
  return /^[\w.:-]{1,128}$/.test(t) ? t.replace(/^"|"$/g, "") : null;
}

function sseReason(data: string): string {
  try {
    const j = JSON.parse(data);
    if (typeof j.reason === "string") return j.reason.slice(0, 100);
  } catch {
    // not JSON
  }
  return data.slice(0, 100) || "revoked";
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
