/**
 * Captive-portal probe. The edge's plain-HTTP bootstrap listener answers
 * `GET /generate_204` with 204, no body, and echoes the request header
 * `X-Portcullis-Challenge` back as `X-Portcullis-Response`. A portal that
 * intercepts HTTP cannot know a fresh random challenge, so anything else —
 * a redirect, another status, a body, a missing or wrong echo — means a
 * portal stands between us and the edge. A network error or timeout means
 * "unreachable", which is a different problem (fail-open/closed territory).
 *
 * Mechanism only: the caller decides what a portal means (captive_controller.ts).
 * `fetch` is injected (a plain function), so tests and the engine can bind it
 * to the physical interface or replace it with canned responses.
 */

/** The request header carrying the challenge. */
export const CHALLENGE_HEADER = "X-Portcullis-Challenge";
/** The response header that must echo it. */
export const RESPONSE_HEADER = "X-Portcullis-Response";
/** The probe path on the edge's bootstrap listener. */
export const PROBE_PATH = "/generate_204";

/** A fetch-like function (the real `fetch`, a bound client, or a fake). */
export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

/** Why a response was taken for a captive portal. */
export type CaptiveReason = "redirect" | "status" | "body" | "echo_missing" | "echo_mismatch";

/** The outcome of one probe. */
export type CaptiveProbeResult =
  | { kind: "clear"; latencyMs: number }
  | {
    kind: "captive";
    reason: CaptiveReason;
    status: number;
    /** The redirect target, when the portal sent one. */
    location?: string;
    detail: string;
  }
  | { kind: "unreachable"; detail: string };

/** Probe options. */
export interface CaptiveProbeOptions {
  /** Base URL of the edge's bootstrap listener, e.g. "http://203.0.113.7:80". */
  url: string;
  fetch?: FetchFn;
  /** Default 3000 ms. */
  timeoutMs?: number;
  /** Source of the challenge (default: 16 random bytes, hex). */
  challenge?: () => string;
  /** Monotonic clock in ms for the latency figure (default performance.now). */
  now?: () => number;
}

/** Makes a fresh 128-bit random challenge. */
export function randomChallenge(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Compares two strings in time independent of where they differ. */
function sameString(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a), y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** The full probe URL for a bootstrap base URL. */
export function probeUrl(base: string): string {
  const u = new URL(base);
  if (u.protocol !== "http:") {
    throw new Error(`Cannot probe for a captive portal at "${base}": the URL must be plain http`);
  }
  u.pathname = PROBE_PATH;
  u.search = "";
  u.hash = "";
  return u.toString();
}

/**
 * Classifies a response given the challenge that was sent. Reads at most a
 * little of the body (a portal's login page can be large).
 */
export async function classifyResponse(
  res: Response,
  challenge: string,
): Promise<Exclude<CaptiveProbeResult, { kind: "clear" | "unreachable" }> | null> {
  const status = res.status;
  const location = res.headers.get("location") ?? undefined;
  if (status >= 300 && status < 400 || res.type === "opaqueredirect") {
    await res.body?.cancel();
    return {
      kind: "captive",
      reason: "redirect",
      status,
      location,
      detail: `Redirected (${status}) to ${location ?? "an unknown location"}`,
    };
  }
  if (status !== 204) {
    await res.body?.cancel();
    return {
      kind: "captive",
      reason: "status",
      status,
      detail: `Answered ${status} instead of 204`,
    };
  }
  const body = await readSome(res, 4096);
  if (body.length > 0) {
    return {
      kind: "captive",
      reason: "body",
      status,
      detail: `Answered 204 with a ${body.length}-byte body`,
    };
  }
  const echo = res.headers.get(RESPONSE_HEADER);
  if (echo === null) {
    return {
      kind: "captive",
      reason: "echo_missing",
      status,
      detail: "Answered 204 without echoing the challenge",
    };
  }
  if (!sameString(echo.trim(), challenge)) {
    return {
      kind: "captive",
      reason: "echo_mismatch",
      status,
      detail: "Answered 204 with a wrong challenge echo",
    };
  }
  return null;
}

async function readSome(res: Response, limit: number): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array();
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      n += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Sends one probe with a fresh challenge and classifies the answer. */
export async function probeCaptivePortal(opts: CaptiveProbeOptions): Promise<CaptiveProbeResult> {
  const url = probeUrl(opts.url);
  const doFetch: FetchFn = opts.fetch ?? ((i, init) => fetch(i, init));
  const now = opts.now ?? (() => performance.now());
  const timeoutMs = opts.timeoutMs ?? 3000;
  const challenge = (opts.challenge ?? randomChallenge)();
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  const t0 = now();
  try {
    const res = await doFetch(url, {
      method: "GET",
      redirect: "manual",
      cache: "no-store",
      signal: ctl.signal,
      headers: { [CHALLENGE_HEADER]: challenge, "Cache-Control": "no-cache" },
    });
    const verdict = await classifyResponse(res, challenge);
    return verdict ?? { kind: "clear", latencyMs: Math.max(0, now() - t0) };
  } catch (e) {
    const detail = ctl.signal.aborted
      ? `No answer from ${url} within ${timeoutMs} ms`
      : `Cannot reach ${url}: ${(e as Error).message}`;
    return { kind: "unreachable", detail };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A fetch bound to a local source address (the physical interface's), so
 * the probe leaves outside the tunnel. Close the returned client when done.
 */
export function boundFetch(localAddress: string): { fetch: FetchFn; close(): void } {
  const client = Deno.createHttpClient({ localAddress });
  return {
    fetch: (input, init) => fetch(input, { ...init, client }),
    close: () => client.close(),
  };
}
