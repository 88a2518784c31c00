/**
 * The proxy's listener: a plain TCP socket on the edge's tunnel address, so
 * only devices reach it (through their tunnels; the access enforcer always
 * lets a device reach the edge's own address), and the engine serves each
 * connection. The peer address is a device's tunnel address, which the
 * tunnel's allowed-IPs check guarantees: that is the request's identity.
 */
import { logger } from "../log.ts";
import type { ProxyEngine } from "./engine.ts";
import { closeQuietly } from "./stream.ts";

const log = logger("proxy.server");

/** A running listener. */
export interface ProxyServer {
  port: number;
  /** Connections being served now. */
  readonly open: number;
  close(): Promise<void>;
}

/** Listens on `hostname:port` and serves every connection with `engine`. */
export function startProxyServer(
  o: { hostname: string; port: number; engine: ProxyEngine },
): ProxyServer {
  const listener = Deno.listen({ hostname: o.hostname, port: o.port, transport: "tcp" });
  const open = new Set<Deno.TcpConn>();
  const loop = (async () => {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return; // closed
      }
      conn.setNoDelay(true);
      open.add(conn);
      const src = (conn.remoteAddr as Deno.NetAddr).hostname.replace(/^::ffff:/, "");
      o.engine.handle(conn, src).catch((e) =>
        log.debug("Proxy connection failed", { src, error: (e as Error).message })
      ).finally(() => open.delete(conn));
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  log.info("Web proxy listening", { address: `${o.hostname}:${port}` });
  return {
    port,
    get open() {
      return open.size;
    },
    async close() {
      closeQuietly(listener);
      for (const c of open) closeQuietly(c);
      await loop;
    },
  };
}
