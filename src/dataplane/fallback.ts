/**
 * Transport fallback for one client peer: WireGuard over UDP first, the same
 * messages over TLS on TCP when UDP gets no handshake answer, and back to UDP
 * when it works again (DESIGN.md §3).
 *
 *   udp ── handshake in flight > udpTimeout ──▶ dialing ── connected ──▶ tls
 *    ▲                                             │ failed (backoff)       │
 *    │                                             ▼                        │
 *    └──────── handshake answered over UDP ◀── probe UDP every probeInterval ┘
 *
 * The probe sends one initiation over UDP while data keeps flowing over TLS
 * (WireGuardDevice.initiateHandshake with `via`); if the answer comes back
 * over UDP the protocol's own roaming moves the peer to UDP, and this
 * selector follows. Nothing here touches packets: it only picks endpoints.
 */
import type { Peer, WireGuardDevice } from "../wireguard/mod.ts";
import type { Endpoint } from "../net/endpoint.ts";
import type { TlsStream } from "../net/tls_stream.ts";
import { type Clock, systemClock } from "../clock.ts";
import { logger } from "../log.ts";

const log = logger("fallback");

/** Which transport the peer is on. */
export type TransportState = "udp" | "dialing" | "tls";

/** How to reach the peer's TLS listener. */
export interface TlsTarget {
  hostname: string;
  port: number;
  /** PEM CA certificates to trust (pinning); the system store when absent. */
  caCerts?: string[];
}

/** Inputs of a TransportFallback. */
export interface FallbackOptions {
  device: WireGuardDevice;
  peer: Peer;
  udp: Endpoint;
  tls: TlsTarget | null;
  tlsStream: TlsStream | null;
  /** How long a handshake may go unanswered over UDP before falling back. */
  udpTimeoutMs: number;
  /** How often to try UDP again while on TLS (default 30 s). */
  probeIntervalMs?: number;
  clock?: Clock;
  /** Wakes the pump so queued handshakes go out now. */
  kick: () => void;
  /** Told about every transport change with a reason (logs, engine, console). */
  onChange?: (state: "udp" | "tls", reason: string) => void;
  /**
   * With no TLS to fall back to: how long handshakes may go unanswered
   * before `onGiveUp` (once per outage; 0/absent: never). Handshakes go on
   * afterwards, so the tunnel forms by itself when the path comes back.
   */
  giveUpMs?: number;
  /** Told once per outage when `giveUpMs` passed without an answer. */
  onGiveUp?: (waitedMs: number) => void;
}

/** Picks UDP or TLS for one peer; start() it after the pump runs. */
export class TransportFallback {
  readonly #o: FallbackOptions & { probeIntervalMs: number; clock: Clock };
  #state: TransportState = "udp";
  #inflightSince: number | null = null;
  #nextProbe = 0;
  #dialFailures = 0;
  #nextDial = 0;
  #timer: ReturnType<typeof setInterval> | null = null;
  #tlsEp: Endpoint | null = null;
  #offEvents: (() => void) | null = null;
  /** Since when handshakes go unanswered (reset only by a completed one). */
  #unansweredSince: number | null = null;
  #gaveUp = false;

