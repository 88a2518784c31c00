/**
 * Connector releases: an Ed25519 release key (WebCrypto), the signed
 * manifest (version, SHA-256 and size of the program) and the bundle file an
 * operator uploads to the edge.
 *
 * Trust runs from the operator to the connector, never through the edge: the
 * operator keeps the private key (a mode-0600 file, never on an edge), the
 * connector pins the public half in its data directory at install, and the
 * edge only stores and serves what it was given. An edge that is taken over
 * can therefore withhold releases, but it cannot make a connector run a
 * program the release key did not sign.
 *
 * The signature covers the manifest's exact bytes behind a domain prefix
 * ("portcullis release v1\n"), so a signature made for anything else with
 * the same key never passes as a release. The program's bytes are bound by
 * the manifest's SHA-256.
 *
 * Bundle file: the line "PCRELEASE1", the signed manifest as one line of
 * JSON, then the program's bytes.
 */
import { z } from "zod";
import { InputError } from "../errors.ts";
import { sha256Hex } from "../identity/secrets.ts";
import { parseVersion } from "../version.ts";
import { fromBase64, toBase64 } from "../base64.ts";
import { signDomain, verifyDomain } from "./release_signature.ts";

/** What a release manifest names: the program's version, digest and size. */
export const ReleaseManifest = z.object({
  product: z.literal("portcullis-connector"),
  version: z.string().min(1).max(32).refine((v) => parseVersion(v) !== null, {
    message: "expected a version such as 1.2.0",
  }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "expected a lowercase hex SHA-256"),
  size: z.number().int().nonnegative(),
  /** The short id of the key that signed it (keyIdOf). */
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  createdAt: z.string().max(40),
}).strict();
/** @see ReleaseManifest */
export type ReleaseManifest = z.infer<typeof ReleaseManifest>;

/** The manifest's exact text and the base64 Ed25519 signature over it. */
export const SignedManifest = z.object({
  format: z.literal("portcullis-release-1"),
  manifest: z.string().min(2).max(4096),
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, "expected a base64 Ed25519 signature"),
}).strict();
/** @see SignedManifest */
export type SignedManifest = z.infer<typeof SignedManifest>;

/** The private key file (the operator's; mode 0600). */
const PrivateKeyFile = z.object({
  kind: z.literal("portcullis-release-private-key"),
  privateKey: z.string().min(1),
  publicKey: z.string().min(1),
}).strict();

/** The public key file the connector pins. */
const PublicKeyFile = z.object({
  kind: z.literal("portcullis-release-public-key"),
  publicKey: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, "expected a base64 Ed25519 public key"),
  keyId: z.string().optional(),
}).strict();

const MAGIC = "PCRELEASE1\n";
const DOMAIN = "portcullis release v1\n";
const enc = new TextEncoder();
const dec = new TextDecoder();

/** The short id of a public key: the first 16 hex digits of its SHA-256. */
export function keyIdOf(publicKeyB64: string): string {
  return sha256Hex(fromBase64(publicKeyB64)).slice(0, 16);
}

/** A release key pair as the key files hold it (base64 PKCS#8 and raw public key). */
export interface ReleaseKeyPair {
  privateKey: string;
  publicKey: string;
  keyId: string;
}

/** Makes a new Ed25519 release key pair. */
export async function generateReleaseKey(): Promise<ReleaseKeyPair> {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const publicKey = toBase64(raw);
  return { privateKey: toBase64(pkcs8), publicKey, keyId: keyIdOf(publicKey) };
}

/** The private key file's text. */
export function privateKeyFileText(k: ReleaseKeyPair): string {
  return JSON.stringify({
    kind: "portcullis-release-private-key",
    privateKey: k.privateKey,
    publicKey: k.publicKey,
  }) + "\n";
}

/** The public key file's text. */
export function publicKeyFileText(publicKey: string): string {
  return JSON.stringify({
    kind: "portcullis-release-public-key",
    publicKey,
    keyId: keyIdOf(publicKey),
  }) + "\n";
}

/** Reads a private key file's text; InputError naming `path` when it is not one. */
export function parsePrivateKeyFile(text: string, path: string): ReleaseKeyPair {
  let parsed;
  try {
    parsed = PrivateKeyFile.parse(JSON.parse(text));
  } catch {
    throw new InputError(
      "invalid_release_key",
      `Cannot read release private key "${path}": not a file made by "portcullis release keygen"`,
    );
  }
  return { ...parsed, keyId: keyIdOf(parsed.publicKey) };
}

