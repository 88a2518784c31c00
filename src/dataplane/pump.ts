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
 * Kernel offloads (src/tun/vnet.ts, src/net/udp.ts): one TUN read can be a
 * 64 KiB TCP super-packet that the device cuts into slots, so `filter`,
 * `route` and `tap` still see every inner packet, one at a time, exactly as
 * without offloads; the segments of one super-packet are encrypted in turn
 * and leave as one UDP GSO send; received runs (UDP GRO) are cut back into
 * slots, and the TUN write merges consecutive segments of a connection again.
 * All packet memory — slots and the devices' staging for super-packets — is
 * one PacketArena, so the hot path copies with copyWithin and allocates
 * nothing.
 *
 * Latency: waking from the parked poll goes through a worker thread and the
 * event loop (100–200 µs here). Right after traffic — 2 ms, or while packets
 * keep coming less than 100 ms apart until the next is due (linger.ts) — the
 * pump instead waits in synchronous 1 ms slices (Poller.waitBriefly), which
 * the kernel ends within tens of µs when a packet comes, then parks. A packet
 * written to the TUN is often answered before the write returns; the answer
 * goes out in the same round.
 *
 * Policy never lives here: `filter` and `route` are functions handed in by
 * the role (connector forwarding decision, edge access policy) and swapped as
 * immutable values. `sendTo` lets the role answer a device through its
 * tunnel (the edge's TCP RST / ICMP "prohibited" for a denied flow): the
 * packet is queued, encrypted and sent after the current batch.
 */
import { setImmediate } from "node:timers";
import type { TunDevice } from "../tun/mod.ts";
import type { Endpoint } from "../net/endpoint.ts";
import type { UdpSocket } from "../net/udp.ts";
import type { TlsStream } from "../net/tls_stream.ts";
import { Poller, POLLIN } from "../net/poller.ts";
import { type Peer, TRANSPORT_HEADER_SIZE, type WireGuardDevice } from "../wireguard/mod.ts";
import { PacketArena } from "../packet/arena.ts";
import { Linger, LINGER_MAX_MS, LINGER_MS } from "./linger.ts";
import { SendQueue } from "./send_queue.ts";
import { HandshakeLoad } from "./load.ts";
import { OffloadLog, type OffloadStates, offloadStates, pumpReport } from "./pump_report.ts";
import { type Clock, RoundClock, systemClock } from "../clock.ts";
import { logger } from "../log.ts";

const log = logger("dataplane");

/** Bytes per slot: headroom + largest packet + tag + padding, rounded up. */
export const SLOT_SIZE = 2048 + 64;

/** Largest tunnel MTU a slot holds (config validation caps MTU here). */
export const MAX_MTU = 2000;
// header (16) + MTU + padding to 16 + tag (16) must fit a slot.
if (TRANSPORT_HEADER_SIZE + Math.ceil(MAX_MTU / 16) * 16 + 16 > SLOT_SIZE) {
  throw new Error(`Cannot size packet slots: ${SLOT_SIZE} bytes do not hold MTU ${MAX_MTU}`);
}

export { LOAD_BATCH_THRESHOLD, LOAD_RATE_THRESHOLD, UNDER_LOAD_HOLD_MS } from "./load.ts";
/** Default slots per batch: room for two 64 KiB super-packets' segments. */
export const DEFAULT_BATCH = 128;
/**
 * One synchronous slice of lingering: the most the event loop is held at a
 * time. A packet ends a slice at once; the length only sets how often the
 * rest of the process gets a turn meanwhile (each turn costs ~50–90 µs of CPU
 * after a sleep here, so shorter slices cost more and gain nothing).
 */
const LINGER_SLICE_US = 1000;
/** #step(): go round again after the event loop had a turn. */
const YIELD = -1;
/** #step(): the pump was stopped. */
const STOP = -2;

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
  /** Packets per batch (default 128). */
  batch?: number;
  /**
   * After traffic, wait this long in short synchronous slices before parking
   * (default 2 ms; 0 parks at once). Lower latency for request/response
   * traffic for a little CPU; the event loop is held at most 1 ms at a time.
   */
  lingerMs?: number;
  /** Longest linger for traffic that keeps coming at short intervals (default 100 ms; see LINGER_MAX_MS). */
  lingerMaxMs?: number;
  filter?: FilterFn;
  route?: RouteFn;
  tap?: TapFn | null;
  /** Initiations in one receive batch above which the device goes under load (default 32). */
  loadBatchThreshold?: number;
  /** Initiations per second above which the device goes under load (default 100). */
  loadRateThreshold?: number;
  /** Told about every error the pump survived (a failing callback or read). */
  onError?: (error: unknown, where: PumpErrorSite) => void;
  /** Told once when the loop has ended: null after stop(), else the error that ended it. */
  onStopped?: (error: unknown | null) => void;
  /** Pause before retrying a round whose TUN/UDP read failed (default 100 ms). */
  retryPauseMs?: number;
}

