/**
 * WireGuardDevice: the WireGuard protocol, sans-IO, byte-compatible with
 * wireguard-go. No sockets, no TUN, no timers of its own: the data-plane
 * pump calls it and it answers with bytes and endpoints.
 *
 * Flow:
 *
 *   TUN packet ─► outbound(slot, ipLen)
 *                   allowed-IPs lookup (destination, straight from the bytes)
 *                   ├─ current keypair: header + zero padding + ChaCha20-Poly1305
 *                   │   in place ─► { kind: "send", length, endpoint }: the pump
 *                   │   sends slot[0..length]
 *                   └─ no usable keypair: a copy is staged (≤1024 per peer, oldest
 *                       dropped) and a handshake initiation goes to drainOutgoing()
 *
 *   datagram ─► inbound(buf, len, from)
 *                 type 4: index → keypair, replay pre-check, decrypt in place,
 *                         tag verified, replay window updated, endpoint roams to
 *                         `from`, inner source checked against allowed IPs
 *                         ─► { kind: "data", offset: 16, length } for the TUN
 *                 type 1/2: mac1 (and under load mac2, else a cookie reply),
 *                         Noise IKpsk2, keypair installed, reply or staged
 *                         packets queued on drainOutgoing()
 *                 type 3: cookie stored for the next handshake's mac2
 *                 anything else: dropped and counted in `drops`
 *
 *   tick() ─► handshake retries (5 s + jitter, give up after 90 s), passive
 *             keepalives (10 s), new handshake when sent data got no answer
 *             (15 s), persistent keepalives, key zeroing (540 s); all on the
 *             injected Clock, nextDeadline() says when tick() next has work.
 *
 * Results of outbound()/inbound() are reused objects, valid until the next
 * call: the hot path allocates nothing.
 */
import type { Clock } from "../clock.ts";
import { InputError } from "../errors.ts";
import type { Endpoint } from "../net/endpoint.ts";
import { AllowedIps } from "./allowed_ips.ts";
import { TAG_SIZE } from "./aead.ts";
import { CookieChecker } from "./cookie.ts";
import { encodeKey, KEY_SIZE, publicKeyOf, type RandomSource, systemRandom } from "./keys.ts";
import { Keypair } from "./keypair.ts";
import {
  compareBytes,
  COOKIE_REPLY_SIZE,
  INITIATION_SIZE,
  MSG_COOKIE_REPLY,
  MSG_INITIATION,
  MSG_RESPONSE,
  MSG_TRANSPORT,
  readU32,
  readU64,
  RESPONSE_SIZE,
  tai64n,
  TRANSPORT_HEADER_SIZE,
  TRANSPORT_MIN_SIZE,
  writeU32,
  writeU64,
} from "./messages.ts";
import {
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  type StaticKeys,
} from "./noise.ts";
import { Peer, type PeerConfig, type PeerStats } from "./peer.ts";
import { MAX_COUNTER } from "./replay.ts";
import {
  HANDSHAKE_INITIATION_RATE_MS,
  jitterMs,
  KEEPALIVE_TIMEOUT_MS,
  MAX_STAGED_PACKETS,
  MAX_TIMER_HANDSHAKES,
  REJECT_AFTER_TIME_MS,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME_MS,
  REKEY_TIMEOUT_MS,
  ZERO_KEYS_AFTER_MS,
} from "./timers.ts";

/** Why a packet was dropped; each has a counter in `WireGuardDevice.drops`. */
export type DropReason =
  | "short"
  | "wrong_size"
  | "unknown_type"
  | "bad_mac1"
  | "bad_handshake"
  | "unknown_peer"
  | "handshake_replay"
  | "handshake_flood"
  | "bad_cookie"
  | "unknown_index"
  | "expired_keypair"
  | "bad_auth"
  | "replay"
  | "bad_inner_packet"
  | "not_allowed_source"
  | "no_route"
  | "no_endpoint"
  | "buffer_too_small"
  | "staged_overflow"
  | "crypto_error";

/** Counter per drop reason. */
export type DropCounters = Record<DropReason, number>;

const DROP_REASONS: DropReason[] = [
  "short",
  "wrong_size",
  "unknown_type",
  "bad_mac1",
  "bad_handshake",
  "unknown_peer",
  "handshake_replay",
  "handshake_flood",
  "bad_cookie",
  "unknown_index",
  "expired_keypair",
  "bad_auth",
  "replay",
  "bad_inner_packet",
  "not_allowed_source",
  "no_route",
  "no_endpoint",
  "buffer_too_small",
  "staged_overflow",
  "crypto_error",
];