/** Reads a public key file's text (or a private key file's public half); the base64 public key. */
export function parsePublicKeyFile(text: string, path: string): string {
  try {
    const j = JSON.parse(text);
    if (j?.kind === "portcullis-release-private-key") return PrivateKeyFile.parse(j).publicKey;
    return PublicKeyFile.parse(j).publicKey;
  } catch {
    throw new InputError(
      "invalid_release_key",
      `Cannot read release public key "${path}": not a file made by "portcullis release keygen"`,
    );
  }
}

/** Signs `program` as release `version` with the private key; returns the signed manifest. */
export async function signRelease(
  key: ReleaseKeyPair,
  version: string,
  program: Uint8Array,
  now: () => number = Date.now,
): Promise<SignedManifest> {
  if (!parseVersion(version)) {
    throw new InputError("invalid_version", `Invalid version "${version}": expected e.g. 1.2.0`);
  }
  const manifest: ReleaseManifest = {
    product: "portcullis-connector",
    version,
    sha256: sha256Hex(program),
    size: program.length,
    keyId: key.keyId,
    createdAt: new Date(now()).toISOString(),
  };
  const text = JSON.stringify(manifest);
  const signature = await signDomain(DOMAIN, text, key.privateKey);
  return { format: "portcullis-release-1", manifest: text, signature };
}

/** The bundle file: magic line, signed manifest line, program bytes. */
export function bundleBytes(signed: SignedManifest, program: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = enc.encode(MAGIC + JSON.stringify(signed) + "\n");
  const out = new Uint8Array(head.length + program.length);
  out.set(head);
  out.set(program, head.length);
  return out;
}

/** A bundle taken apart: its signed manifest, the manifest it names and the program. */
export interface ParsedBundle {
  signed: SignedManifest;
  manifest: ReleaseManifest;
  program: Uint8Array;
}

/**
 * Takes a bundle apart and checks what needs no key: the shape, and that the
 * program's SHA-256 and size are the manifest's. InputError otherwise.
 */
export function parseBundle(bytes: Uint8Array): ParsedBundle {
  const magic = enc.encode(MAGIC);
  if (bytes.length < magic.length || !magic.every((b, i) => bytes[i] === b)) {
    throw new InputError(
      "invalid_release",
      'Invalid release bundle: it does not start with "PCRELEASE1" (make it with "portcullis release sign")',
    );
  }
  const nl = bytes.indexOf(0x0a, magic.length);
  if (nl < 0 || nl - magic.length > 8192) {
    throw new InputError("invalid_release", "Invalid release bundle: no manifest line");
  }
  const signed = parseSignedManifest(dec.decode(bytes.subarray(magic.length, nl)));
  const manifest = manifestOf(signed);
  const program = bytes.subarray(nl + 1);
  checkProgram(manifest, program);
  return { signed, manifest, program };
}

/** Parses a signed manifest's JSON text; InputError when it is not one. */
export function parseSignedManifest(text: string): SignedManifest {
  try {
    return SignedManifest.parse(JSON.parse(text));
  } catch (e) {
    throw new InputError(
      "invalid_release",
      `Invalid release manifest: ${e instanceof z.ZodError ? e.issues[0].message : "not JSON"}`,
    );
  }
}

/** The manifest a signed manifest carries (not yet verified). */
export function manifestOf(signed: SignedManifest): ReleaseManifest {
  try {
    return ReleaseManifest.parse(JSON.parse(signed.manifest));
  } catch (e) {
    const why = e instanceof z.ZodError
      ? `${e.issues[0].path.join(".")}: ${e.issues[0].message}`
      : "not JSON";
    throw new InputError("invalid_release", `Invalid release manifest: ${why}`);
  }
}

/** Throws when `program` is not the one the manifest names (size, then SHA-256). */
export function checkProgram(manifest: ReleaseManifest, program: Uint8Array): void {
  if (program.length !== manifest.size) {
    throw new InputError(
      "release_digest_mismatch",
      `Release ${manifest.version}: the program has ${program.length} bytes, the manifest says ${manifest.size}`,
    );
  }
  const got = sha256Hex(program);
  if (got !== manifest.sha256) {
    throw new InputError(
      "release_digest_mismatch",
      `Release ${manifest.version}: the program's SHA-256 is ${got}, the manifest says ${manifest.sha256}`,
    );
  }
}

/** True when `signed` carries a valid signature by `publicKeyB64` (false on malformed input). */
export function verifyManifest(
  signed: SignedManifest,
  publicKeyB64: string,
): Promise<boolean> {
  return verifyDomain(DOMAIN, signed.manifest, signed.signature, publicKeyB64);
}
