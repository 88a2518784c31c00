/**
 * DNS-rebinding guard for the consoles: a hostile page can point its own name
 * at 127.0.0.1 and have the browser talk to a local console as a "same-origin"
 * site. The Host header still carries the attacker's name, so answering only
 * to known names (loopback ones plus configured ones) defeats it.
 */
import type { MiddlewareHandler } from "hono";

/** Loopback names every console answers to, on any port. */
export const LOOPBACK_HOSTS: readonly string[] = ["127.0.0.1", "localhost", "[::1]", "::1"];

/** The host name of a Host header value without its port (IPv6 keeps its brackets). */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  return h.startsWith("[") ? h.slice(0, h.indexOf("]") + 1) : h.split(":")[0];
}

/** A middleware refusing with 421 `misdirected_host` any request whose Host is not one of `names` (any port). */
export function allowedHostGuard(names: readonly string[]): MiddlewareHandler {
  const allowed = new Set(names.map((h) => h.toLowerCase()));
  return async (c, next) => {
    const name = hostName(c.req.header("host") ?? new URL(c.req.url).host);
    if (!allowed.has(name)) {
      return c.json({
        error: {
          code: "misdirected_host",
          message: `Refused a request for host "${
            name.slice(0, 100)
          }": this console answers only to ${[...allowed].join(", ")}`,
        },
      }, 421);
    }
    await next();
  };
}