/** Where an error the pump survived came from. */
export type PumpErrorSite = "tap" | "filter" | "route" | "round";

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
  /** Parked waits ended by poke(). */
  pokes: number;
  /** Handshake initiations seen on the transports. */
  initiations: number;
  /** Times the pump switched the device into cookie (under load) mode. */
  underLoadEntered: number;
  /** Packets dropped because the filter threw. */
  filterErrors: number;
  /** Packets dropped because the router threw. */
  routeErrors: number;
  /** Rounds that failed (a TUN/UDP read or write threw) and were retried. */
  roundErrors: number;
  /** Packets sent to a peer through sendTo(). */
  injected: number;
  /** sendTo() packets refused (queue full, too large). */
  injectDropped: number;
}

/** Most sendTo() packets waiting for the next flush. */
export const INJECT_QUEUE = 256;
/** Slots sendTo() packets are encrypted in. */
const INJECT_SLOTS = 8;

/** A batch of slots carved from the arena, with per-slot sizes and endpoints. */
class SlotBatch {
  readonly bufs: Uint8Array[];
  readonly sizes: Int32Array;
  readonly eps: Endpoint[];
  count = 0;
  constructor(arena: PacketArena | null, n: number) {
    this.bufs = arena ? arena.carveMany(n, SLOT_SIZE) : [];
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
  readonly #linger: Linger;
  #quiet = false;
  #tlsAt = -Infinity;
  #eventLoopBusy: (() => boolean) | null = null;
  readonly #arena: PacketArena;
  #udpStaging: Uint8Array | null = null;
  readonly #offloadLog = new OffloadLog();
  #nextOffloadCheck = 0;
  #filter: FilterFn | null;
  #route: RouteFn | null;
  #tap: TapFn | null;

  // Slots: TUN reads, network receives, and the send lists that point into them.
  readonly #tunIn: SlotBatch;
  readonly #netIn: SlotBatch;
  readonly #out: SendQueue; // references to slots of the two batches above
  readonly #tunOut: SlotBatch;

  #running = false;
  #stopped: Promise<void> | null = null;
  #stopResolve: (() => void) | null = null;
  /** Ends the current parked wait early (see poke). */
  #pokeResolve: (() => void) | null = null;
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
    pokes: 0,
    initiations: 0,
    underLoadEntered: 0,
    filterErrors: 0,
    routeErrors: 0,
    roundErrors: 0,
    injected: 0,
    injectDropped: 0,
  };
  readonly #injectQueue: { peer: Peer; packet: Uint8Array }[] = [];
  readonly #injectSlots: SlotBatch;
  readonly #onError: ((error: unknown, where: PumpErrorSite) => void) | null;
  readonly #onStopped: ((error: unknown | null) => void) | null;
  readonly #retryPauseMs: number;

  // Handshake flood defence: count initiations over a 1 s window and per batch.
  readonly #load: HandshakeLoad;
  /** The clock, when it can be held for a round (see RoundClock). */
  readonly #round: RoundClock | null;