/** What outbound() did; a reused object valid until the next call. */
export interface OutboundResult {
  /** "send": slot[0..length] is a datagram for `endpoint`; "queued": staged until a handshake; "dropped". */
  kind: "send" | "queued" | "dropped";
  length: number;
  endpoint: Endpoint | null;
  peer: Peer | null;
  reason: DropReason | null;
}

/** What inbound() did; a reused object valid until the next call. */
export interface InboundResult {
  /** "data": an IP packet is at buf[offset .. offset+length]; "none": nothing to deliver. */
  kind: "data" | "none";
  offset: number;
  length: number;
  /** The authenticated peer (for data, keepalives and handshakes). */
  peer: Peer | null;
  /** Set when the datagram was dropped. */
  reason: DropReason | null;
}

/** A datagram the pump must send (handshakes, cookie replies, keepalives, staged data). */
export interface OutgoingDatagram {
  endpoint: Endpoint;
  data: Uint8Array;
}

/** Peer state changes for the connector and consoles. */
export interface PeerEvent {
  /**
   * handshake_complete: a session is usable (initiator got a response, or
   * responder saw the first packet on the new keys); handshake_failed: gave
   * up after REKEY_ATTEMPT_TIME; keys_zeroed: all key material wiped.
   */
  type: "handshake_complete" | "handshake_failed" | "keys_zeroed";
  peer: Peer;
  wallMs: number;
}

/** Options for a WireGuardDevice. */
export interface DeviceOptions {
  /** Our X25519 private key (32 bytes). */
  privateKey: Uint8Array;
  /** Time source for every timer. */
  clock: Clock;
  /** Random bytes (ephemeral keys, indices, jitter, cookie secrets); defaults to the CSPRNG. */
  random?: RandomSource;
  /** Tunnel MTU: padding never grows a packet beyond it. Default 1420. */
  mtu?: number;
  /** Called on peer state changes. */
  onEvent?: (event: PeerEvent) => void;
  /**
   * Initiator keypair age that triggers a rekey (default REKEY_AFTER_TIME,
   * 120 s). Lowered only to exercise rekeys in tests; clamped to
   * [1 s, REKEY_AFTER_TIME] so it can never weaken the protocol.
   */
  rekeyAfterMs?: number;
}

/** A WireGuard interface's protocol state: our key, the peers, the index table. */
export class WireGuardDevice {
  /** Our public key. */
  readonly publicKey: Uint8Array;
  /** Drop counters by reason, for `wg show`-like output and tests. */
  readonly drops: DropCounters;
  /** Cookie replies sent while under load. */
  cookieRepliesSent = 0;

