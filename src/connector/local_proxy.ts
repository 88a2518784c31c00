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
 *
 * The same listener serves the device's PAC file at /proxy.pac (an
 * origin-form "GET /proxy.pac" is answered here; proxy requests are in
 * absolute form or CONNECT and go to the edge), so both modes offer a PAC
 * URL: "enforce PAC" points the system at it alone (`auto_proxy`, which
 * Chromium on Linux reads from the environment when no desktop proxy is set),
 * "tunnel with local proxy" sets it beside http_proxy/https_proxy.
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
  /** The PAC file to serve at /proxy.pac (null: none yet, answered 503). */
  pac?: () => string | null;
}

/** What the system is pointed at: the relay as proxy (and the PAC), or the PAC alone. */
export type LocalProxyMode = "local_proxy" | "enforce_pac";

/** The path the PAC file is served at. */
export const PAC_PATH = "/proxy.pac";

const PAC_REQUEST = /^(GET|HEAD) \/proxy\.pac(?:\?[^ ]*)? HTTP\/1\.[01]\r?\n/;

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
  #mode: LocalProxyMode | null = null;
  #conns = new Set<Deno.Conn>();

  constructor(o: LocalProxyOptions = {}) {
    this.#o = {
      hostname: "127.0.0.1",
      port: 9000,
      envFile: "/etc/profile.d/portcullis-proxy.sh",
      pac: () => null,
      ...o,
    };
  }

  /** The proxy URL clients use. */
  get url(): string {
    return `http://${this.#o.hostname}:${this.#o.port}`;
  }

  /** The PAC URL the system is pointed at. */
  get pacUrl(): string {
    return `${this.url}${PAC_PATH}`;
  }

  /**
   * Runs the relay to `target` in `mode` (null: stops it and restores the
   * system proxy); a new mode rewrites the system proxy file.
   */
  async set(target: ProxyTarget | null, mode: LocalProxyMode = "local_proxy"): Promise<void> {
    if (!target) return await this.stop();
    this.#target = target;
    if (this.#listener && this.#mode === mode) return;
    this.#mode = mode;
    if (!this.#listener) {
      this.#listener = Deno.listen({ hostname: this.#o.hostname, port: this.#o.port });
      void this.#accept(this.#listener);
    }
    if (this.#o.envFile) {
      await Deno.writeTextFile(this.#o.envFile, this.#envText(mode), { mode: 0o644 }).catch((e) =>
        log.warn("Cannot set the system proxy", { file: this.#o.envFile, error: e.message })
      );
    }
    log.info("Local proxy listening", {
      address: this.url,
      mode,
      pac: this.pacUrl,
      edge: `${target.address}:${target.port}`,
    });
  }

  #envText(mode: LocalProxyMode): string {
    const u = this.url;
    const pac = `export auto_proxy=${this.pacUrl}\n`;
    if (mode === "enforce_pac") {
      // Only the PAC: what it sends DIRECT leaves the host directly, and tools
      // that cannot read a PAC file go direct too (as "enforce PAC" means).
      return `# Written by the Portcullis connector ("enforce PAC"); removed when it stops.\n${pac}`;
    }
    return `# Written by the Portcullis connector ("tunnel with local proxy"); removed when it stops.\n` +
      `export http_proxy=${u} https_proxy=${u} HTTP_PROXY=${u} HTTPS_PROXY=${u}\n` +
      `export no_proxy=localhost,127.0.0.1,::1 NO_PROXY=localhost,127.0.0.1,::1\n` + pac;
  }

  /** Stops the listener, ends relayed connections and removes the system proxy file. */
  async stop(): Promise<void> {
    const l = this.#listener;
    this.#listener = null;
    this.#target = null;
    this.#mode = null;
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

  /**
   * Reads the start of a connection until its first line is complete (at
   * most 8 KiB, 10 s): the bytes read, which the relay forwards first.
   */
  async #head(client: Deno.TcpConn): Promise<Uint8Array | null> {
    const buf = new Uint8Array(8192);
    let n = 0;
    const timer = setTimeout(() => client.close(), 10_000);
    try {
      while (n < buf.length) {
        const got = await client.read(buf.subarray(n));
        if (got === null) return null;
        n += got;
        if (buf.subarray(0, n).includes(10)) break;
      }
    } catch {
      return null;
    } finally {
      clearTimeout(timer);
    }
    return buf.slice(0, n);
  }

  async #servePac(client: Deno.TcpConn, head: string): Promise<void> {
    const text = this.#o.pac();
    const body = new TextEncoder().encode(text ?? "No PAC file yet: the edge has not sent one.\n");
    const status = text === null ? "503 Service Unavailable" : "200 OK";
    const type = text === null ? "text/plain; charset=utf-8" : "application/x-ns-proxy-autoconfig";
    const hdr = new TextEncoder().encode(
      `HTTP/1.1 ${status}\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\n` +
        `Cache-Control: no-cache\r\nConnection: close\r\n\r\n`,
    );
    try {
      const w = client.writable.getWriter();
      await w.write(head.startsWith("HEAD") ? hdr : new Uint8Array([...hdr, ...body]));
      await w.close();
    } catch { /* the client left */ }
    try {
      client.close();
    } catch { /* closed */ }
  }

  async #relay(client: Deno.TcpConn): Promise<void> {
    this.#conns.add(client);
    const first = await this.#head(client);
    this.#conns.delete(client);
    if (!first) {
      try {
        client.close();
      } catch { /* closed */ }
      return;
    }
    const line = new TextDecoder().decode(first.subarray(0, 256));
    if (PAC_REQUEST.test(line)) return await this.#servePac(client, line);
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
    try {
      for (let off = 0; off < first.length;) off += await edge.write(first.subarray(off));
    } catch {
      for (const c of [client, edge]) {
        this.#conns.delete(c);
        try {
          c.close();
        } catch { /* closed */ }
      }
      return;
    }
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
