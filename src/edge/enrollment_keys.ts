/**
 * Enrolment keys: one string handed to an admin once,
 * `pc1.<base64url(JSON {u, c, s})>` — the edge API URL, the SHA-256 of the
 * edge CA and a 32-byte random secret. The edge stores only SHA-256(secret)
 * (ample for a random 256-bit value), whether the key is reusable, its
 * expiry, revocation and use count, and the group its devices join.
 */
import type { Clock } from "../clock.ts";
import { InputError } from "../errors.ts";
import { EnrollmentKeyPayload, KEY_PREFIX } from "../control/enrollment_key.ts";
import { randomId, randomToken, sha256Hex } from "../identity/secrets.ts";
import type { EnrollmentKeyRecord, Store } from "../store/mod.ts";

/** Group names: letters, digits, dot, dash, underscore; 1–64 characters. */
export const GROUP_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Encodes a payload as an enrolment key string. */
export function encodeEnrollmentKey(p: EnrollmentKeyPayload): string {
  const json = JSON.stringify({ u: p.u, c: p.c, s: p.s });
  return KEY_PREFIX + btoa(json).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes and validates an enrolment key string. */
export function decodeEnrollmentKey(key: string): EnrollmentKeyPayload {
  const bad = (why: string) =>
    new InputError("malformed_enrollment_key", `Cannot read enrolment key: ${why}`);
  if (!key.startsWith(KEY_PREFIX)) throw bad(`expected it to start with "${KEY_PREFIX}"`);
  const body = key.slice(KEY_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body) || body.length > 2048) throw bad("not base64url");
  let json: unknown;
  try {
    json = JSON.parse(atob(body.replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    throw bad("not base64url-encoded JSON");
  }
  const parsed = EnrollmentKeyPayload.safeParse(json);
  if (!parsed.success) throw bad(parsed.error.issues[0]?.message ?? "unexpected content");
  return parsed.data;
}

/** The secret a client presented: either the full key string or its secret part. */
export function presentedSecret(key: string): string {
  return key.startsWith(KEY_PREFIX) ? decodeEnrollmentKey(key).s : key;
}

/** Options for a new key. */
export interface NewKeyOptions {
  reusable: boolean;
  /** Lifetime in ms from now, or null for no expiry. */
  expiresInMs: number | null;
  group: string | null;
  /** A machine key (default) enrols without a user; `false` makes a user key. */
  machine?: boolean;
  createdBy: string;
  /** Edge API URL the connector will call. */
  apiUrl: string;
  /** SHA-256 (hex) of the edge CA certificate. */
  caSha256: string;
}

/** Creates and stores a key; returns the string (shown once) and the stored record. */
export function createEnrollmentKey(
  store: Store,
  clock: Clock,
  opts: NewKeyOptions,
): { key: string; record: EnrollmentKeyRecord } {
  if (opts.group !== null && !GROUP_NAME.test(opts.group)) {
    throw new InputError(
      "invalid_group",
      `Cannot use group "${opts.group}": expected 1-64 letters, digits, ".", "-" or "_"`,
    );
  }
  const secret = randomToken(32);
  const now = clock.now();
  const record: EnrollmentKeyRecord = {
    id: randomId("key", 6),
    secretHash: sha256Hex(secret),
    reusable: opts.reusable,
    group: opts.group,
    expiresAt: opts.expiresInMs === null ? null : now + opts.expiresInMs,
    revokedAt: null,
    usedAt: null,
    useCount: 0,
    createdBy: opts.createdBy,
    createdAt: now,
    machine: opts.machine ?? true,
  };
  const key = encodeEnrollmentKey({ u: opts.apiUrl, c: opts.caSha256, s: secret });
  EnrollmentKeyPayload.parse(decodeEnrollmentKey(key));
  store.transaction(() => {
    store.enrollmentKeys.insert(record);
    store.audit.insert({
      at: now,
      actor: opts.createdBy,
      action: "enrollment_key.create",
      target: record.id,
      detail: {
        reusable: record.reusable,
        expiresAt: record.expiresAt,
        group: record.group,
        machine: record.machine,
      },
    });
  });
  return { key, record };
}

/** The public view of a key (no hash). */
export function keyView(k: EnrollmentKeyRecord, now: number) {
  const status = k.revokedAt !== null
    ? "revoked"
    : k.expiresAt !== null && k.expiresAt <= now
    ? "expired"
    : !k.reusable && k.usedAt !== null
    ? "used"
    : "active";
  return {
    id: k.id,
    reusable: k.reusable,
    group: k.group,
    machine: k.machine,
    status,
    useCount: k.useCount,
    expiresAt: k.expiresAt === null ? null : new Date(k.expiresAt).toISOString(),
    revokedAt: k.revokedAt === null ? null : new Date(k.revokedAt).toISOString(),
    usedAt: k.usedAt === null ? null : new Date(k.usedAt).toISOString(),
    createdBy: k.createdBy,
    createdAt: new Date(k.createdAt).toISOString(),
  };
}

/**
 * Looks up the key for a presented secret and refuses it with a distinct
 * code when it cannot be used: unknown 401, revoked 403, expired 410, used 410.
 */
export function usableKey(store: Store, secret: string, now: number): EnrollmentKeyRecord {
  const k = store.enrollmentKeys.bySecretHash(sha256Hex(secret));
  if (!k) {
    throw new InputError(
      "enrollment_key_unknown",
      "Cannot enrol: the enrolment key is not known to this edge",
      401,
    );
  }
  if (k.revokedAt !== null) {
    throw new InputError(
      "enrollment_key_revoked",
      `Cannot enrol: enrolment key ${k.id} was revoked`,
      403,
    );
  }
  if (k.expiresAt !== null && k.expiresAt <= now) {
    throw new InputError(
      "enrollment_key_expired",
      `Cannot enrol: enrolment key ${k.id} expired at ${new Date(k.expiresAt).toISOString()}`,
      410,
    );
  }
  if (!k.reusable && k.usedAt !== null) {
    throw new InputError(
      "enrollment_key_used",
      `Cannot enrol: single-use enrolment key ${k.id} was already used`,
      410,
    );
  }
  return k;
}
