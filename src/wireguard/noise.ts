/**
 * The Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake as WireGuard uses it
 * (whitepaper §5.4.2-5.4.5): building and consuming initiation and response
 * messages, and deriving the transport keys. Pure functions over bytes; the
 * caller supplies keys, randomness and time, and fills in mac1/mac2.
 */
import { aeadDecrypt, aeadEncrypt } from "./aead.ts";
import { hash, kdf } from "./blake2s.ts";
import {
  INITIATION_SIZE,
  MSG_INITIATION,
  MSG_RESPONSE,
  readU32,
  RESPONSE_SIZE,
  writeU32,
} from "./messages.ts";
import { x25519, x25519PublicKey } from "./x25519.ts";
import type { RandomSource } from "./keys.ts";

const enc = new TextEncoder();
/** Noise protocol name. */
export const CONSTRUCTION = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
/** WireGuard prologue identifier. */
export const IDENTIFIER = "WireGuard v1 zx2c4 Jason@zx2c4.com";

const INITIAL_CHAIN_KEY = hash(enc.encode(CONSTRUCTION));
const INITIAL_HASH = hash(INITIAL_CHAIN_KEY, enc.encode(IDENTIFIER));
const EMPTY = new Uint8Array(0);
const ZERO_KEY = new Uint8Array(32);

