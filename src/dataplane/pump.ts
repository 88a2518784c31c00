/**
 * The pump: joins a TunDevice, the WireGuard protocol and the transports.
 *
 * Packet path (DESIGN.md §4):
 *
 *   outbound                                    inbound
 *   ────────                                    ───────
 *   TUN read (batch, at slot+16)                UDP recvmmsg (batch) / TLS drain
 *     │                                           │
 *     ▼                                           ▼
 *   filter(pkt) ── drop ─▶ counted              device.inbound(): decrypt in place,
 *     │ pass                                     replay + allowed-source checks
 *     ▼                                           │ data at slot+16
 *   device.outbound(): allowed-IPs lookup,        ▼
 *   header + pad + encrypt in place             route(pkt, peer) ── drop ─▶ counted
 *     │ send            │ queued (no session)     │ tun          │ peer (client-to-client)
 *     ▼                 ▼                         ▼              ▼
 *   UDP sendmmsg     handshake via              TUN write     device.outboundTo(): re-encrypt
 *   or TLS frame     drainOutgoing()            (batch)       in place, send to that peer
 *
 * Control messages (handshakes, cookie replies, keepalives, packets staged
 * while a handshake ran) come out of device.drainOutgoing() and go to the
 * endpoint's transport. Timers run from device.nextDeadline().
 *
 * Why this shape: one JS thread, so every syscall is a synchronous FFI call
 * in a batch, and the only asynchronous wait is a single poll over the TUN fd,
 * the UDP fd and the wake-up eventfd (the TLS transport wakes it). A busy loop
 * yields to the event loop with setImmediate after each round so the HTTP API
 * and TLS streams in the same process keep running.
 *
 * Policy never lives here: `filter` and `route` are functions handed in by
 * the role (connector forwarding decision, edge access policy) and swapped as
 * immutable values.
 */
import { setImmediate } from "node:timers";
import type { TunDevice } from "../tun/mod.ts";
import type { Endpoint } from "../net/endpoint.ts";
import type { UdpSocket } from "../net/udp.ts";
import type { TlsStream } from "../net/tls_stream.ts";
import { Poller, POLLIN } from "../net/poller.ts";
import { type Peer, TRANSPORT_HEADER_SIZE, type WireGuardDevice } from "../wireguard/mod.ts";
import { type Clock, systemClock } from "../clock.ts";
import { logger } from "../log.ts";

const log = logger("dataplane");

/** Bytes per slot: headroom + largest packet + tag + padding, rounded up. */
export const SLOT_SIZE = 2048 + 64;

/** Verdict of an outbound filter: pass to the tunnel, or drop. */
export type FilterVerdict = "pass" | "drop";

/**
 * Decides about a decrypted inbound packet: write it to the TUN ("tun"), drop
 * it ("drop"), or forward it straight to another peer (client-to-client).
 */
export type RouteFn = (
  buf: Uint8Array,
  offset: number,
  length: number,
  from: Peer,
) => "tun" | "drop" | Peer;

/** Looks at an outbound packet read from the TUN before it is encrypted. */
export type FilterFn = (buf: Uint8Array, offset: number, length: number) => FilterVerdict;

/** Sees every packet that crosses the TUN (for packet capture). */
export type TapFn = (
  direction: "in" | "out",
  buf: Uint8Array,
  offset: number,
  length: number,
) => void;

/** What the pump is built from. */
export interface PumpOptions {
  tun: TunDevice;
  device: WireGuardDevice;
  udp?: UdpSocket | null;
  tls?: TlsStream | null;
  /** Shared poller; the pump registers the TUN and UDP fds. Made if absent. */
  poller?: Poller;
  clock?: Clock;
  /** Packets per batch (default 64). */
  batch?: number;
  filter?: FilterFn;
  route?: RouteFn;
  tap?: TapFn | null;
}

