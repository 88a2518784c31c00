/**
 * "Tunnel with local proxy": a listener on 127.0.0.1:9000 that relays every
 * connection to the edge's web proxy through the tunnel (the edge's tunnel
 * address is routed into the tunnel, so the relay needs no proxy protocol
 * of its own: the bytes are the client's proxy requests), and the system
 * proxy for new sessions — a profile.d file exporting http_proxy and
 * https_proxy (curl, most CLI tools; Chromium reads them when no desktop
 * proxy is set) — written while the mode is on and removed when it is off
 * or the connector exits, so the host is as it was. Traffic that ignores the
 * proxy still follows the profile: the tunnel stays up.
 */
import { logger } from "../log.ts";

const log = logger("connector.local_proxy");

/** Options of the local proxy. */
export interface LocalProxyOptions {
  /** Default 127.0.0.1. */
  hostname?: string;
  /** Default 9000. */
  port?: number;
  /** The system proxy file for new sessions (default /etc/profile.d/portcullis-proxy.sh; null: none). */
  envFile?: string | null;
}

/** The edge proxy to relay to. */
export interface ProxyTarget {
  address: string;
  port: number;
}

/** Starts and stops with the forwarding decision; `set(null)` stops it. */
export class LocalProxy {
  readonly #o: Required<LocalProxyOptions>;
  #listener: Deno.TcpListener | null = null;
  #target: ProxyTarget | null = null;
  #conns = new Set<Deno.Conn>();

  constructor(o: LocalProxyOptions = {}) {
    this.#o = {
      hostname: "127.0.0.1",
      port: 9000,
      envFile: "/etc/profile.d/portcullis-proxy.sh",
      ...o,
    };
  }

  /** The proxy URL clients use. */
  get url(): string {
    return `http://${this.#o.hostname}:${this.#o.port}`;
  }

  /** Runs the relay to `target` (null: stops it and restores the system proxy). */
  async set(target: ProxyTarget | null): Promise<void> {
    if (!target) return await this.stop();
    this.#target = target;
    if (this.#listener) return;
    this.#listener = Deno.listen({ hostname: this.#o.hostname, port: this.#o.port });
    void this.#accept(this.#listener);
    if (this.#o.envFile) {
      const u = this.url;
      await Deno.writeTextFile(
        this.#o.envFile,
        `# Written by the Portcullis connector ("tunnel with local proxy"); removed when it stops.\n` +
          `export http_proxy=${u} https_proxy=${u} HTTP_PROXY=${u} HTTPS_PROXY=${u}\n` +
          `export no_proxy=localhost,127.0.0.1,::1 NO_PROXY=localhost,127.0.0.1,::1\n`,
        { mode: 0o644 },
      ).catch((e) =>
        log.warn("Cannot set the system proxy", { file: this.#o.envFile, error: e.message })
      );
    }
    log.info("Local proxy listening", {
      address: this.url,
      edge: `${target.address}:${target.port}`,
    });
  }

  /** Stops the listener, ends relayed connections and removes the system proxy file. */
  async stop(): Promise<void> {
    const l = this.#listener;
    this.#listener = null;
    this.#target = null;
    if (!l) return;
    try {
      l.close();
    } catch { /* closed */ }
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    this.#conns.clear();
    if (this.#o.envFile) await Deno.remove(this.#o.envFile).catch(() => {});
    log.info("Local proxy stopped");
  }

  async #accept(l: Deno.TcpListener): Promise<void> {
    for (;;) {
      let c: Deno.TcpConn;
      try {
        c = await l.accept();
      } catch {
        return;
      }
      void this.#relay(c);
    }
  }

  async #relay(client: Deno.TcpConn): Promise<void> {
    const t = this.#target;
    if (!t) return client.close();
    let edge: Deno.TcpConn;
    try {
      edge = await Deno.connect({ hostname: t.address, port: t.port });
    } catch (e) {
      log.warn("Cannot reach the edge's web proxy", { error: (e as Error).message });
      return client.close();
    }
    client.setNoDelay(true);
    edge.setNoDelay(true);
    this.#conns.add(client);
    this.#conns.add(edge);
    const copy = async (from: Deno.TcpConn, to: Deno.TcpConn) => {
      try {
        await from.readable.pipeTo(to.writable, { preventClose: true });
      } catch { /* either side hung up */ }
      await to.closeWrite().catch(() => {});
    };
    await Promise.all([copy(client, edge), copy(edge, client)]);
    for (const c of [client, edge]) {
      this.#conns.delete(c);
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
}