/** This side's static key pair. */
export interface StaticKeys {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** Handshake state kept by the initiator between initiation and response. */
export interface InitiatorState {
  readonly localIndex: number;
  readonly chainKey: Uint8Array;
  readonly hash: Uint8Array;
  readonly ephemeralPrivate: Uint8Array;
}

/** What the responder learns from a valid initiation (before the peer's PSK is known). */
export interface ConsumedInitiation {
  readonly senderIndex: number;
  readonly initiatorStatic: Uint8Array;
  readonly remoteEphemeral: Uint8Array;
  readonly timestamp: Uint8Array;
  readonly chainKey: Uint8Array;
  readonly hash: Uint8Array;
}

/** Transport keys derived at the end of a handshake. */
export interface SessionKeys {
  readonly send: Uint8Array;
  readonly receive: Uint8Array;
}

/** Overwrites secrets that are no longer needed (DH outputs, chaining and AEAD keys). */
export function wipe(...bufs: (Uint8Array | null | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}

function mixKey(ck: Uint8Array, dh: Uint8Array | null): [Uint8Array, Uint8Array] | null {
  if (!dh) return null;
  const [c, k] = kdf(2, ck, dh);
  dh.fill(0);
  return [c, k];
}

/** Builds an initiation (macs left zero) for `remoteStatic`. */
export function createInitiation(
  local: StaticKeys,
  remoteStatic: Uint8Array,
  localIndex: number,
  timestamp: Uint8Array,
  random: RandomSource,
): { message: Uint8Array; state: InitiatorState } | null {
  const msg = new Uint8Array(INITIATION_SIZE);
  msg[0] = MSG_INITIATION;
  writeU32(msg, 4, localIndex);
  let h = hash(INITIAL_HASH, remoteStatic);
  const ePriv = random(32).slice(0, 32);
  const ePub = x25519PublicKey(ePriv);
  let [c] = kdf(1, INITIAL_CHAIN_KEY, ePub);
  msg.set(ePub, 8);
  h = hash(h, ePub);
  const m1 = mixKey(c, x25519(ePriv, remoteStatic));
  wipe(c);
  if (!m1) return null;
  const encStatic = aeadEncrypt(m1[1], 0, local.publicKey, h);
  msg.set(encStatic, 40);
  h = hash(h, encStatic);
  const m2 = mixKey(m1[0], x25519(local.privateKey, remoteStatic));
  wipe(...m1);
  if (!m2) return null;
  c = m2[0];
  const encTs = aeadEncrypt(m2[1], 0, timestamp, h);
  wipe(m2[1]);
  msg.set(encTs, 88);
  h = hash(h, encTs);
  return { message: msg, state: { localIndex, chainKey: c, hash: h, ephemeralPrivate: ePriv } };
}

/**
 * Decrypts an initiation addressed to `local`; null when it does not
 * authenticate. The caller then checks the initiator's static key and the
 * timestamp against its peer table.
 */
export function consumeInitiation(local: StaticKeys, msg: Uint8Array): ConsumedInitiation | null {
  if (msg.length !== INITIATION_SIZE || msg[0] !== MSG_INITIATION) return null;
  const ePub = msg.slice(8, 40);
  let h = hash(INITIAL_HASH, local.publicKey);
  const [c0] = kdf(1, INITIAL_CHAIN_KEY, ePub);
  h = hash(h, ePub);
  const m1 = mixKey(c0, x25519(local.privateKey, ePub));
  wipe(c0);
  if (!m1) return null;
  const encStatic = msg.subarray(40, 88);
  const initiatorStatic = aeadDecrypt(m1[1], 0, encStatic, h);
  if (!initiatorStatic) return (wipe(...m1), null);
  h = hash(h, encStatic);
  const m2 = mixKey(m1[0], x25519(local.privateKey, initiatorStatic));
  wipe(...m1);
  if (!m2) return null;
  const encTs = msg.subarray(88, 116);
  const timestamp = aeadDecrypt(m2[1], 0, encTs, h);
  wipe(m2[1]);
  if (!timestamp) return (wipe(m2[0]), null);
  h = hash(h, encTs);
  return {
    senderIndex: readU32(msg, 4),
    initiatorStatic: initiatorStatic.slice(),
    remoteEphemeral: ePub,
    timestamp: timestamp.slice(),
    chainKey: m2[0],
    hash: h,
  };
}

/** Builds the response (macs left zero) to a consumed initiation and derives the responder's keys. */
export function createResponse(
  init: ConsumedInitiation,
  presharedKey: Uint8Array | undefined,
  localIndex: number,
  random: RandomSource,
): { message: Uint8Array; keys: SessionKeys } | null {
  const msg = new Uint8Array(RESPONSE_SIZE);
  msg[0] = MSG_RESPONSE;
  writeU32(msg, 4, localIndex);
  writeU32(msg, 8, init.senderIndex);
  const ePriv = random(32).slice(0, 32);
  const ePub = x25519PublicKey(ePriv);
  msg.set(ePub, 12);
  let h = hash(init.hash, ePub);
  const [c] = kdf(1, init.chainKey, ePub);
  const dh1 = x25519(ePriv, init.remoteEphemeral);
  const dh2 = x25519(ePriv, init.initiatorStatic);
  ePriv.fill(0);
  if (!dh1 || !dh2) return (wipe(c, dh1, dh2), null);
  const c1 = kdf(1, c, dh1)[0];
  const c1b = kdf(1, c1, dh2)[0];
  const [c2, t, k] = kdf(3, c1b, presharedKey ?? ZERO_KEY);
  wipe(c, c1, c1b, dh1, dh2);
  h = hash(h, t);
  const empty = aeadEncrypt(k, 0, EMPTY, h);
  msg.set(empty, 44);
  const [recv, send] = kdf(2, c2, EMPTY);
  wipe(c2, t, k);
  return { message: msg, keys: { send, receive: recv } };
}

/** Consumes a response to our initiation and derives the initiator's keys; null when it does not authenticate. */
export function consumeResponse(
  state: InitiatorState,
  local: StaticKeys,
  presharedKey: Uint8Array | undefined,
  msg: Uint8Array,
): { senderIndex: number; keys: SessionKeys } | null {
  if (msg.length !== RESPONSE_SIZE || msg[0] !== MSG_RESPONSE) return null;
  if (readU32(msg, 8) !== state.localIndex) return null;
  const ePub = msg.slice(12, 44);
  let h = hash(state.hash, ePub);
  const [c] = kdf(1, state.chainKey, ePub);
  const dh1 = x25519(state.ephemeralPrivate, ePub);
  const dh2 = x25519(local.privateKey, ePub);
  if (!dh1 || !dh2) return (wipe(c, dh1, dh2), null);
  const c1 = kdf(1, c, dh1)[0];
  const c1b = kdf(1, c1, dh2)[0];
  const [c2, t, k] = kdf(3, c1b, presharedKey ?? ZERO_KEY);
  wipe(c, c1, c1b, dh1, dh2);
  h = hash(h, t);
  const ok = aeadDecrypt(k, 0, msg.subarray(44, 60), h);
  wipe(k, t);
  if (!ok) return (wipe(c2), null);
  const [send, recv] = kdf(2, c2, EMPTY);
  wipe(c2);
  return { senderIndex: readU32(msg, 4), keys: { send, receive: recv } };
}
