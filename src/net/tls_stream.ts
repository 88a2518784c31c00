/**
 * The tunnel's fallback transport: the same WireGuard messages, each prefixed
 * by a 16-bit big-endian length, over TLS on TCP.
 *
 * One TlsStream holds any number of connections — accepted by `listen()`
 * (edge) or opened by `dial()` (connector) — and presents them to the data
 * plane like a datagram socket: `drain()` copies received frames out of a
 * bounded ring synchronously, `send()` queues a frame on the connection named
 * by the Endpoint's connId. Data arrives through Deno promises, so the stream
 * calls `wake` (the Poller's) whenever the ring goes from empty to non-empty.
 *
 * Isolation: every connection has its own reader and writer; a slow peer
 * fills only its own bounded write queue (further frames are dropped, as a
 * router would), and a malformed frame closes only that connection.
 *
 * TLS version: Deno's TLS (rustls) offers TLS 1.3 and 1.2 and has no option
 * to refuse 1.2; both sides here are rustls so they settle on 1.3, and the
 * client pins the edge CA with `caCerts`.
 */
import { type Endpoint, endpoint } from "./endpoint.ts";
import { logger } from "../log.ts";

const log = logger("net.tls");

/** Options shared by listening and dialling. */
export interface TlsStreamOptions {
  /** Longest accepted frame (default 2048 + 64; never above 65535). */
  maxFrame?: number;
  /** Frames queued for writing per connection before dropping (default 256). */
  maxQueuedFrames?: number;
  /** Received frames held for drain() before dropping (default 1024). */
  inboundCapacity?: number;
  /** Called when received frames become available (e.g. `() => poller.wake()`). */
  wake?: () => void;
  /** Longest wait for a TLS handshake in ms (default 10000). */
  handshakeTimeoutMs?: number;
  /** Most simultaneous connections; newer ones are refused (default 4096). */
  maxConnections?: number;
  /** ALPN protocol both sides must agree on (default "portcullis-wg"). */
  alpn?: string;
  /**
   * An accepted connection that delivers no valid frame this long after its
   * handshake is closed (default 30000 ms): idle TLS sockets cost memory and
   * a connection slot but nothing to open.
   */
  firstFrameTimeoutMs?: number;
  /** Most simultaneous accepted connections from one source IP (default 64). */
  maxConnectionsPerIp?: number;
}

/** Where and with which key to listen. */
export interface TlsListenOptions {
  hostname?: string;
  port: number;
  /** PEM certificate chain. */
  cert: string;
  /** PEM private key. */
  key: string;
}

/** Where to dial and which CA to trust. */
export interface TlsDialOptions {
  hostname: string;
  port: number;
  /** PEM CA certificates to trust instead of the system store (pinning). */
  caCerts?: string[];
  /** Connect + handshake timeout in ms (default 10000). */
  timeoutMs?: number;
}

/** A connection's public view. */
export interface TlsConnInfo {
  readonly connId: number;
  readonly endpoint: Endpoint;
  readonly direction: "accepted" | "dialled";
  state: "handshaking" | "open" | "closed";
  /** Why it closed, in a sentence. */
  reason?: string;
}

/** A connection opened or closed. */
export interface TlsConnEvent {
  type: "open" | "close";
  conn: TlsConnInfo;
}

/** Counters. */
export interface TlsStreamStats {
  framesIn: number;
  framesOut: number;
  badFrames: number;
  inboundDropped: number;
  outboundDropped: number;
  accepted: number;
  refused: number;
  /** Accepted connections closed for sending no frame in time. */
  idleClosed: number;
}

let nextConnId = 1;

function plainAddress(host: string): string {
  const h = host.replace(/^\[|\]$/g, "");
  const m = h.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i);
  return m ? m[1] : h.toLowerCase();
}

class Conn {
  readonly info: TlsConnInfo;
  readonly queue: Uint8Array[] = [];
  writing: Promise<void> | null = null;
  done: Promise<void> = Promise.resolve();
  /** True once a whole, valid frame arrived. */
  gotFrame = false;
  constructor(readonly conn: Deno.TlsConn, info: TlsConnInfo) {
    this.info = info;
  }
}

