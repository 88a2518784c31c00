/**
 * What every REST handler shares: the one error handler that turns any
 * thrown error into `{"error": {"code", "message"}}`, body reading with a
 * size limit and a content-type check, and zod validation that names the
 * offending field. Bad input ends here as a 4xx; only a bug reaches 500, and
 * its details go to the log, not to the client.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { InputError, PortcullisError } from "../../errors.ts";
import { logger } from "../../log.ts";

const log = logger("http");

/** Default JSON body limit (64 KiB). */
export const JSON_LIMIT = 64 * 1024;

/** Formats a zod issue path as "fingerprint.macs[0]". */
export function issuePath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  }
  return out || "(body)";
}

/** One sentence for the first zod issue, naming the field. */
export function zodMessage(err: z.ZodError): string {
  const issue = err.issues[0];
  if (!issue) return "Invalid request";
  if (issue.code === "unrecognized_keys") {
    return `Invalid request: ${issuePath(issue.path)}: unknown field ${
      issue.keys.map((k) => `"${k}"`).join(", ")
    }`;
  }
  return `Invalid request: ${issuePath(issue.path)}: ${issue.message}`;
}

/** Builds the error body and status for any error. */
export function errorResponse(c: Context, err: unknown): Response {
  if (err instanceof z.ZodError) {
    return c.json({ error: { code: "invalid_request", message: zodMessage(err) } }, 400);
  }
  if (err instanceof PortcullisError && err.status < 500) {
    return c.json(
      { error: { code: err.code, message: err.message } },
      err.status as 400,
    );
  }
  // An upstream that did not answer (503, or 502 for a peer such as Microsoft's
  // identity platform) is said as such, with its sentence, not as a bug.
  if (err instanceof PortcullisError && (err.status === 503 || err.status === 502)) {
    return c.json({ error: { code: err.code, message: err.message } }, err.status);
  }
  if (err instanceof HTTPException && err.status < 500) {
    return c.json(
      { error: { code: "bad_request", message: err.message || "Bad request" } },
      err.status,
    );
  }
  log.error("unhandled error in request handler", {
    method: c.req.method,
    path: c.req.path,
    error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    stack: err instanceof Error ? err.stack : undefined,
  });
  return c.json({
    error: { code: "internal_error", message: "Internal error; the edge log has the details" },
  }, 500);
}

/**
 * Reads the raw body, refusing more than `limit` bytes with 413
 * `body_too_large`; what is left of a refused body stays for the listener to
 * discard, so the refusal reaches the client.
 */
export async function readBodyLimited(c: Context, limit: number): Promise<Uint8Array<ArrayBuffer>> {
  const tooLarge = () =>
    new InputError(
      "body_too_large",
      `Request body is larger than the limit of ${limit} bytes`,
      413,
    );
  const declared = c.req.header("content-length");
  if (declared !== undefined && Number(declared) > limit) throw tooLarge();
  const body = c.req.raw.body;
  if (!body) return new Uint8Array();
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      // Not cancel(): that resets an HTTP/2 stream before the 413 is sent.
      // The listener discards the rest (src/serve.ts answerAfterBody).
      reader.releaseLock();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const ch of chunks) {
    out.set(ch, off);
    off += ch.byteLength;
  }
  return out;
}

/** Refuses a request whose Content-Type is not `type` with 415. */
export function requireContentType(c: Context, type: string): void {
  const ct = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (ct !== type) {
    throw new InputError(
      "unsupported_media_type",
      `Expected Content-Type "${type}", got "${ct || "none"}"`,
      415,
    );
  }
}

/** Reads a JSON body (content type, size, syntax) and validates it with `schema`. */
export async function readJson<T extends z.ZodType>(
  c: Context,
  schema: T,
  limit = JSON_LIMIT,
): Promise<z.infer<T>> {
  requireContentType(c, "application/json");
  const bytes = await readBodyLimited(c, limit);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new InputError(
      "malformed_json",
      `Request body is not valid JSON: ${(err as Error).message}`,
    );
  }
  return schema.parse(json);
}

/** Parses an optional integer query parameter within bounds (400 otherwise). */
export function queryInt(
  c: Context,
  name: string,
  min: number,
  max: number,
  fallback: number,
): number {
  const v = c.req.query(name);
  if (v === undefined || v === "") return fallback;
  if (!/^\d{1,15}$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new InputError(
      "invalid_request",
      `Invalid request: query parameter "${name}": expected an integer from ${min} to ${max}, got ${
        JSON.stringify(v.slice(0, 40))
      }`,
    );
  }
  return Number(v);
}

/** The peer address of the connection (Deno.serve passes it as the env), or "unknown". */
export function clientIp(c: Context): string {
  const env = c.env as { remoteAddr?: { hostname?: string } } | undefined;
  return env?.remoteAddr?.hostname ?? "unknown";
}

/** ISO time of `ms`. */
export const iso = (ms: number): string => new Date(ms).toISOString();
