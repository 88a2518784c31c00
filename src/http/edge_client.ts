/**
 * The connector's REST client of the edge API (DESIGN.md §3): the connector's
 * HTTP edge. It lives in the HTTP layer, beside the edge's side of the same
 * contract, so one set of zod schemas (src/http/api/schemas.ts) validates
 * requests on the edge and responses here; the connector domain sees only the
 * `EdgeApi` interface (src/connector/edge_api.ts) and main.ts composes the two.
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
import type { ZdxReportItem } from "../zdx/runner.ts";
import { DevicePollResponse, DeviceStartResponse, RedeemResponse } from "./api/signin_schemas.ts";
import type { DeviceSignInStart, ReauthResponse, SignInResult } from "../control/mod.ts";
import { ReauthResponse as ReauthResponseSchema } from "./api/schemas.ts";
import { z } from "zod";
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import type { EnrollmentKeyPayload } from "../control/enrollment_key.ts";
import type {
  C2cRegistration,
  EnrollRequest,
  EnrollResponse,
  HeartbeatReport,
  PostureReport,
  PostureVerdict,
  UpdateOffer,
  UpdateReport,
} from "../control/mod.ts";
import { constantTimeEqual, derToPem, pemToDer, singleCertDer } from "../connector/ca_pin.ts";
import {
  CaPinMismatchError,
  type DlpFetch,
  type EdgeApi,
  EdgeApiError,
  type EdgeApiFactory,
  EdgeTlsError,
  EdgeUnreachableError,
  type FollowOptions,
  isCredentialRefused,
  type PacFetch,
  type PolicyFetch,
} from "../connector/edge_api.ts";
import { DlpBundle } from "../dlp/types.ts";
import { bootstrapBase } from "../connector/enrollment_key.ts";
import { sha256Hex } from "../connector/identity.ts";
import { InputError } from "../errors.ts";
import {
  C2cRegisterResponse,
  EnrollResponse as EnrollResponseSchema,
  ErrorBody,
  PolicyResponse,
  UpdateCheckResponse,
} from "./api/schemas.ts";
import { PostureResponse } from "./api/admin_schemas.ts";
import { readSse, sseReason, sseVersion } from "./sse_read.ts";

/** GET /api/v1/dlp/policy's answer. */
const DlpPolicyResponse = z.object({ dlp: DlpBundle, serverTime: z.string() });

/** How the client sends a request; the default is `fetch` through the pinned client. */
export type FetchLike = (req: Request) => Promise<Response>;

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

/** REST client of the edge API with a pinned CA, device credential and clock-skew tracking. */
export class EdgeClient implements EdgeApi {
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
    return await this.#parse(res, EnrollResponseSchema, "enroll");
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
  async reportPosture(report: PostureReport): Promise<PostureVerdict> {
    const res = await this.#request("POST", "/api/v1/posture", { json: report });
    const { passed, profiles } = await this.#parse(res, PostureResponse, "report posture");
    return { passed, profiles };
  }

