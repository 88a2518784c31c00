/**
 * The edge's WireGuard static key pair, made at first start and kept in the
 * data directory (mode 0600). The control plane hands the public key to
 * enrolling devices; the data plane loads the private key.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";

/** A Curve25519 key pair, both halves base64 (WireGuard's format). */
export interface WgKeyPair {
  privateKey: string;
  publicKey: string;
}

const b64 = (b64url: string) => Buffer.from(b64url, "base64url").toString("base64");

/** Generates a fresh X25519 key pair. */
export function generateWgKeyPair(): WgKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  const priv = privateKey.export({ format: "jwk" }) as { d: string };
  const pub = publicKey.export({ format: "jwk" }) as { x: string };
  return { privateKey: b64(priv.d), publicKey: b64(pub.x) };
}

/** Derives the public key of a base64 X25519 private key. */
export function wgPublicKeyOf(privateKeyB64: string): string {
  const d = Buffer.from(privateKeyB64, "base64").toString("base64url");
  const key = createPrivateKey({ key: { kty: "OKP", crv: "X25519", d, x: "" }, format: "jwk" });
  const jwk = createPublicKey(key).export({ format: "jwk" }) as { x: string };
  return b64(jwk.x);
}

/** Loads the key pair from `path`, creating it (0600) on first start. */
export async function ensureWgKey(path: string): Promise<WgKeyPair> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    if (/^[A-Za-z0-9+/]{43}=$/.test(text)) {
      return { privateKey: text, publicKey: wgPublicKeyOf(text) };
    }
    throw new Error(`Cannot read WireGuard key "${path}": expected one base64 32-byte key`);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const pair = generateWgKeyPair();
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, pair.privateKey + "\n", { mode: 0o600 });
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, path);
  return pair;
}
