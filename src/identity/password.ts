/**
 * Password hashing with scrypt (node:crypto). The encoded form carries its
 * own parameters, `scrypt$N$r$p$salt$hash` (salt and hash base64url), so the
 * cost can be raised later without breaking stored hashes.
 */
import { Buffer } from "node:buffer";
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** scrypt cost parameters. */
export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** Defaults: N=2^15, r=8, p=1 (32 MiB, ~50–100 ms on a small box). */
export const DEFAULT_SCRYPT: ScryptParams = { N: 1 << 15, r: 8, p: 1 };

const KEYLEN = 32;
const MAX_PASSWORD = 1024;

function derive(password: string, salt: Buffer, { N, r, p }: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEYLEN, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

/** Hashes a password with a fresh 16-byte salt. */
export async function hashPassword(
  password: string,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<string> {
  if (password.length > MAX_PASSWORD) {
    throw new RangeError(`Cannot hash a password longer than ${MAX_PASSWORD} characters`);
  }
  const salt = randomBytes(16);
  const key = await derive(password, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString("base64url")}$${
    key.toString("base64url")
  }`;
}

/** An encoded hash taken apart, with its parameters checked. */
interface ParsedHash {
  params: ScryptParams;
  salt: Buffer;
  expected: Buffer;
}

/**
 * Takes `scrypt$N$r$p$salt$hash` apart, or returns a sentence saying what is
 * wrong. Absurd parameters are refused so a tampered hash cannot make us
 * burn memory or time.
 */
function parseHash(encoded: string): ParsedHash | string {
  if (encoded.length > 512) return "it is longer than 512 characters";
  const parts = encoded.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") {
    return 'expected the form "scrypt$N$r$p$salt$hash"';
  }
  const [N, r, p] = parts.slice(1, 4).map((x) => /^\d{1,8}$/.test(x) ? Number(x) : NaN);
  if (![N, r, p].every(Number.isInteger) || N < 2 || N > 1 << 20 || (N & (N - 1)) !== 0) {
    return "N must be a power of two from 2 to 2^20";
  }
  if (r < 1 || r > 32 || p < 1 || p > 16) return "r must be 1 to 32 and p 1 to 16";
  if (![parts[4], parts[5]].every((x) => /^[A-Za-z0-9_-]+$/.test(x))) {
    return "the salt and the hash must be base64url";
  }
  const salt = Buffer.from(parts[4], "base64url");
  const expected = Buffer.from(parts[5], "base64url");
  if (salt.length < 8) return "the salt must be at least 8 bytes";
  if (expected.length !== KEYLEN) return `the hash must be ${KEYLEN} bytes`;
  return { params: { N, r, p }, salt, expected };
}

/** Why `encoded` is not a usable scrypt hash, or null when it is one. */
export function scryptHashProblem(encoded: string): string | null {
  const r = parseHash(encoded);
  return typeof r === "string" ? r : null;
}

/** Checks a password against an encoded hash; false for any malformed hash. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  if (password.length > MAX_PASSWORD) return false;
  const h = parseHash(encoded);
  if (typeof h === "string") return false;
  const key = await derive(password, h.salt, h.params);
  return timingSafeEqual(key, h.expected);
}