  readonly #static: StaticKeys;
  readonly #clock: Clock;
  readonly #random: RandomSource;
  readonly #mtu: number;
  readonly #rekeyAfterMs: number;
  readonly #onEvent: ((e: PeerEvent) => void) | undefined;
  readonly #checker: CookieChecker;
  readonly #peers = new Map<string, Peer>();
  readonly #allowed = new AllowedIps<Peer>();
  /** Extra accepted sources of transit peers (an edge mesh: the devices behind another edge). */
  readonly #transit = new AllowedIps<Peer>();
  readonly #keypairs = new Map<number, Keypair>();
  readonly #handshakes = new Map<number, Peer>();
  readonly #views = new WeakMap<Uint8Array, Uint8Array>();
  #outgoing: OutgoingDatagram[] = [];
  #underLoad = false;
  readonly #out: OutboundResult = {
    kind: "dropped",
    length: 0,
    endpoint: null,
    peer: null,
    reason: null,
  };
  readonly #in: InboundResult = { kind: "none", offset: 0, length: 0, peer: null, reason: null };

  constructor(opts: DeviceOptions) {
    if (opts.privateKey.length !== KEY_SIZE) {
      throw new InputError(
        "invalid_key",
        `Cannot create WireGuard device: private key length ${opts.privateKey.length} is not 32`,
      );
    }
    this.#clock = opts.clock;
    this.#random = opts.random ?? systemRandom;
    this.#mtu = opts.mtu ?? 1420;
    this.#rekeyAfterMs = Math.min(
      REKEY_AFTER_TIME_MS,
      Math.max(1000, opts.rekeyAfterMs ?? REKEY_AFTER_TIME_MS),
    );
    this.#onEvent = opts.onEvent;
    this.publicKey = publicKeyOf(opts.privateKey);
    this.#static = { privateKey: opts.privateKey.slice(), publicKey: this.publicKey };
    this.#checker = new CookieChecker(this.publicKey, this.#clock, this.#random);
    this.drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as DropCounters;
  }

  // ---- peers ---------------------------------------------------------------

  /** Adds a peer or updates the one with this public key; replaces its allowed IPs. */
  setPeer(config: PeerConfig): Peer {
    if (config.publicKey.length !== KEY_SIZE) {
      throw new InputError(
        "invalid_key",
        `Cannot add peer: public key length ${config.publicKey.length} is not 32`,
      );
    }
    if (config.presharedKey && config.presharedKey.length !== KEY_SIZE) {
      throw new InputError(
        "invalid_key",
        `Cannot add peer: preshared key length ${config.presharedKey.length} is not 32`,
      );
    }
    const ka = config.persistentKeepaliveSec ?? 0;
    if (!Number.isInteger(ka) || ka < 0 || ka > 65535) {
      throw new InputError(
        "invalid_keepalive",
        `Cannot add peer: persistent keepalive ${ka} is not 0-65535`,
      );
    }
    const text = encodeKey(config.publicKey);
    if (text === encodeKey(this.publicKey)) {
      throw new InputError(
        "invalid_key",
        `Cannot add peer ${text}: it is this device's own public key`,
      );
    }
    const check = new AllowedIps<boolean>();
    for (const cidr of config.allowedIps) {
      try {
        check.insert(cidr, true);
      } catch {
        throw new InputError(
          "invalid_allowed_ip",
          `Cannot add peer ${text}: allowed IP "${cidr}" is not an IPv4 or IPv6 prefix`,
        );
      }
    }
    let peer = this.#peers.get(text);
    const hadKeepalive = peer ? peer.persistentKeepaliveMs > 0 : false;
    if (peer) peer.configure(config);
    else {
      peer = new Peer(config, this.#clock);
      this.#peers.set(text, peer);
    }
    this.#allowed.removeValue(peer);
    for (const cidr of config.allowedIps) this.#allowed.insert(cidr, peer);
    if (peer.persistentKeepaliveMs > 0 && !hadKeepalive) this.#sendKeepalive(peer);
    return peer;
  }

  /** Removes a peer, wiping its keys; returns false when unknown. */
  removePeer(publicKey: Uint8Array): boolean {
    const peer = this.#peers.get(encodeKey(publicKey));
    if (!peer) return false;
    this.#zeroKeys(peer);
    this.#allowed.removeValue(peer);
    this.#transit.removeValue(peer);
    this.#peers.delete(peer.publicKeyText);
    peer.staged = [];
    return true;
  }

  /** The peer with this public key, if configured. */
  getPeer(publicKey: Uint8Array): Peer | undefined {
    return this.#peers.get(encodeKey(publicKey));
  }

  /** Every configured peer. */
  peers(): Peer[] {
    return [...this.#peers.values()];
  }

  /**
   * Sets the transit sources of a peer: inner source addresses accepted from
   * it besides its allowed IPs, without routing anything to it (outbound()
   * never picks a peer by these). An edge-mesh peer carries the devices
   * behind another edge this way, while this device keeps every device's
   * own /32 as that device's allowed IP, so neither overwrites the other.
   */
  setTransitIps(peer: Peer, cidrs: readonly string[]): void {
    if (!this.#peers.has(peer.publicKeyText)) {
      throw new InputError(
        "unknown_peer",
        `Cannot set transit IPs: peer ${peer.publicKeyText} is not configured`,
      );
    }
    const check = new AllowedIps<boolean>();
    for (const cidr of cidrs) {
      try {
        check.insert(cidr, true);
      } catch {
        throw new InputError(
          "invalid_allowed_ip",
          `Cannot set transit IPs of ${peer.publicKeyText}: "${cidr}" is not an IPv4 or IPv6 prefix`,
        );
      }
    }
    this.#transit.removeValue(peer);
    for (const cidr of cidrs) this.#transit.insert(cidr, peer);
  }

  /** Transit source prefixes of a peer as text. */
  transitIpsOf(peer: Peer): string[] {
    return this.#transit.prefixesOf(peer);
  }

  /** The peer whose allowed IPs hold `address` (longest prefix), if any. */
  peerForAddress(address: string): Peer | null {
    return this.#allowed.lookupText(address);
  }

  /** The peer owning the destination of the IP packet at `buf[off..off+len]`, if any (no allocation). */
  peerForDestination(buf: Uint8Array, off: number, len: number): Peer | null {
    return this.#allowed.lookupDestination(buf, off, len);
  }

  /** Allowed-IP prefixes of a peer as text. */
  allowedIpsOf(peer: Peer): string[] {
    return this.#allowed.prefixesOf(peer);
  }

  /** Counters and state of every peer, for `wg show`. */
  stats(): PeerStats[] {
    const now = this.#clock.monotonic();
    const allowed = this.#allowed.prefixesByValue(), transit = this.#transit.prefixesByValue();
    return this.peers().map((p) =>
      p.stats(
        [...allowed.get(p) ?? [], ...transit.get(p) ?? []],
        now,
        REJECT_AFTER_TIME_MS,
        MAX_COUNTER,
      )
    );
  }

  /** Tells the device whether the pump is overloaded: initiations then need a valid mac2 (cookie). */
  setUnderLoad(underLoad: boolean): void {
    this.#underLoad = underLoad;
  }

  /** Takes the datagrams waiting to be sent. */
  drainOutgoing(): OutgoingDatagram[] {
    const out = this.#outgoing;
    if (out.length) this.#outgoing = [];
    return out;
  }

  /** True when drainOutgoing() has something. */
  get hasOutgoing(): boolean {
    return this.#outgoing.length > 0;
  }

  /**
   * Wipes every key, including this device's copy of its private key, and
   * drops every peer's session: after close() the device answers no handshake.
   */
  close(): void {
    for (const p of this.#peers.values()) this.#zeroKeys(p, false);
    this.#static.privateKey.fill(0);
  }

  // ---- outbound -------------------------------------------------------------

  /**
   * Encrypts the IP packet at `slot[16 .. 16+ipLength]` in place for the peer
   * that owns its destination. The slot needs room for padding to 16 and the
   * 16-byte tag after the packet. Reuse the same slot objects: a view per slot
   * is cached (WeakMap) so OpenSSL can work at offset 16 without allocating.
   */
  outbound(slot: Uint8Array, ipLength: number): OutboundResult {
    if (ipLength < 1 || TRANSPORT_HEADER_SIZE + ipLength > slot.length) {
      return this.#dropOut("bad_inner_packet", null);
    }
    const peer = this.#allowed.lookupDestination(slot, TRANSPORT_HEADER_SIZE, ipLength);
    if (peer === null) return this.#dropOut("no_route", null);
    return this.outboundTo(peer, slot, ipLength);
  }

  /** Like outbound() but to a known peer (client-to-client forwarding, tests). */
  outboundTo(peer: Peer, slot: Uint8Array, ipLength: number): OutboundResult {
    const ep = peer.endpoint;
    if (ep === null) return this.#dropOut("no_endpoint", peer);
    const now = this.#clock.monotonic();
    const kp = peer.current;
    if (kp === null || kp.expired(now, REJECT_AFTER_TIME_MS, MAX_COUNTER) || peer.staged.length) {
      this.#stage(peer, slot, ipLength);
      this.#flushStaged(peer);
      const r = this.#out;
      r.kind = "queued"; // staged, or already flushed to drainOutgoing()
      r.length = 0;
      r.endpoint = null;
      r.peer = peer;
      r.reason = null;
      return r;
    }
    const n = this.#seal(peer, kp, slot, ipLength, now);
    if (n < 0) return this.#dropOut(n === -2 ? "buffer_too_small" : "crypto_error", peer);
    const r = this.#out;
    r.kind = "send";
    r.length = n;
    r.endpoint = ep;
    r.peer = peer;
    r.reason = null;
    return r;
  }

  #dropOut(reason: DropReason, peer: Peer | null): OutboundResult {
    this.drops[reason]++;
    const r = this.#out;
    r.kind = "dropped";
    r.length = 0;
    r.endpoint = null;
    r.peer = peer;
    r.reason = reason;
    return r;
  }

  #view(buf: Uint8Array): Uint8Array {
    let v = this.#views.get(buf);
    if (v === undefined) {
      v = buf.subarray(TRANSPORT_HEADER_SIZE);
      this.#views.set(buf, v);
    }
    return v;
  }

  /** Header, padding, in-place encryption, counters and timers; datagram length, -1 crypto, -2 no room. */
  #seal(peer: Peer, kp: Keypair, buf: Uint8Array, ipLength: number, now: number): number {
    const room = buf.length - TRANSPORT_HEADER_SIZE - TAG_SIZE;
    if (room < ipLength) return -2;
    let padded = (ipLength + 15) & ~15;
    if (padded > this.#mtu) padded = ipLength > this.#mtu ? ipLength : this.#mtu;
    if (padded > room) padded = room;
    buf.fill(0, TRANSPORT_HEADER_SIZE + ipLength, TRANSPORT_HEADER_SIZE + padded);
    const counter = kp.sendCounter++;
    buf[0] = MSG_TRANSPORT;
    buf[1] = buf[2] = buf[3] = 0;
    writeU32(buf, 4, kp.remoteIndex);
    writeU64(buf, 8, counter);
    if (!kp.send.seal(this.#view(buf), padded, counter)) return -1;
    const total = TRANSPORT_HEADER_SIZE + padded + TAG_SIZE;
    peer.txBytes += total;
    // Timer reactions (wireguard-go timersAnyAuthenticatedPacket{Traversal,Sent}, timersDataSent).
    if (peer.persistentKeepaliveMs > 0) {
      peer.persistentKeepaliveAt = now + peer.persistentKeepaliveMs;
    }
    peer.sendKeepaliveAt = Infinity;
    if (ipLength > 0 && peer.newHandshakeAt === Infinity) {
      peer.newHandshakeAt = now + KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS + jitterMs(this.#random);
    }
    // keepKeyFreshSending
    if (
      kp.sendCounter > REKEY_AFTER_MESSAGES ||
      (kp.isInitiator && now - kp.createdAt >= this.#rekeyAfterMs)
    ) {
      this.#sendInitiation(peer, false);
    }
    return total;
  }

  #stage(peer: Peer, src: Uint8Array | null, ipLength: number): void {
    const padded = Math.min((ipLength + 15) & ~15, Math.max(this.#mtu, ipLength));
    const buf = new Uint8Array(TRANSPORT_HEADER_SIZE + padded + TAG_SIZE);
    if (src) {
      buf.set(
        src.subarray(TRANSPORT_HEADER_SIZE, TRANSPORT_HEADER_SIZE + ipLength),
        TRANSPORT_HEADER_SIZE,
      );
    }
    peer.staged.push({ buf, length: ipLength });
    if (peer.staged.length > MAX_STAGED_PACKETS) {
      peer.staged.shift();
      this.drops.staged_overflow++;
    }
  }

  /** Sends staged packets if a session exists, else starts a handshake (wireguard-go SendStagedPackets). */
  #flushStaged(peer: Peer): void {
    if (!peer.staged.length) return;
    const now = this.#clock.monotonic();
    const kp = peer.current;
    if (
      kp === null || kp.expired(now, REJECT_AFTER_TIME_MS, MAX_COUNTER) || peer.endpoint === null
    ) {
      this.#sendInitiation(peer, false);
      return;
    }
    const staged = peer.staged;
    peer.staged = [];
    for (const s of staged) {
      const n = this.#seal(peer, kp, s.buf, s.length, now);
      if (n < 0) this.drops.crypto_error++;
      else this.#outgoing.push({ endpoint: peer.endpoint, data: s.buf.subarray(0, n) });
    }
  }

  #sendKeepalive(peer: Peer): void {
    if (!peer.staged.length) this.#stage(peer, null, 0);
    this.#flushStaged(peer);
  }

  // ---- handshakes -------------------------------------------------------------

  #allocIndex(): number {
    for (;;) {
      const idx = readU32(this.#random(4), 0);
      if (!this.#keypairs.has(idx) && !this.#handshakes.has(idx)) return idx;
    }
  }

  /**
   * Starts a handshake now. `via` sends this one initiation over another
   * endpoint without changing the peer's (transport probing: try UDP while
   * data still flows over TLS; the answer roams the peer if it arrives).
   * `force` skips the one-per-REKEY_TIMEOUT rate limit (a transport switch).
   * Returns false when rate-limited or there is nowhere to send.
   */
  initiateHandshake(peer: Peer, via?: Endpoint, force = false): boolean {
    if (!this.#peers.has(peer.publicKeyText)) return false;
    return this.#sendInitiation(peer, false, via, force);
  }

  #sendInitiation(peer: Peer, isRetry: boolean, via?: Endpoint, force = false): boolean {
    if (!isRetry) peer.handshakeAttempts = 0;
    const now = this.#clock.monotonic();
    if (!force && now - peer.lastSentHandshakeAt < REKEY_TIMEOUT_MS) return false;
    const ep = via ?? peer.endpoint;
    if (ep === null) return false;
    peer.lastSentHandshakeAt = now;
    this.#clearHandshake(peer);
    const idx = this.#allocIndex();
    const made = createInitiation(
      this.#static,
      peer.publicKey,
      idx,
      tai64n(this.#clock.now()),
      this.#random,
    );
    if (!made) return false;
    peer.handshake = made.state;
    this.#handshakes.set(idx, peer);
    peer.cookies.stamp(made.message);
    this.#send(peer, ep, made.message, now);
    peer.retransmitAt = now + REKEY_TIMEOUT_MS + jitterMs(this.#random);
    return true;
  }

  #clearHandshake(peer: Peer): void {
    if (!peer.handshake) return;
    this.#handshakes.delete(peer.handshake.localIndex);
    peer.handshake.ephemeralPrivate.fill(0);
    peer.handshake.chainKey.fill(0);
    peer.handshake.hash.fill(0);
    peer.handshake = null;
  }

  /** Queues a handshake message and runs the "authenticated packet sent" timer reactions. */
  #send(peer: Peer, ep: Endpoint, data: Uint8Array, now: number): void {
    this.#outgoing.push({ endpoint: ep, data });
    peer.txBytes += data.length;
    if (peer.persistentKeepaliveMs > 0) {
      peer.persistentKeepaliveAt = now + peer.persistentKeepaliveMs;
    }
    peer.sendKeepaliveAt = Infinity;
  }

  #received(peer: Peer, now: number): void {
    if (peer.persistentKeepaliveMs > 0) {
      peer.persistentKeepaliveAt = now + peer.persistentKeepaliveMs;
    }
    peer.newHandshakeAt = Infinity;
  }

  #installKeypair(peer: Peer, kp: Keypair, now: number): void {
    this.#keypairs.set(kp.localIndex, kp);
    for (const old of peer.installKeypair(kp)) this.#freeKeypair(old);
    peer.zeroKeysAt = now + ZERO_KEYS_AFTER_MS;
  }

  #freeKeypair(kp: Keypair): void {
    this.#keypairs.delete(kp.localIndex);
    kp.free();
  }

  #handshakeComplete(peer: Peer): void {
    peer.retransmitAt = Infinity;
    peer.handshakeAttempts = 0;
    peer.sentLastMinuteHandshake = false;
    peer.lastHandshakeWallMs = this.#clock.now();
    this.#onEvent?.({ type: "handshake_complete", peer, wallMs: peer.lastHandshakeWallMs });
  }

  #dropIn(reason: DropReason, peer: Peer | null = null): InboundResult {
    this.drops[reason]++;
    const r = this.#in;
    r.kind = "none";
    r.length = 0;
    r.peer = peer;
    r.reason = reason;
    return r;
  }

  #none(peer: Peer | null): InboundResult {
    const r = this.#in;
    r.kind = "none";
    r.length = 0;
    r.peer = peer;
    r.reason = null;
    return r;
  }

  /** Handles one received datagram `buf[0..length]` from `from`; decrypts transport data in place. */
  inbound(buf: Uint8Array, length: number, from: Endpoint): InboundResult {
    if (length < 4 || length > buf.length) return this.#dropIn("short");
    const type = buf[0];
    if (buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) return this.#dropIn("unknown_type");
    if (type === MSG_TRANSPORT) return this.#inboundTransport(buf, length, from);
    if (type === MSG_INITIATION) {
      if (length !== INITIATION_SIZE) return this.#dropIn("wrong_size");
      return this.#inboundInitiation(buf.subarray(0, length), from);
    }
    if (type === MSG_RESPONSE) {
      if (length !== RESPONSE_SIZE) return this.#dropIn("wrong_size");
      return this.#inboundResponse(buf.subarray(0, length), from);
    }
    if (type === MSG_COOKIE_REPLY) {
      if (length !== COOKIE_REPLY_SIZE) return this.#dropIn("wrong_size");
      return this.#inboundCookie(buf.subarray(0, length));
    }
    return this.#dropIn("unknown_type");
  }

  #inboundTransport(buf: Uint8Array, length: number, from: Endpoint): InboundResult {
    if (length < TRANSPORT_MIN_SIZE) return this.#dropIn("short");
    const kp = this.#keypairs.get(readU32(buf, 4));
    if (kp === undefined) return this.#dropIn("unknown_index");
    const peer = kp.peer as Peer;
    const now = this.#clock.monotonic();
    if (now - kp.createdAt >= REJECT_AFTER_TIME_MS) return this.#dropIn("expired_keypair", peer);
    const counter = readU64(buf, 8);
    if (!kp.replay.check(counter)) return this.#dropIn("replay", peer);
    if (!kp.receive.open(this.#view(buf), length - TRANSPORT_HEADER_SIZE, counter)) {
      return this.#dropIn("bad_auth", peer);
    }
    if (!kp.replay.accept(counter)) return this.#dropIn("replay", peer);
    peer.endpoint = from;
    peer.rxBytes += length;
    if (kp === peer.next) {
      const { dropped } = peer.confirm(kp);
      if (dropped) this.#freeKeypair(dropped);
      this.#handshakeComplete(peer);
      this.#flushStaged(peer);
    }
    // keepKeyFreshReceiving: our initiator keypair is about to expire.
    const cur = peer.current;
    if (
      cur !== null && cur.isInitiator && !peer.sentLastMinuteHandshake &&
      now - cur.createdAt >= REJECT_AFTER_TIME_MS - KEEPALIVE_TIMEOUT_MS - REKEY_TIMEOUT_MS
    ) {
      peer.sentLastMinuteHandshake = true;
      this.#sendInitiation(peer, false);
    }
    this.#received(peer, now);
    const plen = length - TRANSPORT_MIN_SIZE;
    if (plen === 0) return this.#none(peer); // keepalive
    if (peer.sendKeepaliveAt === Infinity) peer.sendKeepaliveAt = now + KEEPALIVE_TIMEOUT_MS;
    else peer.needAnotherKeepalive = true;
    const o = TRANSPORT_HEADER_SIZE;
    const version = buf[o] >> 4;
    let ipLen: number;
    if (version === 4 && plen >= 20) ipLen = (buf[o + 2] << 8) | buf[o + 3];
    else if (version === 6 && plen >= 40) ipLen = 40 + ((buf[o + 4] << 8) | buf[o + 5]);
    else return this.#dropIn("bad_inner_packet", peer);
    if (ipLen > plen || ipLen < (version === 4 ? 20 : 40)) {
      return this.#dropIn("bad_inner_packet", peer);
    }
    if (
      this.#allowed.lookupSource(buf, o, ipLen) !== peer &&
      this.#transit.lookupSource(buf, o, ipLen) !== peer
    ) {
      return this.#dropIn("not_allowed_source", peer);
    }
    const r = this.#in;
    r.kind = "data";
    r.offset = o;
    r.length = ipLen;
    r.peer = peer;
    r.reason = null;
    return r;
  }

  /**
   * mac1 always; under load a missing/invalid mac2 gets a cookie reply.
   * Returns null when processing continues, else the result to return.
   */
  #admit(msg: Uint8Array, from: Endpoint): InboundResult | null {
    if (!this.#checker.checkMac1(msg)) return this.#dropIn("bad_mac1");
    if (this.#underLoad && !this.#checker.checkMac2(msg, from)) {
      this.#outgoing.push({ endpoint: from, data: this.#checker.createReply(msg, from) });
      this.cookieRepliesSent++;
      return this.#none(null);
    }
    return null;
  }

  #inboundInitiation(msg: Uint8Array, from: Endpoint): InboundResult {
    const refused = this.#admit(msg, from);
    if (refused) return refused;
    const init = consumeInitiation(this.#static, msg);
    if (!init) return this.#dropIn("bad_handshake");
    try {
      const peer = this.#peers.get(encodeKey(init.initiatorStatic));
      if (!peer) return this.#dropIn("unknown_peer");
      if (compareBytes(init.timestamp, peer.lastTimestamp) <= 0) {
        return this.#dropIn("handshake_replay", peer);
      }
      const now = this.#clock.monotonic();
      if (now - peer.lastInitiationConsumedAt < HANDSHAKE_INITIATION_RATE_MS) {
        return this.#dropIn("handshake_flood", peer);
      }
      peer.lastTimestamp = init.timestamp;
      peer.lastInitiationConsumedAt = now;
      peer.endpoint = from;
      // Like wireguard-go's single handshake slot: answering replaces our own pending initiation.
      this.#clearHandshake(peer);
      this.#received(peer, now);
      const idx = this.#allocIndex();
      const resp = createResponse(init, peer.presharedKey, idx, this.#random);
      if (!resp) return this.#dropIn("bad_handshake", peer);
      this.#installKeypair(
        peer,
        new Keypair(resp.keys, false, now, idx, init.senderIndex, peer),
        now,
      );
      peer.cookies.stamp(resp.message);
      // Like wireguard-go: answering counts as a handshake sent, so a packet we
      // have for this peer before its first data waits instead of racing a
      // second handshake of our own.
      peer.lastSentHandshakeAt = now;
      this.#send(peer, from, resp.message, now);
      return this.#none(peer);
    } finally {
      // The handshake's chaining key and hash are secrets once used.
      init.chainKey.fill(0);
      init.hash.fill(0);
    }
  }

  #inboundResponse(msg: Uint8Array, from: Endpoint): InboundResult {
    const refused = this.#admit(msg, from);
    if (refused) return refused;
    const idx = readU32(msg, 8);
    const peer = this.#handshakes.get(idx);
    const state = peer?.handshake;
    if (!peer || !state || state.localIndex !== idx) return this.#dropIn("unknown_index");
    const res = consumeResponse(state, this.#static, peer.presharedKey, msg);
    if (!res) return this.#dropIn("bad_handshake", peer);
    this.#clearHandshake(peer);
    const now = this.#clock.monotonic();
    peer.endpoint = from;
    this.#received(peer, now);
    this.#installKeypair(peer, new Keypair(res.keys, true, now, idx, res.senderIndex, peer), now);
    this.#handshakeComplete(peer);
    this.#sendKeepalive(peer);
    return this.#none(peer);
  }

  #inboundCookie(msg: Uint8Array): InboundResult {
    const idx = readU32(msg, 4);
    const peer = this.#handshakes.get(idx) ?? (this.#keypairs.get(idx)?.peer as Peer | undefined);
    if (!peer) return this.#dropIn("unknown_index");
    if (!peer.cookies.consumeReply(msg)) return this.#dropIn("bad_cookie", peer);
    return this.#none(peer);
  }

  // ---- timers -------------------------------------------------------------------

  /** Earliest monotonic ms at which tick() has work; Infinity when none. */
  nextDeadline(): number {
    let t = Infinity;
    for (const p of this.#peers.values()) {
      t = Math.min(
        t,
        p.retransmitAt,
        p.sendKeepaliveAt,
        p.newHandshakeAt,
        p.zeroKeysAt,
        p.persistentKeepaliveAt,
      );
    }
    return t;
  }

  /** Runs every expired timer; call every 100-250 ms or at nextDeadline(). */
  tick(): void {
    const now = this.#clock.monotonic();
    for (const peer of this.#peers.values()) {
      if (peer.retransmitAt <= now) {
        peer.retransmitAt = Infinity;
        if (peer.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
          peer.sendKeepaliveAt = Infinity;
          peer.staged = [];
          this.#clearHandshake(peer);
          if (peer.zeroKeysAt === Infinity) peer.zeroKeysAt = now + ZERO_KEYS_AFTER_MS;
          this.#onEvent?.({ type: "handshake_failed", peer, wallMs: this.#clock.now() });
        } else {
          peer.handshakeAttempts++;
          this.#sendInitiation(peer, true);
        }
      }
      if (peer.sendKeepaliveAt <= now) {
        peer.sendKeepaliveAt = Infinity;
        this.#sendKeepalive(peer);
        if (peer.needAnotherKeepalive) {
          peer.needAnotherKeepalive = false;
          peer.sendKeepaliveAt = now + KEEPALIVE_TIMEOUT_MS;
        }
      }
      if (peer.newHandshakeAt <= now) {
        peer.newHandshakeAt = Infinity;
        this.#sendInitiation(peer, false);
      }
      if (peer.zeroKeysAt <= now) {
        peer.zeroKeysAt = Infinity;
        this.#zeroKeys(peer);
      }
      if (peer.persistentKeepaliveAt <= now) {
        peer.persistentKeepaliveAt = Infinity;
        if (peer.persistentKeepaliveMs > 0) this.#sendKeepalive(peer);
      }
    }
  }

  #zeroKeys(peer: Peer, notify = true): void {
    for (const kp of peer.takeKeypairs()) this.#freeKeypair(kp);
    this.#clearHandshake(peer);
    peer.zeroKeysAt = Infinity;
    if (notify) this.#onEvent?.({ type: "keys_zeroed", peer, wallMs: this.#clock.now() });
  }
}