/** Counters the pump keeps, beside the protocol's own drop counters. */
export interface PumpStats {
  tunRead: number;
  tunWritten: number;
  tunWriteDropped: number;
  sent: number;
  sendDropped: number;
  received: number;
  filtered: number;
  routedDrop: number;
  forwarded: number;
  queued: number;
  outboundDropped: number;
  rounds: number;
  waits: number;
}

/** A batch of slots carved from one ArrayBuffer, with per-slot sizes and endpoints. */
class SlotBatch {
  readonly bufs: Uint8Array[];
  readonly sizes: Int32Array;
  readonly eps: Endpoint[];
  count = 0;
  constructor(n: number) {
    const ab = new ArrayBuffer(n * SLOT_SIZE);
    this.bufs = Array.from({ length: n }, (_, i) => new Uint8Array(ab, i * SLOT_SIZE, SLOT_SIZE));
    this.sizes = new Int32Array(n);
    this.eps = new Array(n);
  }
}

/**
 * Runs the data plane until stop(). One instance per tunnel interface.
 */
export class Pump {
  readonly #tun: TunDevice;
  readonly #dev: WireGuardDevice;
  #udp: UdpSocket | null;
  #tls: TlsStream | null;
  readonly #poller: Poller;
  readonly #ownPoller: boolean;
  readonly #clock: Clock;
  readonly #batch: number;
  #filter: FilterFn | null;
  #route: RouteFn | null;
  #tap: TapFn | null;

  // Slots: TUN reads, network receives, and the send lists that point into them.
  readonly #tunIn: SlotBatch;
  readonly #netIn: SlotBatch;
  readonly #udpOut: SlotBatch; // bufs replaced by references to slots of the two batches above
  readonly #tunOut: SlotBatch;

  #running = false;
  #stopped: Promise<void> | null = null;
  #stopResolve: (() => void) | null = null;
  readonly stats: PumpStats = {
    tunRead: 0,
    tunWritten: 0,
    tunWriteDropped: 0,
    sent: 0,
    sendDropped: 0,
    received: 0,
    filtered: 0,
    routedDrop: 0,
    forwarded: 0,
    queued: 0,
    outboundDropped: 0,
    rounds: 0,
    waits: 0,
  };

