/**
 * Rollback authorisations: the release key holder's signed permission for a
 * connector to go from one (or more) versions back to an older one.
 *
 * A rollback rule's flag is the edge's word, and an edge can be taken over:
 * with the flag alone it could offer any older signed release — one with
 * known holes — as a "rollback". So a connector takes a downgrade only with
 * an authorisation that verifies against its pinned release key, names the
 * version it runs in `from` and the offered version as `to`, and has not
 * expired (src/connector/updater.ts). The edge stores it with the rule and
 * sends it with the offer; it cannot make one.
 *
 * The signature is Ed25519 with the release key, like a manifest's, over the
 * authorisation's exact text behind its own domain prefix ("portcullis
 * rollback v1\n"), so a manifest's signature never passes as an
 * authorisation and an authorisation's never as a manifest's.
 */
import { z } from "zod";
import { InputError } from "../errors.ts";
import { compareVersions, parseVersion } from "../version.ts";
import type { ReleaseKeyPair } from "./release.ts";
import { signDomain, verifyDomain } from "./release_signature.ts";

const Version = z.string().min(1).max(32).refine((v) => parseVersion(v) !== null, {
  message: "expected a version such as 1.2.0",
});

/** What a rollback authorisation says. */
export const RollbackAuthorisation = z.object({
  product: z.literal("portcullis-connector"),
  /** The versions a connector may leave. */
  from: z.array(Version).min(1).max(32),
  /** The (older) version it may go back to. */
  to: Version,
  /** The short id of the key that signed it (keyIdOf). */
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  createdAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
}).strict();
/** @see RollbackAuthorisation */
export type RollbackAuthorisation = z.infer<typeof RollbackAuthorisation>;

/** The authorisation's exact text and the base64 Ed25519 signature over it. */
export const SignedRollback = z.object({
  format: z.literal("portcullis-rollback-1"),
  authorisation: z.string().min(2).max(4096),
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, "expected a base64 Ed25519 signature"),
}).strict();
/** @see SignedRollback */
export type SignedRollback = z.infer<typeof SignedRollback>;

/** The domain prefix of a rollback signature (a manifest's is "portcullis release v1\n"). */
export const ROLLBACK_DOMAIN = "portcullis rollback v1\n";
/** Longest validity an authorisation may ask for (one year). */
export const MAX_ROLLBACK_MS = 366 * 86400_000;

/** Signs a rollback from `from` to `to`, valid for `validMs` from now. */
export async function signRollback(
  key: ReleaseKeyPair,
  from: readonly string[],
  to: string,
  validMs: number,
  now: () => number = Date.now,
): Promise<SignedRollback> {
  for (const v of [...from, to]) {
    if (!parseVersion(v)) {
      throw new InputError("invalid_version", `Invalid version "${v}": expected e.g. 1.2.0`);
    }
  }
  if (from.length === 0) {
    throw new InputError("invalid_version", "A rollback needs at least one --from version");
  }
  for (const f of from) {
    if ((compareVersions(f, to) ?? 0) <= 0) {
      throw new InputError(
        "invalid_version",
        `Invalid rollback from "${f}" to "${to}": ${f} is not newer than ${to}`,
      );
    }
  }
  if (!(validMs > 0 && validMs <= MAX_ROLLBACK_MS)) {
    throw new InputError(
      "invalid_duration",
      `Invalid rollback validity ${validMs} ms: expected more than 0 and at most 366 days`,
    );
  }
  const t = now();
  const auth: RollbackAuthorisation = {
    product: "portcullis-connector",
    from: [...new Set(from)],
    to,
    keyId: key.keyId,
    createdAt: new Date(t).toISOString(),
    expiresAt: new Date(t + validMs).toISOString(),
  };
  const text = JSON.stringify(auth);
  const signature = await signDomain(ROLLBACK_DOMAIN, text, key.privateKey);
  return { format: "portcullis-rollback-1", authorisation: text, signature };
}

/** The file `portcullis release rollback` writes (one line of JSON). */
export function rollbackFileText(s: SignedRollback): string {
  return JSON.stringify(s) + "\n";
}

/**
 * Parses a signed rollback's JSON text and the authorisation it carries (not
 * verified: the edge has no key). InputError (code
 * `invalid_rollback_authorisation`) saying what is wrong otherwise.
 */
export function parseRollback(
  text: string,
): { signed: SignedRollback; authorisation: RollbackAuthorisation } {
  const bad = (why: string) =>
    new InputError(
      "invalid_rollback_authorisation",
      `Invalid rollback authorisation: ${why} (make it with "portcullis release rollback")`,
    );
  let signed: SignedRollback;
  try {
    signed = SignedRollback.parse(JSON.parse(text));
  } catch (e) {
    throw bad(e instanceof z.ZodError ? issue(e) : "not JSON");
  }
  try {
    return { signed, authorisation: RollbackAuthorisation.parse(JSON.parse(signed.authorisation)) };
  } catch (e) {
    throw bad(e instanceof z.ZodError ? issue(e) : "its authorisation is not JSON");
  }
}

function issue(e: z.ZodError): string {
  const i = e.issues[0];
  return i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message;
}

/** What a connector checks a rollback against. */
export interface RollbackCheck {
  /** The pinned release key (base64). */
  publicKey: string;
  /** The version the connector runs. */
  running: string;
  /** The version offered. */
  offered: string;
  now: number;
}

/**
 * Verifies a rollback authorisation for one downgrade: the signature by the
 * pinned key (first, so nothing unsigned is even read), then `from`, `to`
 * and the expiry. Null when it allows the downgrade, otherwise why not.
 */
export async function rollbackRefusal(
  text: string | null | undefined,
  c: RollbackCheck,
): Promise<string | null> {
  if (!text) return "no rollback authorisation signed by the release key came with the offer";
  let parsed;
  try {
    parsed = parseRollback(text);
  } catch (e) {
    return (e as Error).message;
  }
  if (!(await verifyRollbackSignature(parsed.signed, c.publicKey))) {
    return "bad signature: the rollback authorisation is not signed by the pinned release key";
  }
  const a = parsed.authorisation;
  if (compareVersions(a.to, c.offered) !== 0) {
    return `the rollback authorisation is for version ${a.to}, not ${c.offered}`;
  }
  if (!a.from.some((v) => compareVersions(v, c.running) === 0)) {
    return `the rollback authorisation allows leaving ${a.from.join(", ")}, not ${c.running}`;
  }
  const exp = Date.parse(a.expiresAt);
  if (!(c.now < exp)) return `the rollback authorisation expired at ${a.expiresAt}`;
  return null;
}

/** True when `signed` carries a valid rollback signature by `publicKeyB64` (false on bad input). */
export function verifyRollbackSignature(
  signed: SignedRollback,
  publicKeyB64: string,
): Promise<boolean> {
  return verifyDomain(ROLLBACK_DOMAIN, signed.authorisation, signed.signature, publicKeyB64);
}
