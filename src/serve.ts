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
