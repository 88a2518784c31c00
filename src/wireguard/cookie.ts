/**
 * mac1/mac2 and cookie replies (whitepaper §5.3, §5.4.4, §5.4.7).
 *
 * CookieChecker is the receiving side, one per device: it checks mac1 on
 * every handshake message and, under load, mac2 against a cookie bound to
 * the sender's address, answering with an XChaCha20-Poly1305 cookie reply.
 * CookieGenerator is the sending side, one per peer: it stamps mac1 (and
 * mac2 while it holds a fresh cookie) and consumes cookie replies.
 */
import type { Clock } from "../clock.ts";
import type { Endpoint } from "../net/endpoint.ts";
import { xaeadDecrypt, xaeadEncrypt } from "./aead.ts";
import { hash, mac } from "./blake2s.ts";
import { parseIp } from "./ip.ts";
import { constantTimeEqual, type RandomSource } from "./keys.ts";
import { COOKIE_REPLY_SIZE, MSG_COOKIE_REPLY, readU32, writeU32 } from "./messages.ts";

const enc = new TextEncoder();
const LABEL_MAC1 = enc.encode("mac1----");
const LABEL_COOKIE = enc.encode("cookie--");

/** How long a cookie secret (responder) or a received cookie (initiator) stays valid. */
export const COOKIE_REFRESH_TIME_MS = 120_000;

/** Bytes that bind a cookie to the sender: address bytes then the port, little-endian. */
export function endpointBytes(ep: Endpoint): Uint8Array {
  const ip = parseIp(ep.address) ?? new Uint8Array(0);
  const out = new Uint8Array(ip.length + 2);
  out.set(ip);
  out[ip.length] = ep.port & 0xff;
  out[ip.length + 1] = ep.port >> 8;
  return out;
}

/** Receiving side of mac1/mac2 for one local static key. */
export class CookieChecker {
  readonly #mac1Key: Uint8Array;
  readonly #cookieKey: Uint8Array;
  #secret = new Uint8Array(32);
  #secretSetAt = -Infinity;

  constructor(
    localPublicKey: Uint8Array,
    private readonly clock: Clock,
    private readonly random: RandomSource,
  ) {
    this.#mac1Key = hash(LABEL_MAC1, localPublicKey);
    this.#cookieKey = hash(LABEL_COOKIE, localPublicKey);
  }

  /** True when the message's mac1 is correct (mac1 sits 32 bytes before the end). */
  checkMac1(msg: Uint8Array): boolean {
    const n = msg.length;
    return constantTimeEqual(
      mac(this.#mac1Key, msg.subarray(0, n - 32)),
      msg.subarray(n - 32, n - 16),
    );
  }

  /** True when the message's mac2 matches the current cookie for `from`. */
  checkMac2(msg: Uint8Array, from: Endpoint): boolean {
    const n = msg.length;
    const cookie = mac(this.#currentSecret(), endpointBytes(from));
    return constantTimeEqual(mac(cookie, msg.subarray(0, n - 16)), msg.subarray(n - 16));
  }

  /** Builds the cookie reply answering `msg` (whose sender index is at bytes 4..8). */
  createReply(msg: Uint8Array, from: Endpoint): Uint8Array {
    const n = msg.length;
    const cookie = mac(this.#currentSecret(), endpointBytes(from));
    const out = new Uint8Array(COOKIE_REPLY_SIZE);
    out[0] = MSG_COOKIE_REPLY;
    writeU32(out, 4, readU32(msg, 4));
    const nonce = this.random(24).slice(0, 24);
    out.set(nonce, 8);
    out.set(xaeadEncrypt(this.#cookieKey, nonce, cookie, msg.subarray(n - 32, n - 16)), 32);
    return out;
  }

  #currentSecret(): Uint8Array {
    const now = this.clock.monotonic();
    if (now - this.#secretSetAt >= COOKIE_REFRESH_TIME_MS) {
      this.#secret = this.random(32).slice(0, 32);
      this.#secretSetAt = now;
    }
    return this.#secret;
  }
}

/** Sending side of mac1/mac2 towards one peer. */
export class CookieGenerator {
  readonly #mac1Key: Uint8Array;
  readonly #cookieKey: Uint8Array;
  #cookie: Uint8Array | null = null;
  #cookieSetAt = -Infinity;
  #lastMac1: Uint8Array | null = null;

  constructor(peerPublicKey: Uint8Array, private readonly clock: Clock) {
    this.#mac1Key = hash(LABEL_MAC1, peerPublicKey);
    this.#cookieKey = hash(LABEL_COOKIE, peerPublicKey);
  }

  /** Writes mac1, and mac2 when a fresh cookie is held (zeros otherwise), into the last 32 bytes. */
  stamp(msg: Uint8Array): void {
    const n = msg.length;
    const m1 = mac(this.#mac1Key, msg.subarray(0, n - 32));
    msg.set(m1, n - 32);
    this.#lastMac1 = m1;
    const fresh = this.#cookie &&
      this.clock.monotonic() - this.#cookieSetAt < COOKIE_REFRESH_TIME_MS;
    msg.set(fresh ? mac(this.#cookie!, msg.subarray(0, n - 16)) : new Uint8Array(16), n - 16);
  }

  /** Takes the cookie from a reply to our last stamped message; false when it does not authenticate. */
  consumeReply(reply: Uint8Array): boolean {
    if (reply.length !== COOKIE_REPLY_SIZE || !this.#lastMac1) return false;
    const cookie = xaeadDecrypt(
      this.#cookieKey,
      reply.subarray(8, 32),
      reply.subarray(32),
      this.#lastMac1,
    );
    if (!cookie) return false;
    this.#cookie = cookie.slice();
    this.#cookieSetAt = this.clock.monotonic();
    this.#lastMac1 = null;
    return true;
  }

  /** True while a received cookie is fresh (mac2 is being sent). */
  get hasCookie(): boolean {
    return this.#cookie !== null &&
      this.clock.monotonic() - this.#cookieSetAt < COOKIE_REFRESH_TIME_MS;
  }
}