  /** Builds a pump; call run() to start moving packets. */
  constructor(opts: PumpOptions) {
    this.#tun = opts.tun;
    this.#dev = opts.device;
    this.#udp = opts.udp ?? null;
    this.#tls = opts.tls ?? null;
    this.#ownPoller = !opts.poller;
    this.#poller = opts.poller ?? new Poller();
    this.#clock = opts.clock ?? systemClock;
    this.#batch = opts.batch ?? 64;
    this.#filter = opts.filter ?? null;
    this.#route = opts.route ?? null;
    this.#tap = opts.tap ?? null;
    this.#tunIn = new SlotBatch(this.#batch);
    this.#netIn = new SlotBatch(this.#batch);
    this.#udpOut = new SlotBatch(0);
    this.#tunOut = new SlotBatch(0);
    // Send lists hold references to slots; size them to the batch.
    (this.#udpOut as { bufs: Uint8Array[] }).bufs = new Array(this.#batch * 2);
    (this.#udpOut as { sizes: Int32Array }).sizes = new Int32Array(this.#batch * 2);
    (this.#udpOut as { eps: Endpoint[] }).eps = new Array(this.#batch * 2);
    (this.#tunOut as { bufs: Uint8Array[] }).bufs = new Array(this.#batch);
    (this.#tunOut as { sizes: Int32Array }).sizes = new Int32Array(this.#batch);
  }

  /** The poller the pump waits on (the TLS transport should wake it). */
  get poller(): Poller {
    return this.#poller;
  }

  /** Replaces the outbound filter (a new immutable policy value). */
  setFilter(fn: FilterFn | null): void {
    this.#filter = fn;
  }

  /** Replaces the inbound router (a new immutable policy value). */
  setRoute(fn: RouteFn | null): void {
    this.#route = fn;
  }

  /** Starts or stops handing every TUN packet to `fn` (packet capture). */
  setTap(fn: TapFn | null): void {
    this.#tap = fn;
  }

  /** Attaches or replaces the TLS transport (fallback dialled later). */
  setTls(tls: TlsStream | null): void {
    this.#tls = tls;
    this.#poller.wake();
  }

  /** Attaches or replaces the UDP socket. */
  setUdp(udp: UdpSocket | null): void {
    if (this.#udp && this.#udp.fd >= 0) this.#poller.remove(this.#udp.fd);
    this.#udp = udp;
    if (udp && this.#running) this.#poller.add(udp.fd, POLLIN);
  }

  /** Wakes the loop so it looks at timers and queues now (e.g. after setPeer). */
  kick(): void {
    this.#poller.wake();
  }

  /** Runs until stop(); resolves when the loop has ended. */
  run(): Promise<void> {
    if (this.#stopped) return this.#stopped;
    this.#running = true;
    if (this.#tun.fd >= 0) this.#poller.add(this.#tun.fd, POLLIN);
    if (this.#udp) this.#poller.add(this.#udp.fd, POLLIN);
    this.#stopped = new Promise((r) => (this.#stopResolve = r));
    this.#loop().catch((e) => {
      log.error("Data plane stopped on an error", { error: String(e?.stack ?? e) });
    }).finally(() => {
      this.#running = false;
      if (this.#ownPoller) this.#poller.close();
      this.#stopResolve?.();
    });
    return this.#stopped;
  }

  /** Stops the loop; resolves once it has ended. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#poller.wake();
    await this.#stopped;
  }

  async #loop(): Promise<void> {
    const memTun = this.#tun.fd < 0;
    while (this.#running) {
      this.stats.rounds++;
      let work = this.#tunToNet();
      work += this.#netToTun();
      if (this.#dev.hasOutgoing) this.#flushOutgoing();
      const now = this.#clock.monotonic();
      let deadline = this.#dev.nextDeadline();
      if (now >= deadline) {
        this.#dev.tick();
        if (this.#dev.hasOutgoing) this.#flushOutgoing();
        deadline = this.#dev.nextDeadline();
      }
      if (!this.#running) break;
      if (work > 0) {
        // Busy: let the rest of the process (HTTP API, TLS streams) breathe, then go on.
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      const wait = Math.max(0, Math.min(1000, Math.ceil(deadline - this.#clock.monotonic())));
      this.stats.waits++;
      if (memTun) {
        // Fake devices have no fd: race their readable() against the poller.
        await Promise.race([this.#tun.readable(wait), this.#poller.wait(wait)]);
      } else {
        await this.#poller.wait(wait);
      }
    }
  }

  /** TUN → filter → encrypt → transports. Returns packets read. */
  #tunToNet(): number {
    const b = this.#tunIn;
    let n: number;
    try {
      n = this.#tun.read(b.bufs, b.sizes, TRANSPORT_HEADER_SIZE);
    } catch (e) {
      if (!this.#running) return 0;
      throw e;
    }
    if (n === 0) return 0;
    this.stats.tunRead += n;
    const out = this.#udpOut;
    out.count = 0;
    for (let i = 0; i < n; i++) {
      const slot = b.bufs[i];
      const len = b.sizes[i];
      if (this.#tap) this.#tap("out", slot, TRANSPORT_HEADER_SIZE, len);
      if (this.#filter && this.#filter(slot, TRANSPORT_HEADER_SIZE, len) === "drop") {
        this.stats.filtered++;
        continue;
      }
      const r = this.#dev.outbound(slot, len);
      if (r.kind === "send") this.#enqueueSend(slot, r.length, r.endpoint!);
      else if (r.kind === "queued") this.stats.queued++;
      else this.stats.outboundDropped++;
    }
    this.#flushSends();
    return n;
  }

  /** Transports → decrypt → route → TUN or another peer. Returns datagrams received. */
  #netToTun(): number {
    let total = 0;
    if (this.#udp) {
      const b = this.#netIn;
      const n = this.#udp.recv(b.bufs, b.sizes, b.eps, 0);
      if (n > 0) {
        total += n;
        this.#handleInbound(b, n);
      }
    }
    if (this.#tls && this.#tls.pending > 0) {
      const b = this.#netIn;
      const n = this.#tls.drain(b.bufs, b.sizes, b.eps, b.bufs.length, 0);
      if (n > 0) {
        total += n;
        this.#handleInbound(b, n);
      }
    }
    return total;
  }

  #handleInbound(b: SlotBatch, n: number): void {
    this.stats.received += n;
    const tunOut = this.#tunOut;
    tunOut.count = 0;
    this.#udpOut.count = 0;
    for (let i = 0; i < n; i++) {
      const slot = b.bufs[i];
      const r = this.#dev.inbound(slot, b.sizes[i], b.eps[i]);
      if (r.kind !== "data") continue;
      const len = r.length;
      const peer = r.peer!;
      let dest: "tun" | "drop" | Peer = "tun";
      if (this.#route) dest = this.#route(slot, r.offset, len, peer);
      if (dest === "tun") {
        if (this.#tap) this.#tap("in", slot, r.offset, len);
        tunOut.bufs[tunOut.count] = slot;
        tunOut.sizes[tunOut.count++] = len;
      } else if (dest === "drop") {
        this.stats.routedDrop++;
      } else {
        // Client-to-client: the plaintext already sits at the headroom offset.
        const o = this.#dev.outboundTo(dest, slot, len);
        if (o.kind === "send") {
          this.stats.forwarded++;
          this.#enqueueSend(slot, o.length, o.endpoint!);
        } else if (o.kind === "queued") this.stats.queued++;
        else this.stats.outboundDropped++;
      }
    }
    if (tunOut.count > 0) {
      const w = this.#tun.write(tunOut.bufs, tunOut.sizes, TRANSPORT_HEADER_SIZE, tunOut.count);
      this.stats.tunWritten += w;
      this.stats.tunWriteDropped += tunOut.count - w;
    }
    this.#flushSends();
  }

  #enqueueSend(slot: Uint8Array, length: number, ep: Endpoint): void {
    if (ep.transport === "tls") {
      if (this.#tls && this.#tls.send(ep, slot.subarray(0, length))) this.stats.sent++;
      else this.stats.sendDropped++;
      return;
    }
    const out = this.#udpOut;
    out.bufs[out.count] = slot;
    out.sizes[out.count] = length;
    out.eps[out.count++] = ep;
    if (out.count === out.bufs.length) this.#flushSends();
  }

  #flushSends(): void {
    const out = this.#udpOut;
    if (out.count === 0) return;
    if (!this.#udp) {
      this.stats.sendDropped += out.count;
      out.count = 0;
      return;
    }
    let off = 0;
    while (off < out.count) {
      const sent = this.#udp.send(
        off === 0 ? out.bufs : out.bufs.slice(off),
        off === 0 ? out.sizes : out.sizes.subarray(off),
        off === 0 ? out.eps : out.eps.slice(off),
        out.count - off,
        0,
      );
      if (sent <= 0) {
        // Socket buffer full: UDP may drop, and so do we (TCP inside recovers).
        this.stats.sendDropped += out.count - off;
        break;
      }
      this.stats.sent += sent;
      off += sent;
    }
    out.count = 0;
  }

  #flushOutgoing(): void {
    const msgs = this.#dev.drainOutgoing();
    for (const m of msgs) {
      if (m.endpoint.transport === "tls") {
        if (this.#tls && this.#tls.send(m.endpoint, m.data)) this.stats.sent++;
        else this.stats.sendDropped++;
        continue;
      }
      const out = this.#udpOut;
      out.bufs[out.count] = m.data;
      out.sizes[out.count] = m.data.length;
      out.eps[out.count++] = m.endpoint;
      if (out.count === out.bufs.length) this.#flushSends();
    }
    this.#flushSends();
  }
}
