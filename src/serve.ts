/**
 * The listening seam. main.ts is the only caller of Deno.serve; roles receive
 * a ServeFn and open their listeners through it, so tests can serve the same
 * apps on ports of their choosing.
 *
 * It sits at the bottom of the layers (DESIGN.md §2) beside log.ts and
 * clock.ts: the roles need these plain function types without importing
 * src/http, which is above them.
 */

/** Where and how to listen; cert+key (PEM) make it HTTPS. */
export interface ServeOptions {
  hostname: string;
  port: number;
  cert?: string;
  key?: string;
  onListen?: (addr: Deno.NetAddr) => void;
}

/** A request handler that also sees the connection (peer address). */
export type ServeHandler = (
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/** Opens an HTTP(S) listener. */
export type ServeFn = (
  options: ServeOptions,
  handler: ServeHandler,
) => Deno.HttpServer<Deno.NetAddr>;

/**
 * Shuts a server down gracefully but never waits longer than `ms`: long-lived
 * responses (server-sent event streams) would otherwise hold shutdown forever.
 */
export async function shutdownWithin(
  server: Deno.HttpServer<Deno.NetAddr>,
  ms = 2000,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    server.shutdown().catch(() => {}),
    new Promise<void>((r) => (timer = setTimeout(r, ms))),
  ]);
  clearTimeout(timer);
}

/**
 * What a role serves: anything with a fetch handler (a Hono app is one).
 * Roles are handed their apps by main.ts, so they see only this shape.
 */
export interface HttpApp {
  fetch(req: Request, env?: unknown): Response | Promise<Response>;
}

/** At most this much of a body the handler left unread is discarded before answering (16 MiB). */
export const DISCARD_LIMIT = 16 * 1024 * 1024;

/** Discarding a left-over body gives up after this long (a slow sender cannot hold a handler). */
export const DISCARD_TIMEOUT_MS = 10_000;

/** Bounds for `discardUnreadBody`. */
export interface DiscardOptions {
  /** Bytes read at most before giving up (default DISCARD_LIMIT). */
  maxBytes?: number;
  /** Milliseconds spent at most before giving up (default DISCARD_TIMEOUT_MS). */
  timeoutMs?: number;
}

/**
 * Reads and drops whatever the handler left of the request body, so the
 * response goes out after the whole request came in. Returns true when the
 * body ended, false when it was cut off (too large, too slow, or broken).
 *
 * Why: a handler that refuses a request before reading its body (401, 404,
 * 413, …) leaves the client still uploading. Over HTTP/2 the server then
 * ends its response with RST_STREAM(NO_ERROR) to stop the upload — legal
 * (RFC 9113 §8.1), but curl 7.88 (Debian 12) and other clients report it as
 * "Stream error in the HTTP/2 framing layer" and drop the response they
 * already have. Draining first lets the stream close normally on both
 * sides; over HTTP/1.1 it keeps the connection reusable. A body that is
 * already consumed costs one read; a body in use (locked) is left alone.
 */
export async function discardUnreadBody(req: Request, opts: DiscardOptions = {}): Promise<boolean> {
  const body = req.body;
  if (!body || body.locked) return true;
  const maxBytes = opts.maxBytes ?? DISCARD_LIMIT;
  const declared = Number(req.headers.get("content-length") ?? "");
  if (declared > maxBytes) {
    // Reading it all would be too much: answer now, the server resets the rest.
    await body.cancel().catch(() => {});
    return false;
  }
  const reader = body.getReader();
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    reader.cancel().catch(() => {});
  }, opts.timeoutMs ?? DISCARD_TIMEOUT_MS);
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return !late;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        return false;
      }
    }
  } catch {
    return false; // the client went away, or the timer cancelled the read
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Wraps a handler so every response, refusals included, is returned only
 * after the request body was read to its end (see `discardUnreadBody`).
 * The ServeFn in main.ts applies it to every listener of both roles.
 */
export function answerAfterBody(handler: ServeHandler, opts: DiscardOptions = {}): ServeHandler {
  return async (req, info) => {
    try {
      return await handler(req, info);
    } finally {
      await discardUnreadBody(req, opts);
    }
  };
}