  /** Builds a pump; call run() to start moving packets. */
  constructor(opts: PumpOptions) {
    this.#tun = opts.tun;
    this.#dev = opts.device;
    this.#udp = opts.udp ?? null;
    this.#tls = opts.tls ?? null;
    this.#ownPoller = !opts.poller;
    this.#poller = opts.poller ?? new Poller();
    this.#clock = opts.clock ?? systemClock;
    this.#round = this.#clock instanceof RoundClock ? this.#clock : null;
    this.#batch = opts.batch ?? DEFAULT_BATCH;
    this.#linger = new Linger(opts.lingerMs ?? LINGER_MS, opts.lingerMaxMs ?? LINGER_MAX_MS);
    this.#filter = opts.filter ?? null;
    this.#route = opts.route ?? null;
    this.#tap = opts.tap ?? null;
    this.#load = new HandshakeLoad(opts.loadBatchThreshold, opts.loadRateThreshold);
    this.#onError = opts.onError ?? null;
    this.#onStopped = opts.onStopped ?? null;
    this.#retryPauseMs = opts.retryPauseMs ?? 100;
    // One arena for every packet byte: the slot batches, then the devices' staging.
    const tunStaging = this.#tun.stagingBytes ?? 0;
    const udpStaging = this.#udp?.stagingBytes ?? 0;
    this.#arena = new PacketArena(
      (2 * this.#batch + INJECT_SLOTS) * SLOT_SIZE + tunStaging + udpStaging + 128,
    );
    this.#tunIn = new SlotBatch(this.#arena, this.#batch);
    this.#netIn = new SlotBatch(this.#arena, this.#batch);
    this.#injectSlots = new SlotBatch(this.#arena, INJECT_SLOTS);
    if (tunStaging > 0) this.#tun.useStaging?.(this.#arena.carve(tunStaging));
    if (udpStaging > 0) {
      this.#udpStaging = this.#arena.carve(udpStaging);
      this.#udp!.useStaging(this.#udpStaging);
    }
    this.#out = new SendQueue(this.#batch * 2, this.stats);
    this.#out.udp = this.#udp;
    this.#out.tls = this.#tls;
    this.#tunOut = new SlotBatch(null, 0);
    // The TUN write list holds references to slots; size it to the batch.
    (this.#tunOut as { bufs: Uint8Array[] }).bufs = new Array(this.#batch);
    (this.#tunOut as { sizes: Int32Array }).sizes = new Int32Array(this.#batch);
  }

  /** The poller the pump waits on (the TLS transport should wake it). */
  get poller(): Poller {
    return this.#poller;
  }

  /** True while the device demands cookies (mac2) from initiators because of a flood. */
  get underLoad(): boolean {
    return this.#load.underLoad;
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
    this.#out.tls = tls;
    this.#poller.wake();
  }

  /** Attaches or replaces the UDP socket (it takes over the old one's staging when it fits). */
  setUdp(udp: UdpSocket | null): void {
    if (this.#udp && this.#udp.fd >= 0) this.#poller.remove(this.#udp.fd);
    this.#udp = udp;
    this.#out.udp = udp;
    if (udp && this.#udpStaging && udp.stagingBytes <= this.#udpStaging.length) {
      udp.useStaging(this.#udpStaging);
    }
    if (udp && this.#running) this.#poller.add(udp.fd, POLLIN);
    this.#nextOffloadCheck = 0;
  }

  /**
   * Which kernel offloads are on, and why the others are off, by name
   * (tun_tso, tun_uso, tun_gro_tcp, tun_gro_udp, udp_gso, udp_gro).
   */
  offloads(): OffloadStates {
    return offloadStates(this.#tun, this.#udp);
  }

  /**
   * What `wg show`'s Portcullis stats print (UAPI get=portcullis-stats): the
   * pump's counters, the devices' offload counters, and `offload_<name>` as
   * "on" or "off: <why>".
   */
  report(): Record<string, number | string> {
    return pumpReport(this.stats, this.#tun, this.#udp);
  }

  #logOffloads(): void {
    this.#offloadLog.note(this.#tun.name, this.offloads());
  }

  /**
   * Queues a plaintext IP packet for `peer` (encrypted and sent after the
   * current batch, or at once when idle). Bounded: returns false and counts
   * the drop when the queue is full or the packet does not fit a slot.
   */
  sendTo(peer: Peer, packet: Uint8Array): boolean {
    if (
      this.#injectQueue.length >= INJECT_QUEUE ||
      TRANSPORT_HEADER_SIZE + Math.ceil(packet.length / 16) * 16 + 16 > SLOT_SIZE
    ) {
      this.stats.injectDropped++;
      return false;
    }
    this.#injectQueue.push({ peer, packet });
    this.#poller.wake();
    return true;
  }

  /** Wakes the loop so it looks at timers and queues now (e.g. after setPeer). */
  kick(): void {
    this.#poller.wake();
  }

  /**
   * Something on this thread has just written what the kernel routes into
   * the TUN (the web proxy answering a device over its socket): look on the
   * event loop's next turn instead of when the parked poll's worker thread
   * wakes the loop (100–300 µs later; measured, once per proxied request).
   * Costs nothing unless the pump is parked.
   */
  poke(): void {
    const r = this.#pokeResolve;
    if (!r) return;
    this.#pokeResolve = null;
    this.stats.pokes++;
    r();
  }

  /**
   * Tells the pump whether another part of the process has work in flight
   * that moves through the event loop (the edge's web proxy: its sockets,
   * TLS sessions and fetches). While it says so the pump does not linger in
   * synchronous ppoll slices: each slice holds the event loop up to 1 ms, and
   * a proxied request takes dozens of event-loop steps (bench:proxy saw
   * ~90 ms a 1 KiB request with lingering on; the tunnel's own wake-up then
   * costs the parked poll's 100-200 µs instead).
   */
  setEventLoopBusy(busy: (() => boolean) | null): void {
    this.#eventLoopBusy = busy;
  }

  /** Runs until stop(); resolves when the loop has ended. */
  run(): Promise<void> {
    if (this.#stopped) return this.#stopped;
    this.#running = true;
    this.#logOffloads();
    if (this.#tun.fd >= 0) this.#poller.add(this.#tun.fd, POLLIN);
    if (this.#udp) this.#poller.add(this.#udp.fd, POLLIN);
    this.#stopped = new Promise((r) => (this.#stopResolve = r));
    let failure: unknown = null;
    this.#loop().catch((e) => {
      failure = e;
      log.error("Data plane stopped on an error", { error: String(e?.stack ?? e) });
    }).finally(() => {
      this.#running = false;
      if (this.#ownPoller) this.#poller.close();
      this.#stopResolve?.();
      this.#notify(() => this.#onStopped?.(failure));
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

  /** Calls an owner's hook; a throwing hook must not take the pump down. */
  #notify(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      log.error("Data plane hook failed", { error: String(e) });
    }
  }

  #failed(error: unknown, where: PumpErrorSite): void {
    const onError = this.#onError;
    if (onError) this.#notify(() => onError(error, where));
  }

  /**
   * Why a failing round is retried rather than fatal: the pump is the whole
   * data plane, and a transient EIO/ENOBUFS on one read must not end the
   * tunnel silently. Errors after stop() began are expected (fds closing).
   */
  async #loop(): Promise<void> {
    // One await per round: a step runs synchronously and says what to wait for.
    const yieldNow = () => new Promise<void>((r) => setImmediate(r));
    while (this.#running) {
      try {
        // A RoundClock is held for the round: one time read, not one per packet.
        const round = this.#round;
        round?.hold();
        let next: number;
        try {
          next = this.#step();
        } finally {
          round?.release();
        }
        if (next === STOP) break;
        if (next === YIELD) await yieldNow();
        else {
          // Fake devices have no fd: their readable() races the poller. A
          // poke ends the wait early; the parked poll then stays pending and
          // the next park shares it (Poller.wait).
          const poked = new Promise<void>((r) => (this.#pokeResolve = r));
          const parked = this.#tun.fd < 0
            ? Promise.race([this.#tun.readable(next), this.#poller.wait(next)])
            : this.#poller.wait(next);
          await Promise.race([parked, poked]);
          this.#pokeResolve = null;
        }
      } catch (e) {
        if (!this.#running) break;
        this.stats.roundErrors++;
        log.error("Data plane round failed; retrying", { error: String(e) });
        this.#failed(e, "round");
        await new Promise((r) => setTimeout(r, this.#retryPauseMs));
      }
    }
  }

  /** One round of moving packets and running timers; returns YIELD, STOP or milliseconds to park. */
  #step(): number {
    this.stats.rounds++;
    let work = 0;
    // A linger slice that ended with nothing ready and no wake-up leaves nothing to read.
    if (!this.#quiet || this.#tls?.pending || this.#dev.hasOutgoing) {
      work = this.#tunToNet();
      const inbound = this.#netToTun();
      // A packet written to the TUN is often answered before the write returns
      // (an echo reply, a local TCP ACK): send the answer in this round, not the next.
      if (inbound > 0) work += inbound + this.#tunToNet();
    }
    this.#quiet = false;
    this.#flushInjected();
    if (this.#dev.hasOutgoing) this.#out.addOutgoing(this.#dev.drainOutgoing());
    const now = this.#clock.monotonic();
    if (this.#load.expire(now)) {
      this.#dev.setUnderLoad(false);
      log.info("Handshake load dropped; cookies no longer required");
    }
    let deadline = this.#dev.nextDeadline();
    if (this.#load.underLoad) deadline = Math.min(deadline, this.#load.until);
    if (now >= deadline) {
      this.#dev.tick();
      if (this.#dev.hasOutgoing) this.#out.addOutgoing(this.#dev.drainOutgoing());
      deadline = this.#dev.nextDeadline();
    }
    if (now >= this.#nextOffloadCheck) {
      // Runtime fallbacks (a refused merged write, a GSO size refusal) are said once.
      this.#nextOffloadCheck = now + 1000;
      this.#logOffloads();
    }
    if (!this.#running) return STOP;
    if (work > 0) {
      // Busy: let the rest of the process (HTTP API, TLS streams) breathe, then go on.
      this.#linger.busy(now);
      return YIELD;
    }
    const linger = this.#linger.remaining(now);
    if (
      linger > 0 && this.#tun.fd >= 0 && now < deadline && now - this.#tlsAt > 1000 &&
      !this.#eventLoopBusy?.() && !this.#poller.waiting
    ) {
      // Just after traffic, or while it comes at short intervals: the kernel
      // wakes a thread blocked in ppoll far sooner than the event loop does.
      // (Not while a parked poll is still pending, as after a poke: the fds
      // are its, a slice would return at once, and the pump would spin.)
      // (Not while a peer talks over TLS: its datagrams come through the event loop.)
      const us = Math.min(LINGER_SLICE_US, linger * 1000, (deadline - now) * 1000);
      const woken = this.#poller.wakeups;
      const ready = this.#poller.waitBriefly(Math.max(1, us));
      this.#quiet = ready === 0 && this.#poller.wakeups === woken;
      return YIELD;
    }
    this.stats.waits++;
    return Math.max(0, Math.min(1000, Math.ceil(deadline - this.#clock.monotonic())));
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
    for (let i = 0; i < n; i++) {
      const slot = b.bufs[i];
      const len = b.sizes[i];
      if (this.#tap) this.#runTap("out", slot, TRANSPORT_HEADER_SIZE, len);
      if (this.#filter && this.#runFilter(slot, len) === "drop") {
        this.stats.filtered++;
        continue;
      }
      const r = this.#dev.outbound(slot, len);
      if (r.kind === "send") this.#out.add(slot, r.length, r.endpoint!);
      else if (r.kind === "queued") this.stats.queued++;
      else this.stats.outboundDropped++;
    }
    this.#out.flush();
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
        this.#tlsAt = this.#clock.monotonic();
        total += n;
        this.#handleInbound(b, n);
      }
    }
    return total;
  }

  /** Counts a batch's initiations before any is processed (see load.ts): a flood gets cookies at once. */
  #checkLoad(b: SlotBatch, n: number): void {
    const inits = this.#load.count(b.bufs, b.sizes, n);
    if (inits === 0) return;
    this.stats.initiations += inits;
    if (this.#load.note(inits, this.#clock.monotonic())) {
      this.stats.underLoadEntered++;
      this.#dev.setUnderLoad(true);
      log.warn("Handshake initiation flood; requiring cookies", {
        batch: inits,
        perSecond: this.#load.perSecond,
      });
    }
  }

  #handleInbound(b: SlotBatch, n: number): void {
    this.stats.received += n;
    this.#checkLoad(b, n);
    const tunOut = this.#tunOut;
    tunOut.count = 0;
    for (let i = 0; i < n; i++) {
      const slot = b.bufs[i];
      const r = this.#dev.inbound(slot, b.sizes[i], b.eps[i]);
      if (r.kind !== "data") continue;
      const len = r.length;
      const peer = r.peer!;
      let dest: "tun" | "drop" | Peer = "tun";
      if (this.#route) dest = this.#runRoute(slot, r.offset, len, peer);
      if (dest === "tun") {
        if (this.#tap) this.#runTap("in", slot, r.offset, len);
        tunOut.bufs[tunOut.count] = slot;
        tunOut.sizes[tunOut.count++] = len;
      } else if (dest === "drop") {
        this.stats.routedDrop++;
      } else {
        // Client-to-client: the plaintext already sits at the headroom offset.
        const o = this.#dev.outboundTo(dest, slot, len);
        if (o.kind === "send") {
          this.stats.forwarded++;
          this.#out.add(slot, o.length, o.endpoint!);
        } else if (o.kind === "queued") this.stats.queued++;
        else this.stats.outboundDropped++;
      }
    }
    if (tunOut.count > 0) {
      const w = this.#tun.write(tunOut.bufs, tunOut.sizes, TRANSPORT_HEADER_SIZE, tunOut.count);
      this.stats.tunWritten += w;
      this.stats.tunWriteDropped += tunOut.count - w;
    }
    this.#out.flush();
    this.#flushInjected();
  }

  /** Encrypts and sends what sendTo() queued, through slots of its own. */
  #flushInjected(): void {
    const q = this.#injectQueue;
    if (q.length === 0) return;
    const slots = this.#injectSlots.bufs;
    let used = 0;
    for (const { peer, packet } of q) {
      // The send queue points into these slots: send before one is reused.
      if (used === slots.length) {
        this.#out.flush();
        used = 0;
      }
      const slot = slots[used++];
      slot.set(packet, TRANSPORT_HEADER_SIZE);
      const o = this.#dev.outboundTo(peer, slot, packet.length);
      if (o.kind === "send") {
        this.stats.injected++;
        this.#out.add(slot, o.length, o.endpoint!);
      } else if (o.kind === "queued") this.stats.queued++;
      else this.stats.outboundDropped++;
    }
    q.length = 0;
    this.#out.flush();
  }

  /** A throwing tap (packet capture) is removed; packets keep flowing. */
  #runTap(dir: "in" | "out", slot: Uint8Array, offset: number, len: number): void {
    const tap = this.#tap!;
    try {
      tap(dir, slot, offset, len);
    } catch (e) {
      if (this.#tap === tap) this.#tap = null;
      log.error("Packet capture tap failed; removed it", { error: String(e) });
      this.#failed(e, "tap");
    }
  }

  /** A throwing filter drops that packet (fail closed) and is counted. */
  #runFilter(slot: Uint8Array, len: number): FilterVerdict {
    try {
      return this.#filter!(slot, TRANSPORT_HEADER_SIZE, len);
    } catch (e) {
      const n = ++this.stats.filterErrors;
      // Logged at powers of two so a policy bug at line rate cannot flood the log.
      if ((n & (n - 1)) === 0) {
        log.error("Outbound filter failed; dropped the packet", { error: String(e), count: n });
      }
      this.#failed(e, "filter");
      return "drop";
    }
  }

  /** A throwing router drops that packet (fail closed) and is counted. */
  #runRoute(slot: Uint8Array, offset: number, len: number, peer: Peer): "tun" | "drop" | Peer {
    try {
      return this.#route!(slot, offset, len, peer);
    } catch (e) {
      const n = ++this.stats.routeErrors;
      // Logged at powers of two so a policy bug at line rate cannot flood the log.
      if ((n & (n - 1)) === 0) {
        log.error("Inbound router failed; dropped the packet", { error: String(e), count: n });
      }
      this.#failed(e, "route");
      return "drop";
    }
  }
}
