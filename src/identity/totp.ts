/**
 * TOTP second factor (RFC 6238 over RFC 4226): HMAC-SHA-1, 6 digits, 30 s
 * steps, accepting one step either side for clock drift. The caller records
 * the step that matched and refuses it next time, so an observed code cannot
 * be replayed within its window.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** Encodes bytes as RFC 4648 base32 without padding. */
export function base32Encode(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

/** Decodes RFC 4648 base32 (case-insensitive, padding and spaces ignored). */
export function base32Decode(text: string): Uint8Array {
  const clean = text.replace(/[\s=]/g, "").toUpperCase();
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const idx = B32.indexOf(ch);
    if (idx < 0) throw new RangeError(`Cannot decode base32: invalid character "${ch}"`);
    value = (value << 5) | idx;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return new Uint8Array(out);
}

/** TOTP parameters. */
export interface TotpOptions {
  stepSec?: number;
  digits?: number;
  algorithm?: "sha1" | "sha256" | "sha512";
}

/** The time step containing `nowMs`. */
export function totpStep(nowMs: number, stepSec = 30): number {
  return Math.floor(nowMs / 1000 / stepSec);
}

/** The HOTP code for a counter (RFC 4226 dynamic truncation). */
export function hotp(
  key: Uint8Array,
  counter: number,
  digits = 6,
  algorithm: "sha1" | "sha256" | "sha512" = "sha1",
): string {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(algorithm, key).update(msg).digest();
  const off = mac[mac.length - 1] & 0x0f;
  const bin = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) |
    mac[off + 3];
  return String(bin % 10 ** digits).padStart(digits, "0");
}

/** The TOTP code for a base32 secret at `nowMs`. */
export function totpAt(secretB32: string, nowMs: number, opts: TotpOptions = {}): string {
  return hotp(
    base32Decode(secretB32),
    totpStep(nowMs, opts.stepSec ?? 30),
    opts.digits ?? 6,
    opts.algorithm ?? "sha1",
  );
}

/**
 * Checks `code` at `nowMs` with a ±1 step window. Returns the matching step
 * (to be recorded against replay) or null. Steps at or below `lastStep` are
 * refused.
 */
export function verifyTotp(
  secretB32: string,
  code: string,
  nowMs: number,
  lastStep = 0,
  opts: TotpOptions = {},
): number | null {
  const digits = opts.digits ?? 6;
  if (!new RegExp(`^\\d{${digits}}$`).test(code)) return null;
  const key = base32Decode(secretB32);
  const step = totpStep(nowMs, opts.stepSec ?? 30);
  let match: number | null = null;
  // Check every candidate (no early exit) so timing does not reveal which step matched.
  for (const s of [step - 1, step, step + 1]) {
    const want = Buffer.from(hotp(key, s, digits, opts.algorithm ?? "sha1"));
    if (timingSafeEqual(want, Buffer.from(code)) && s > lastStep && match === null) match = s;
  }
  return match;
}

/** A fresh 160-bit secret in base32 (the RFC 4226 recommended length). */
export function generateTotpSecret(): string {
  return base32Encode(randomBytes(20));
}

/** The otpauth:// URI authenticator apps read from a QR code. */
export function otpauthUri(issuer: string, account: string, secretB32: string): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const q = new URLSearchParams({
    secret: secretB32,
    issuer,
    algorithm: "SHA1",
    digits: "6",
    period: "30",
  });
  return `otpauth://totp/${label}?${q.toString()}`;
}