  /** Creates the selector in the UDP state. */
  constructor(opts: FallbackOptions) {
    this.#o = {
      ...opts,
      probeIntervalMs: opts.probeIntervalMs ?? 30_000,
      clock: opts.clock ?? systemClock,
    };
  }

  /** Current transport (dialing counts as still on UDP for data). */
  get state(): TransportState {
    return this.#state;
  }

  /** Begins watching; initiates a first handshake over UDP. */
  start(): void {
    if (this.#timer !== null) return;
    const { device, peer } = this.#o;
    peer.endpoint = this.#o.udp;
    // setPeer may already have started one (persistent keepalive); a second
    // initiation right behind it would be dropped by the peer's flood guard.
    if (!peer.handshake) device.initiateHandshake(peer, undefined, true);
    this.#o.kick();
    this.#timer = setInterval(() => this.tick(), 250);
    this.#offEvents = this.#o.tlsStream?.onEvent((ev) => {
      if (ev.type === "close" && this.#tlsEp && ev.conn.endpoint === this.#tlsEp) {
        this.#tlsEp = null;
        if (this.#state === "tls") {
          log.warn("TLS connection to the peer closed; redialling", { reason: ev.conn.reason });
          this.#state = "dialing";
          void this.#dial();
        }
      }
    }) ?? null;
  }

  /** Stops watching. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#offEvents?.();
  }

  /** Call when the device reports handshake_complete for this peer. */
  onHandshakeComplete(): void {
    this.#inflightSince = null;
    this.#unansweredSince = null;
    this.#gaveUp = false;
    const ep = this.#o.peer.endpoint;
    if (this.#state === "tls" && ep?.transport === "udp") {
      this.#state = "udp";
      this.#o.onChange?.("udp", "a handshake over UDP was answered");
      const old = this.#tlsEp;
      this.#tlsEp = null;
      // Keep TLS a moment for packets already in flight, then close it.
      if (old) setTimeout(() => this.#o.tlsStream?.disconnect(old, "back on UDP"), 2000);
    }
  }

  /**
   * Call when the peer answers through the tunnel again without a new
   * handshake (the session outlived a short outage): the outage is over,
   * and the next one is told again.
   */
  onPathAlive(): void {
    this.#unansweredSince = null;
    this.#gaveUp = false;
  }

  /** Runs the timing rules; called every 250 ms (exposed for tests). */
  tick(): void {
    const now = this.#o.clock.monotonic();
    const { peer, device } = this.#o;
    if (this.#state === "udp" && this.#o.tls === null && this.#o.giveUpMs) {
      this.#watchGiveUp(now);
    }
    if (this.#state === "udp") {
      if (peer.handshake) {
        if (this.#inflightSince === null) this.#inflightSince = now;
        else if (now - this.#inflightSince >= this.#o.udpTimeoutMs && this.#canFallBack(now)) {
          log.warn("No handshake answer over UDP; falling back to TLS", {
            waitedMs: Math.round(now - this.#inflightSince),
          });
          this.#state = "dialing";
          void this.#dial();
        }
      } else {
        this.#inflightSince = null;
      }
    } else if (this.#state === "tls" && now >= this.#nextProbe) {
      this.#nextProbe = now + this.#o.probeIntervalMs;
      if (device.initiateHandshake(peer, this.#o.udp, true)) this.#o.kick();
    }
  }

  /**
   * UDP is the only transport: after giveUpMs unanswered, say so once, and
   * keep a handshake in flight (WireGuard stops its own after 90 s) so the
   * tunnel comes back as soon as UDP passes again.
   */
  #watchGiveUp(now: number): void {
    const { peer, device } = this.#o;
    if (!peer.handshake && !this.#gaveUp) {
      // Nothing in flight (answered, or dropped by the protocol's own rules): not an outage.
      this.#unansweredSince = null;
      return;
    }
    this.#unansweredSince ??= now;
    const waited = now - this.#unansweredSince;
    if (!this.#gaveUp && waited >= this.#o.giveUpMs!) {
      this.#gaveUp = true;
      log.warn("No handshake answer over UDP and no TLS fallback; giving up for now", {
        waitedMs: Math.round(waited),
      });
      this.#o.onGiveUp?.(waited);
    }
    if (this.#gaveUp && !peer.handshake && device.initiateHandshake(peer, undefined, true)) {
      this.#o.kick();
    }
  }

  #canFallBack(now: number): boolean {
    return this.#o.tls !== null && this.#o.tlsStream !== null && now >= this.#nextDial;
  }

  async #dial(): Promise<void> {
    const { tls, tlsStream, peer, device, clock } = this.#o;
    if (!tls || !tlsStream) return;
    try {
      const ep = await tlsStream.dial(tls);
      if (this.#timer === null) return; // stopped meanwhile
      this.#tlsEp = ep;
      this.#dialFailures = 0;
      peer.endpoint = ep;
      this.#state = "tls";
      this.#inflightSince = null;
      this.#nextProbe = clock.monotonic() + this.#o.probeIntervalMs;
      device.initiateHandshake(peer, undefined, true);
      this.#o.kick();
      this.#o.onChange?.("tls", "UDP handshakes went unanswered");
    } catch (e) {
      this.#dialFailures++;
      const backoff = Math.min(30_000, 1000 * 2 ** Math.min(5, this.#dialFailures - 1));
      this.#nextDial = clock.monotonic() + backoff;
      log.warn("Cannot reach the peer over TLS either", {
        error: (e as Error).message,
        retryInMs: backoff,
      });
      this.#state = "udp";
      this.#inflightSince = clock.monotonic();
    }
  }
}