  /** POST /api/v1/zdx. */
  async reportZdx(results: ZdxReportItem[]): Promise<void> {
    await this.#drain(
      await this.#request("POST", "/api/v1/zdx", { json: { results } }),
      "report digital experience",
    );
  }

  /** GET /api/v1/update. */
  async checkUpdate(): Promise<UpdateOffer | null> {
    const res = await this.#request("GET", "/api/v1/update");
    return (await this.#parse(res, UpdateCheckResponse, "check for updates")).update;
  }

  /** GET /api/v1/update/program/:version (no request timeout: a program is large; 10 min at most). */
  async downloadRelease(version: string, maxBytes: number): Promise<Uint8Array> {
    const res = await this.#request(
      "GET",
      `/api/v1/update/program/${encodeURIComponent(version)}`,
      {
        headers: { accept: "application/octet-stream" },
        noTimeout: true,
        signal: AbortSignal.timeout(600_000),
      },
    );
    if (!res.ok) await this.#throwApiError(res, `download release ${version}`);
    const declared = Number(res.headers.get("content-length") ?? "0");
    if (declared > maxBytes) {
      await res.body?.cancel();
      throw new EdgeApiError(
        "invalid_response",
        `Cannot download release ${version}: ${declared} bytes, more than the ${maxBytes} expected`,
        502,
      );
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.length > maxBytes) {
      throw new EdgeApiError(
        "invalid_response",
        `Cannot download release ${version}: ${bytes.length} bytes, more than the ${maxBytes} expected`,
        502,
      );
    }
    return bytes;
  }

  /** POST /api/v1/update/report. */
  async reportUpdate(r: UpdateReport): Promise<void> {
    await this.#drain(
      await this.#request("POST", "/api/v1/update/report", { json: r }),
      "report the update",
    );
  }

  /** POST /api/v1/heartbeat. */
  async heartbeat(req: HeartbeatReport): Promise<void> {
    await this.#drain(await this.#request("POST", "/api/v1/heartbeat", { json: req }), "heartbeat");
  }

  /** POST /api/v1/reauth: the user's new sign-in for this (enrolled) device. */
  async reauth(signIn: string): Promise<ReauthResponse> {
    const res = await this.#request("POST", "/api/v1/reauth", { json: { signIn } });
    return await this.#parse(res, ReauthResponseSchema, "renew the sign-in");
  }

  /** POST /api/v1/signin/device (no device credential yet). */
  async startDeviceSignIn(email: string): Promise<DeviceSignInStart> {
    const res = await this.#request("POST", "/api/v1/signin/device", {
      json: { email },
      auth: false,
    });
    return await this.#parse(res, DeviceStartResponse, "start the sign-in");
  }

  /** POST /api/v1/signin/device/poll. */
  async pollDeviceSignIn(
    handle: string,
  ): Promise<{ status: "pending" } | { status: "done"; grant: string }> {
    const res = await this.#request("POST", "/api/v1/signin/device/poll", {
      json: { handle },
      auth: false,
    });
    return await this.#parse(res, DevicePollResponse, "check the sign-in");
  }

  /** POST /api/v1/signin/local. */
  async signInLocal(username: string, password: string, totp: string): Promise<SignInResult> {
    const res = await this.#request("POST", "/api/v1/signin/local", {
      json: { username, password, totp },
      auth: false,
    });
    return await this.#parse(res, RedeemResponse, "sign in");
  }

  /** POST /api/v1/signin/redeem. */
  async redeemSignIn(grant: string): Promise<SignInResult> {
    const res = await this.#request("POST", "/api/v1/signin/redeem", {
      json: { grant },
      auth: false,
    });
    return await this.#parse(res, RedeemResponse, "finish the sign-in");
  }

  /** POST /api/v1/c2c/register. */
  async registerC2c(fqdn: string): Promise<C2cRegistration> {
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

  /** GET /api/v1/dlp/policy with If-None-Match: 200 → new bundle, 304 → unchanged. */
  async fetchDlpPolicy(etag: string | null = null): Promise<DlpFetch> {
    const headers: Record<string, string> = {};
    if (etag) headers["if-none-match"] = etag;
    const res = await this.#request("GET", "/api/v1/dlp/policy", { headers });
    if (res.status === 304) {
      await res.body?.cancel();
      return { status: "unchanged" };
    }
    const body = await this.#parse(res, DlpPolicyResponse, "fetch the DLP policy");
    return { status: "updated", bundle: body.dlp, etag: res.headers.get("etag") };
  }

  /** GET /api/v1/pac with If-None-Match: 200 → the PAC text (at most 256 KiB), 304 → unchanged. */
  async fetchPac(etag: string | null = null): Promise<PacFetch> {
    const headers: Record<string, string> = { accept: "application/x-ns-proxy-autoconfig" };
    if (etag) headers["if-none-match"] = `"${etag}"`;
    const res = await this.#request("GET", "/api/v1/pac", { headers });
    if (res.status === 304) {
      await res.body?.cancel();
      return { status: "unchanged" };
    }
    if (!res.ok) await this.#throwApiError(res, "fetch the PAC file");
    const text = await res.text();
    if (text.length > 256 * 1024) {
      throw new EdgeApiError(
        "invalid_response",
        "Cannot fetch the PAC file: it is larger than 256 KiB",
        res.status,
      );
    }
    return { status: "updated", text };
  }

  /** POST /api/v1/dlp/incidents with a signed report. */
  async reportDlpIncident(payload: string, signature: string): Promise<void> {
    const res = await this.#request("POST", "/api/v1/dlp/incidents", {
      json: { payload, signature },
    });
    await this.#drain(res, "report a DLP incident");
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

/** The real EdgeApiFactory: pinned-CA fetches and EdgeClients over `fetch` (default: the network). */
export function httpEdgeApi(o: { fetch?: FetchLike; clock?: Clock } = {}): EdgeApiFactory {
  return {
    fetchCa: (p) => fetchPinnedCa(p, { fetch: o.fetch }),
    client: (apiUrl, caPem) => new EdgeClient({ apiUrl, caPem, fetch: o.fetch, clock: o.clock }),
  };
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
