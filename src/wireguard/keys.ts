/**
 * WireGuard key helpers: generation (clamped X25519 private keys, preshared
 * keys), public key derivation and the base64 text form used by wg(8) and
 * wg-quick files, with strict validation.
 */
import { InputError } from "../errors.ts";
import { x25519PublicKey } from "./x25519.ts";

/** Size in bytes of every WireGuard key. */
export const KEY_SIZE = 32;

/** Source of random bytes; injectable for tests. */
export type RandomSource = (n: number) => Uint8Array;

/** Random bytes from the platform CSPRNG. */
export const systemRandom: RandomSource = (n) => crypto.getRandomValues(new Uint8Array(n));

/** Returns a new X25519 private key, clamped as `wg genkey` does. */
export function generatePrivateKey(random: RandomSource = systemRandom): Uint8Array {
  const k = random(KEY_SIZE).slice(0, KEY_SIZE);
  k[0] &= 248;
  k[31] = (k[31] & 127) | 64;
  return k;
}

/** Returns a new random preshared key (`wg genpsk`). */
export function generatePresharedKey(random: RandomSource = systemRandom): Uint8Array {
  return random(KEY_SIZE).slice(0, KEY_SIZE);
}

/** Derives the public key of a private key (`wg pubkey`). */
export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return x25519PublicKey(privateKey);
}

/** Encodes a 32-byte key as the 44-character base64 text wg(8) uses. */
export function encodeKey(key: Uint8Array): string {
  if (key.length !== KEY_SIZE) {
    throw new RangeError(`Cannot encode key: length ${key.length} is not 32`);
  }
  let s = "";
  for (const b of key) s += String.fromCharCode(b);
  return btoa(s);
}

// 43 significant characters carry 258 bits; the last one must leave the 2 spare bits zero.
const KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Decodes base64 key text; returns null unless it is exactly a canonical 32-byte key. */
export function decodeKey(text: string): Uint8Array | null {
  if (!KEY_RE.test(text)) return null;
  const bin = atob(text);
  const out = new Uint8Array(KEY_SIZE);
  for (let i = 0; i < KEY_SIZE; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Decodes base64 key text or throws an InputError naming `what`. */
export function parseKey(text: string, what = "Key"): Uint8Array {
  const k = decodeKey(text.trim());
  if (!k) throw new InputError("invalid_key", `${what} is not a valid base64 32-byte key`);
  return k;
}

/** Compares two byte arrays in time independent of their contents (lengths are public). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i] ^ b[i];
  return acc === 0;
}

/** True when every byte is zero (checked in constant time). */
export function isZero(a: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i];
  return acc === 0;
}
