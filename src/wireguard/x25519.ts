/**
 * X25519 (RFC 7748) through OpenSSL's EVP_PKEY: synchronous and fast, which
 * matters because a handshake needs four of them.
 */
import { libcrypto } from "./openssl.ts";

const EVP_PKEY_X25519 = 1034;

/** Key size in bytes for X25519 private keys, public keys and shared secrets. */
export const X25519_KEY_SIZE = 32;

function check(name: string, key: Uint8Array): void {
  if (key.length !== X25519_KEY_SIZE) {
    throw new RangeError(`Cannot use X25519 ${name}: length ${key.length} is not 32`);
  }
}

/** Returns the public key for a 32-byte private key (clamping is applied by X25519 itself). */
export function x25519PublicKey(privateKey: Uint8Array): Uint8Array {
  check("private key", privateKey);
  const c = libcrypto();
  const pkey = c.EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, null, privateKey, 32n);
  if (!pkey) throw new Error("Cannot load X25519 private key: EVP_PKEY_new_raw_private_key failed");
  try {
    const out = new Uint8Array(32);
    const len = new BigUint64Array([32n]);
    if (c.EVP_PKEY_get_raw_public_key(pkey, out, len) !== 1 || len[0] !== 32n) {
      throw new Error("Cannot derive X25519 public key: EVP_PKEY_get_raw_public_key failed");
    }
    return out;
  } finally {
    c.EVP_PKEY_free(pkey);
  }
}

/**
 * DH(private, public): the X25519 shared secret. Returns null when the result
 * is all zeros (a low-order public key), which the whitepaper says to reject.
 */
export function x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  check("private key", privateKey);
  check("public key", publicKey);
  const c = libcrypto();
  const priv = c.EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, null, privateKey, 32n);
  const pub = c.EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, null, publicKey, 32n);
  const ctx = priv ? c.EVP_PKEY_CTX_new(priv, null) : null;
  try {
    if (!priv || !pub || !ctx) return null;
    if (c.EVP_PKEY_derive_init(ctx) !== 1) return null;
    if (c.EVP_PKEY_derive_set_peer(ctx, pub) !== 1) return null;
    const out = new Uint8Array(32);
    const len = new BigUint64Array([32n]);
    // OpenSSL itself fails the derive for an all-zero result; check anyway.
    if (c.EVP_PKEY_derive(ctx, out, len) !== 1 || len[0] !== 32n) return null;
    let acc = 0;
    for (let i = 0; i < 32; i++) acc |= out[i];
    return acc === 0 ? null : out;
  } finally {
    if (ctx) c.EVP_PKEY_CTX_free(ctx);
    if (pub) c.EVP_PKEY_free(pub);
    if (priv) c.EVP_PKEY_free(priv);
  }
}
