/**
 * The proxy's listener: a plain TCP socket on the edge's tunnel address, so
 * only devices reach it (through their tunnels; the access enforcer always
 * lets a device reach the edge's own address), and the engine serves each
 * connection. The peer address is a device's tunnel address, which the
 * tunnel's allowed-IPs check guarantees: that is the request's identity.
 */
import { logger } from "../log.ts";
import type { ProxyEngine } from "./engine.ts";
import { closeQuietly, type Duplex } from "./stream.ts";

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
  o: {
    hostname: string;
    port: number;
    engine: ProxyEngine;
    /**
     * Told after every write to a client: what is written to a device's
     * socket goes into the tunnel, and the tunnel's pump looks sooner when
     * told (Pump.poke).
     */
    onClientWrite?: () => void;
  },
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
      const told = o.onClientWrite;
      const client: Duplex = told ? tellingWrites(conn, told) : conn;
      o.engine.handle(client, src).catch((e) =>
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

/** `conn`, calling `told` after each write. */
function tellingWrites(conn: Deno.TcpConn, told: () => void): Duplex {
  return {
    read: (p) => conn.read(p),
    async write(p) {
      const n = await conn.write(p);
      told();
      return n;
    },
    close: () => conn.close(),
    closeWrite: () => conn.closeWrite(),
  };
}
