/**
 * Random secrets, their stored hashes and constant-time comparison. Device
 * credentials, enrolment-key secrets, session ids and API tokens are 32
 * random bytes: with that much entropy a single SHA-256 is a sound stored
 * form (nothing to brute-force), unlike passwords, which get scrypt.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Hardware fingerprint a device reports at enrolment: its machine id and the
 * MAC addresses of its hardware-backed interfaces (lowercase, colon-separated).
 */
export interface HardwareFingerprint {
  machineId: string;
  macs: string[];
}

/** Returns `bytes` random bytes encoded as base64url without padding. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

/** Returns a short random identifier with a readable prefix, e.g. "dev_3f9a…". */
export function randomId(prefix: string, bytes = 9): string {
  return `${prefix}_${randomBytes(bytes).toString("hex")}`;
}

/** SHA-256 of a UTF-8 string or bytes, as lowercase hex. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Compares two strings in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const ab = new TextEncoder().encode(a);
  const bb = new TextEncoder().encode(b);
  // Compare equal-length digests so the length of the secret does not leak either.
  const da = createHash("sha256").update(ab).digest();
  const db = createHash("sha256").update(bb).digest();
  return timingSafeEqual(da, db) && ab.length === bb.length;
}

/** A new device credential: the secret (shown once) and the hash the edge keeps. */
export function newDeviceCredential(): { credential: string; hash: string } {
  const credential = `pcd_${randomToken(32)}`;
  return { credential, hash: sha256Hex(credential) };
}

/** Checks a presented credential against a stored hash in constant time. */
export function verifyDeviceCredential(presented: string, storedHash: string): boolean {
  return constantTimeEqual(sha256Hex(presented), storedHash);
}

/**
 * The device's hardware identity as one hex string: SHA-256 of the canonical
 * JSON `{"machineId":…,"macs":[lowercase, sorted]}`. The connector computes
 * the same value (src/connector/identity.ts) and sends it in the
 * `X-Device-Fingerprint` header; sorting makes it independent of interface order.
 */
export function fingerprintHash(fp: HardwareFingerprint): string {
  const macs = fp.macs.map((m) => m.toLowerCase()).sort();
  return sha256Hex(JSON.stringify({ machineId: fp.machineId, macs }));
}