/** A set of TLS connections carrying length-prefixed tunnel messages. */
export class TlsStream {
  readonly #maxFrame: number;
  readonly #maxQueued: number;
  readonly #wake: () => void;
  readonly #hsTimeout: number;
  readonly #maxConns: number;
  readonly #alpn: string;
  readonly #firstFrameTimeout: number;
  readonly #maxPerIp: number;
  /** Accepted connections per source address (for maxConnectionsPerIp). */
  #perIp = new Map<string, number>();
  #conns = new Map<number, Conn>();
  #listener: Deno.TlsListener | null = null;
  #acceptLoop: Promise<void> | null = null;
  #listeners: ((ev: TlsConnEvent) => void)[] = [];
  #closed = false;
  // Inbound ring: frames copied into fixed slots of one ArrayBuffer.
  #ring: Uint8Array[];
  #ringSize: Int32Array;
  #ringFrom: (Endpoint | undefined)[];
  #head = 0;
  #count = 0;
  #stats: TlsStreamStats = {
    framesIn: 0,
    framesOut: 0,
    badFrames: 0,
    inboundDropped: 0,
    outboundDropped: 0,
    accepted: 0,
    refused: 0,
    idleClosed: 0,
  };

  /** Creates an empty stream; add connections with listen() and dial(). */
  constructor(opts: TlsStreamOptions = {}) {
    this.#maxFrame = Math.min(opts.maxFrame ?? 2048 + 64, 65535);
    this.#maxQueued = opts.maxQueuedFrames ?? 256;
    this.#wake = opts.wake ?? (() => {});
    this.#hsTimeout = opts.handshakeTimeoutMs ?? 10000;
    this.#maxConns = opts.maxConnections ?? 4096;
    this.#alpn = opts.alpn ?? "portcullis-wg";
    this.#firstFrameTimeout = opts.firstFrameTimeoutMs ?? 30000;
    this.#maxPerIp = opts.maxConnectionsPerIp ?? 64;
    const cap = opts.inboundCapacity ?? 1024;
    const slab = new ArrayBuffer(cap * this.#maxFrame);
    this.#ring = Array.from(
      { length: cap },
      (_, i) => new Uint8Array(slab, i * this.#maxFrame, this.#maxFrame),
    );
    this.#ringSize = new Int32Array(cap);
    this.#ringFrom = new Array(cap);
  }

  /** The port the listener is bound to (0 before listen()). */
  get port(): number {
    return this.#listener ? (this.#listener.addr as Deno.NetAddr).port : 0;
  }

  /** Frames waiting for drain(). */
  get pending(): number {
    return this.#count;
  }

  /** A copy of the counters. */
  get stats(): TlsStreamStats {
    return { ...this.#stats };
  }

  /** Open and handshaking connections. */
  connections(): TlsConnInfo[] {
    return [...this.#conns.values()].map((c) => ({ ...c.info }));
  }

  /** The connection carrying `ep`, if it is still open. */
  connection(ep: Endpoint): TlsConnInfo | undefined {
    const c = this.#conns.get(ep.connId);
    return c && c.info.endpoint === ep ? { ...c.info } : undefined;
  }

  /** Subscribes to open/close events; returns the unsubscribe function. */
  onEvent(fn: (ev: TlsConnEvent) => void): () => void {
    this.#listeners.push(fn);
    return () => {
      this.#listeners = this.#listeners.filter((f) => f !== fn);
    };
  }

  /** Starts accepting connections; throws when the port cannot be bound. */
  listen(opts: TlsListenOptions): void {
    if (this.#closed) throw new Error("Cannot listen on a closed TLS stream");
    if (this.#listener) {
      throw new Error(`Cannot listen on port ${opts.port}: the stream already listens`);
    }
    const hostname = opts.hostname ?? "0.0.0.0";
    try {
      this.#listener = Deno.listenTls({
        hostname,
        port: opts.port,
        cert: opts.cert,
        key: opts.key,
        alpnProtocols: [this.#alpn],
      });
    } catch (e) {
      throw new Error(
        `Cannot listen for TLS on ${hostname}:${opts.port}: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
    this.#acceptLoop = this.#accept(this.#listener);
  }

  async #accept(listener: Deno.TlsListener): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.TlsConn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (this.#closed || e instanceof Deno.errors.BadResource) return;
        log.warn("TLS accept failed", { error: (e as Error).message });
        continue;
      }
      const from = plainAddress((conn.remoteAddr as Deno.NetAddr).hostname);
      if (this.#conns.size >= this.#maxConns || (this.#perIp.get(from) ?? 0) >= this.#maxPerIp) {
        this.#stats.refused++;
        try {
          conn.close();
        } catch { /* gone */ }
        continue;
      }
      this.#stats.accepted++;
      this.#adopt(conn, "accepted");
    }
  }

  /** Opens a connection to an edge; resolves with its Endpoint once the handshake is done. */
  async dial(opts: TlsDialOptions): Promise<Endpoint> {
    if (this.#closed) throw new Error("Cannot dial on a closed TLS stream");
    const where = `${
      opts.hostname.includes(":") ? `[${opts.hostname}]` : opts.hostname
    }:${opts.port}`;
    const timeout = opts.timeoutMs ?? 10000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let conn: Deno.TlsConn | undefined;
    let connecting: Promise<Deno.TlsConn> | undefined;
    try {
      connecting = Deno.connectTls({
        hostname: opts.hostname,
        port: opts.port,
        caCerts: opts.caCerts,
        alpnProtocols: [this.#alpn],
      }).then(async (c) => {
        conn = c;
        await c.handshake();
        return c;
      });
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeout} ms`)), timeout);
      });
      const c = await Promise.race([connecting, timedOut]);
      // close() ran while we dialled: adopting would leak the connection.
      if (this.#closed) throw new Error("the stream was closed while dialling");
      return this.#adopt(c, "dialled", true).endpoint;
    } catch (e) {
      const closeQuietly = (c: Deno.TlsConn | undefined) => {
        try {
          c?.close();
        } catch { /* gone */ }
      };
      closeQuietly(conn);
      connecting?.then(closeQuietly, () => {}); // a late connection after a timeout
      throw new Error(`Cannot connect over TLS to ${where}: ${(e as Error).message}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  #adopt(conn: Deno.TlsConn, direction: "accepted" | "dialled", handshaken = false): TlsConnInfo {
    const ra = conn.remoteAddr as Deno.NetAddr;
    const connId = nextConnId++;
    const ep = endpoint("tls", plainAddress(ra.hostname), ra.port, connId);
    const c = new Conn(conn, { connId, endpoint: ep, direction, state: "handshaking" });
    this.#conns.set(connId, c);
    if (direction === "accepted") {
      this.#perIp.set(ep.address, (this.#perIp.get(ep.address) ?? 0) + 1);
    }
    c.done = this.#run(c, handshaken);
    return c.info;
  }

  async #run(c: Conn, handshaken: boolean): Promise<void> {
    let reason = "closed by the peer";
    let idle: ReturnType<typeof setTimeout> | undefined;
    try {
      if (!handshaken) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          await Promise.race([
            c.conn.handshake(),
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`handshake took longer than ${this.#hsTimeout} ms`)),
                this.#hsTimeout,
              );
            }),
          ]);
        } finally {
          clearTimeout(timer);
        }
      }
      if (c.info.state === "closed") return;
      c.info.state = "open";
      this.#emit({ type: "open", conn: { ...c.info } });
      if (c.info.direction === "accepted") {
        idle = setTimeout(() => {
          if (c.gotFrame) return;
          this.#stats.idleClosed++;
          this.#closeConn(c, `sent no frame within ${this.#firstFrameTimeout} ms`);
        }, this.#firstFrameTimeout);
      }
      reason = await this.#read(c);
    } catch (e) {
      if (c.info.state !== "closed") reason = `failed: ${(e as Error).message}`;
    } finally {
      clearTimeout(idle);
      this.#drop(c, reason);
    }
  }

  // Reassembles frames across reads; returns why reading stopped.
  async #read(c: Conn): Promise<string> {
    const chunk = new Uint8Array(16384);
    const frame = new Uint8Array(this.#maxFrame);
    let need = -1; // -1: reading the 2-byte header
    let hdr = 0, hdrGot = 0, got = 0;
    while (c.info.state === "open") {
      const n = await c.conn.read(chunk);
      if (n === null) return "closed by the peer";
      let i = 0;
      while (i < n) {
        if (need < 0) {
          hdr = (hdr << 8) | chunk[i++];
          if (++hdrGot < 2) continue;
          if (hdr < 1 || hdr > this.#maxFrame) {
            this.#stats.badFrames++;
            return `sent a frame of ${hdr} bytes (allowed 1-${this.#maxFrame})`;
          }
          need = hdr;
          got = 0;
          continue;
        }
        const take = Math.min(need - got, n - i);
        frame.set(chunk.subarray(i, i + take), got);
        got += take;
        i += take;
        if (got === need) {
          c.gotFrame = true;
          this.#push(frame, need, c.info.endpoint);
          need = -1;
          hdr = 0;
          hdrGot = 0;
        }
      }
    }
    return c.info.reason ?? "closed";
  }

  #push(frame: Uint8Array, len: number, from: Endpoint): void {
    const cap = this.#ring.length;
    if (this.#count === cap) {
      this.#stats.inboundDropped++;
      return;
    }
    const slot = (this.#head + this.#count) % cap;
    this.#ring[slot].set(frame.subarray(0, len));
    this.#ringSize[slot] = len;
    this.#ringFrom[slot] = from;
    this.#count++;
    this.#stats.framesIn++;
    if (this.#count === 1) this.#wake();
  }

  /**
   * Moves up to `max` received frames into bufs[i][offset..] with sizes and
   * senders, synchronously. Frames longer than a slot are dropped. Returns the count.
   */
  drain(bufs: Uint8Array[], sizes: Int32Array, from: Endpoint[], max: number, offset = 0): number {
    const cap = this.#ring.length;
    const limit = Math.min(max, bufs.length, sizes.length);
    let n = 0;
    while (n < limit && this.#count > 0) {
      const slot = this.#head;
      this.#head = (this.#head + 1) % cap;
      this.#count--;
      const len = this.#ringSize[slot];
      if (len > bufs[n].length - offset) {
        this.#stats.inboundDropped++;
        continue;
      }
      bufs[n].set(this.#ring[slot].subarray(0, len), offset);
      sizes[n] = len;
      from[n] = this.#ringFrom[slot]!;
      this.#ringFrom[slot] = undefined;
      n++;
    }
    return n;
  }

  /**
   * Queues one message for the connection carrying `ep`. Returns false (and
   * counts a drop) when that connection is gone, its queue is full, or the
   * message is empty or longer than 65535 bytes.
   */
  send(ep: Endpoint, bytes: Uint8Array): boolean {
    const c = this.#conns.get(ep.connId);
    if (
      !c || c.info.endpoint !== ep || c.info.state !== "open" || bytes.length < 1 ||
      bytes.length > 65535 || c.queue.length >= this.#maxQueued
    ) {
      this.#stats.outboundDropped++;
      return false;
    }
    const framed = new Uint8Array(bytes.length + 2);
    framed[0] = bytes.length >> 8;
    framed[1] = bytes.length & 0xff;
    framed.set(bytes, 2);
    c.queue.push(framed);
    if (!c.writing) c.writing = this.#flush(c);
    return true;
  }

  /** Sends bufs[i][offset .. offset+sizes[i]] to to[i] for i < count; returns how many were queued. */
  sendMany(
    bufs: Uint8Array[],
    sizes: Int32Array,
    to: Endpoint[],
    count: number,
    offset = 0,
  ): number {
    let ok = 0;
    for (let i = 0; i < count; i++) {
      if (this.send(to[i], bufs[i].subarray(offset, offset + sizes[i]))) ok++;
    }
    return ok;
  }

  async #flush(c: Conn): Promise<void> {
    await Promise.resolve(); // let the caller queue the rest of its burst first
    try {
      while (c.queue.length && c.info.state === "open") {
        // Coalesce what is queued into one TLS write.
        let total = 0;
        for (const f of c.queue) total += f.length;
        let data: Uint8Array;
        if (c.queue.length === 1) data = c.queue[0];
        else {
          data = new Uint8Array(total);
          let o = 0;
          for (const f of c.queue) {
            data.set(f, o);
            o += f.length;
          }
        }
        const frames = c.queue.length;
        c.queue.length = 0;
        let off = 0;
        while (off < data.length) off += await c.conn.write(data.subarray(off));
        this.#stats.framesOut += frames;
      }
    } catch (e) {
      this.#stats.outboundDropped += c.queue.length;
      this.#closeConn(c, `write failed: ${(e as Error).message}`);
    } finally {
      c.writing = null;
    }
  }

  /** Closes the connection carrying `ep` (no-op when already gone). */
  disconnect(ep: Endpoint, reason = "closed locally"): void {
    const c = this.#conns.get(ep.connId);
    if (c && c.info.endpoint === ep) this.#closeConn(c, reason);
  }

  #closeConn(c: Conn, reason: string): void {
    if (c.info.state === "closed") return;
    c.info.state = "closed";
    c.info.reason = reason;
    try {
      c.conn.close();
    } catch { /* already closed */ }
  }

  #drop(c: Conn, reason: string): void {
    const wasOpen = c.info.state === "open";
    if (c.info.state !== "closed") {
      c.info.state = "closed";
      c.info.reason = reason;
      try {
        c.conn.close();
      } catch { /* already closed */ }
    }
    c.info.reason ??= reason;
    if (this.#conns.delete(c.info.connId) && c.info.direction === "accepted") {
      const a = c.info.endpoint.address;
      const n = (this.#perIp.get(a) ?? 1) - 1;
      if (n > 0) this.#perIp.set(a, n);
      else this.#perIp.delete(a);
    }
    if (wasOpen || c.info.direction === "dialled") {
      this.#emit({ type: "close", conn: { ...c.info } });
    }
    log.debug("TLS connection closed", { conn: c.info.endpoint.key, reason: c.info.reason });
  }

  #emit(ev: TlsConnEvent): void {
    for (const fn of this.#listeners) {
      try {
        fn(ev);
      } catch (e) {
        log.warn("TLS event listener failed", { error: (e as Error).message });
      }
    }
  }

  /** Stops listening, closes every connection and waits for their loops to end. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#listener?.close();
      } catch { /* already closed */ }
      for (const c of this.#conns.values()) this.#closeConn(c, "stream closed");
    }
    const loops = [...this.#conns.values()].flatMap((c) => [c.done, c.writing]);
    await Promise.allSettled([this.#acceptLoop, ...loops]);
    this.#wake();
  }
}
