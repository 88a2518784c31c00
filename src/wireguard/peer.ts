/**
 * Per-peer state: identity and configuration, the previous/current/next
 * keypairs and their rotation rules, the pending handshake, staged packets,
 * timer deadlines and counters. The device drives it; nothing here does I/O.
 */
import type { Clock } from "../clock.ts";
import type { Endpoint } from "../net/endpoint.ts";
import { CookieGenerator } from "./cookie.ts";
import { encodeKey } from "./keys.ts";
import type { Keypair } from "./keypair.ts";
import type { InitiatorState } from "./noise.ts";

/** How a peer is configured (add or update). */
export interface PeerConfig {
  /** The peer's X25519 public key (32 bytes). */
  publicKey: Uint8Array;
  /** Optional 32-byte preshared key mixed into the handshake. */
  presharedKey?: Uint8Array;
  /** Prefixes routed to and accepted from this peer ("10.0.0.2/32", "::/0"). */
  allowedIps: string[];
  /** Where to send handshakes first; learned from authenticated packets afterwards. */
  endpoint?: Endpoint;
  /** Send a keepalive after this many seconds without sending; 0 or absent disables. */
  persistentKeepaliveSec?: number;
}

/** Counters and state for `wg show` and the consoles. */
export interface PeerStats {
  publicKey: string;
  endpoint: Endpoint | null;
  allowedIps: string[];
  rxBytes: number;
  txBytes: number;
  /** Wall-clock ms of the last completed handshake, null if none yet. */
  lastHandshakeWallMs: number | null;
  persistentKeepaliveSec: number;
  /** True while a usable current keypair exists. */
  hasSession: boolean;
  /** Packets waiting for a handshake. */
  stagedPackets: number;
}

/** One remote WireGuard peer. */
export class Peer {
  /** Peer public key bytes. */
  readonly publicKey: Uint8Array;
  /** Peer public key as base64 text (the map key everywhere). */
  readonly publicKeyText: string;
  /** Preshared key, if any. */
  presharedKey: Uint8Array | undefined;
  /** Last authenticated endpoint (roaming) or the configured one. */
  endpoint: Endpoint | null;
  /** Persistent keepalive interval in ms; 0 disables. */
  persistentKeepaliveMs = 0;
  /** Free slot for the owner (e.g. the edge's device record). */
  userData: unknown = undefined;

  /** Bytes of authenticated datagrams received. */
  rxBytes = 0;
  /** Bytes of datagrams sent. */
  txBytes = 0;
  /** Wall-clock ms of the last completed handshake. */
  lastHandshakeWallMs: number | null = null;

  /** Keypair in use for sending. */
  current: Keypair | null = null;
  /** Keypair before the current one, still accepted on receive. */
  previous: Keypair | null = null;
  /** Responder's new keypair, unconfirmed until the initiator uses it. */
  next: Keypair | null = null;

  /** Our pending initiation, if any. */
  handshake: InitiatorState | null = null;
  /** Greatest TAI64N timestamp accepted from this peer (replay guard). */
  lastTimestamp: Uint8Array = new Uint8Array(12);
  /** Monotonic ms of the last initiation we consumed from this peer. */
  lastInitiationConsumedAt = -Infinity;
  /** Monotonic ms of the last initiation we sent. */
  lastSentHandshakeAt = -Infinity;
  /** Retries of the current handshake. */
  handshakeAttempts = 0;
  /** Set once the "key about to expire" initiation went out. */
  sentLastMinuteHandshake = false;
  /** mac1/mac2 stamping and cookie storage towards this peer. */
  readonly cookies: CookieGenerator;

  /** Copies of outbound packets waiting for a session (each with headroom). */
  staged: Array<{ buf: Uint8Array; length: number }> = [];

  /** Timer deadlines in monotonic ms; Infinity when not armed. */
  retransmitAt = Infinity;
  sendKeepaliveAt = Infinity;
  newHandshakeAt = Infinity;
  zeroKeysAt = Infinity;
  persistentKeepaliveAt = Infinity;
  /** A keepalive is owed once the pending one fires (wireguard-go's needAnotherKeepalive). */
  needAnotherKeepalive = false;

  constructor(config: PeerConfig, clock: Clock) {
    this.publicKey = config.publicKey.slice();
    this.publicKeyText = encodeKey(this.publicKey);
    this.cookies = new CookieGenerator(this.publicKey, clock);
    this.endpoint = config.endpoint ?? null;
    this.configure(config);
  }

  /** Applies the mutable parts of a config (PSK, endpoint if given, keepalive). */
  configure(config: PeerConfig): void {
    this.presharedKey = config.presharedKey?.slice();
    if (config.endpoint) this.endpoint = config.endpoint;
    this.persistentKeepaliveMs = Math.max(
      0,
      Math.floor((config.persistentKeepaliveSec ?? 0) * 1000),
    );
  }

  /**
   * Installs a freshly derived keypair (wireguard-go's BeginSymmetricSession):
   * an initiator uses it at once; a responder keeps it as `next` until the
   * initiator proves it has it. Returns keypairs that are no longer needed.
   */
  installKeypair(kp: Keypair): Keypair[] {
    const dropped: Keypair[] = [];
    if (kp.isInitiator) {
      if (this.next) {
        if (this.previous) dropped.push(this.previous);
        this.previous = this.next;
        this.next = null;
        if (this.current) dropped.push(this.current);
      } else {
        if (this.previous) dropped.push(this.previous);
        this.previous = this.current;
      }
      this.current = kp;
    } else {
      if (this.next) dropped.push(this.next);
      this.next = kp;
      if (this.previous) dropped.push(this.previous);
      this.previous = null;
    }
    return dropped;
  }

  /**
   * Called after a packet authenticated under `kp`: if it is `next`, the
   * responder's session is confirmed and rotates into `current`. Returns
   * the dropped keypair (old previous) when a rotation happened, else
   * undefined; `rotated` is true on rotation.
   */
  confirm(kp: Keypair): { rotated: boolean; dropped: Keypair | null } {
    if (kp !== this.next) return { rotated: false, dropped: null };
    const dropped = this.previous;
    this.previous = this.current;
    this.current = kp;
    this.next = null;
    return { rotated: true, dropped };
  }

  /** Removes and returns every keypair. */
  takeKeypairs(): Keypair[] {
    const all = [this.previous, this.current, this.next].filter((k): k is Keypair => k !== null);
    this.previous = this.current = this.next = null;
    return all;
  }

  /** Snapshot of counters and state. */
  stats(allowedIps: string[], now: number, rejectAfterMs: number, maxCounter: number): PeerStats {
    return {
      publicKey: this.publicKeyText,
      endpoint: this.endpoint,
      allowedIps,
      rxBytes: this.rxBytes,
      txBytes: this.txBytes,
      lastHandshakeWallMs: this.lastHandshakeWallMs,
      persistentKeepaliveSec: this.persistentKeepaliveMs / 1000,
      hasSession: this.current !== null && !this.current.expired(now, rejectAfterMs, maxCounter),
      stagedPackets: this.staged.length,
    };
  }
}
