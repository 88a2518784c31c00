/**
 * ChaCha20-Poly1305 (RFC 8439) through OpenSSL, and XChaCha20-Poly1305 for
 * cookie replies (HChaCha20 here in TypeScript, then the same AEAD).
 *
 * The data plane uses AeadContext: one EVP_CIPHER_CTX per key and direction,
 * keyed once, then per packet only the nonce is set and the data is
 * transformed in place. Every scratch buffer is preallocated, so the hot path
 * does not allocate.
 */
import { libcrypto } from "./openssl.ts";

/** Poly1305 tag size in bytes. */
export const TAG_SIZE = 16;

const EVP_CTRL_AEAD_GET_TAG = 0x10;
const EVP_CTRL_AEAD_SET_TAG = 0x11;

/** Safety net: frees OpenSSL contexts whose owner was collected without calling free(). */
const finalizer = new FinalizationRegistry<Deno.PointerObject>((ctx) => {
  libcrypto().EVP_CIPHER_CTX_free(ctx);
});

/** A keyed ChaCha20-Poly1305 context for one direction; works in place. */
export class AeadContext {
  #ctx: Deno.PointerValue;
  #enc: number;
  readonly #c = libcrypto();
  #nonce = new Uint8Array(12);
  #nonceView = new DataView(this.#nonce.buffer);
  #tag = new Uint8Array(TAG_SIZE);
  #outl = new Int32Array(1);
  #scratch = new Uint8Array(32);

  constructor(key: Uint8Array, encrypt: boolean) {
    if (key.length !== 32) {
      throw new RangeError(`ChaCha20-Poly1305 key length ${key.length} is not 32`);
    }
    const c = libcrypto();
    const ctx = c.EVP_CIPHER_CTX_new();
    if (!ctx) throw new Error("Cannot create cipher context: EVP_CIPHER_CTX_new returned NULL");
    this.#enc = encrypt ? 1 : 0;
    if (c.EVP_CipherInit_ex(ctx, c.EVP_chacha20_poly1305(), null, key, null, this.#enc) !== 1) {
      c.EVP_CIPHER_CTX_free(ctx);
      throw new Error("Cannot key ChaCha20-Poly1305: EVP_CipherInit_ex failed");
    }
    this.#ctx = ctx;
    finalizer.register(this, ctx, this);
  }

  /** True once free() ran. */
  get freed(): boolean {
    return this.#ctx === null;
  }

  /**
   * Encrypts `data[0..len]` in place with the nonce 0^32 || LE64(counter) and
   * writes the tag to `data[len..len+16]`. Returns false when OpenSSL fails.
   */
  seal(data: Uint8Array, len: number, counter: number, aad: Uint8Array | null = null): boolean {
    this.#setCounter(counter);
    return this.#seal(data, len, aad);
  }

  /**
   * Decrypts `data[0..len]` (ciphertext followed by the 16-byte tag) in place.
   * Returns false when the tag does not verify: the bytes in `data` must then
   * not be used.
   */
  open(data: Uint8Array, len: number, counter: number, aad: Uint8Array | null = null): boolean {
    this.#setCounter(counter);
    return this.#open(data, len, aad);
  }

  /** Like seal() with an explicit 12-byte nonce (XChaCha20 and tests). */
  sealWithNonce(data: Uint8Array, len: number, nonce: Uint8Array, aad: Uint8Array | null): boolean {
    this.#nonce.set(nonce);
    return this.#seal(data, len, aad);
  }

  /** Like open() with an explicit 12-byte nonce (XChaCha20 and tests). */
  openWithNonce(data: Uint8Array, len: number, nonce: Uint8Array, aad: Uint8Array | null): boolean {
    this.#nonce.set(nonce);
    return this.#open(data, len, aad);
  }

  /** Releases the OpenSSL context; idempotent. */
  free(): void {
    if (this.#ctx === null) return;
    finalizer.unregister(this);
    libcrypto().EVP_CIPHER_CTX_free(this.#ctx);
    this.#ctx = null;
  }

  #setCounter(counter: number): void {
    this.#nonceView.setUint32(4, counter >>> 0, true);
    this.#nonceView.setUint32(8, Math.floor(counter / 0x100000000), true);
  }

  #seal(data: Uint8Array, len: number, aad: Uint8Array | null): boolean {
    const ctx = this.#ctx;
    if (ctx === null || this.#enc !== 1) return false;
    const c = this.#c;
    if (c.EVP_CipherInit_ex(ctx, null, null, null, this.#nonce, 1) !== 1) return false;
    if (aad && aad.length && c.EVP_CipherUpdate(ctx, null, this.#outl, aad, aad.length) !== 1) {
      return false;
    }
    if (len > 0 && c.EVP_CipherUpdate(ctx, data, this.#outl, data, len) !== 1) return false;
    if (c.EVP_CipherFinal_ex(ctx, this.#scratch, this.#outl) !== 1) return false;
    if (c.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_SIZE, this.#tag) !== 1) return false;
    data.set(this.#tag, len);
    return true;
  }

  #open(data: Uint8Array, len: number, aad: Uint8Array | null): boolean {
    const ctx = this.#ctx;
    if (ctx === null || this.#enc !== 0 || len < TAG_SIZE) return false;
    const c = this.#c;
    const n = len - TAG_SIZE;
    const tag = this.#tag;
    for (let i = 0; i < TAG_SIZE; i++) tag[i] = data[n + i];
    if (c.EVP_CipherInit_ex(ctx, null, null, null, this.#nonce, 0) !== 1) return false;
    if (c.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_SIZE, tag) !== 1) return false;
    if (aad && aad.length && c.EVP_CipherUpdate(ctx, null, this.#outl, aad, aad.length) !== 1) {
      return false;
    }
    if (n > 0 && c.EVP_CipherUpdate(ctx, data, this.#outl, data, n) !== 1) return false;
    return c.EVP_CipherFinal_ex(ctx, this.#scratch, this.#outl) > 0;
  }
}

/** One-shot AEAD encrypt (handshakes): returns ciphertext || tag. */
export function aeadEncrypt(
  key: Uint8Array,
  counter: number,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(plaintext.length + TAG_SIZE);
  out.set(plaintext);
  const ctx = new AeadContext(key, true);
  try {
    if (!ctx.seal(out, plaintext.length, counter, aad)) {
      throw new Error("ChaCha20-Poly1305 encryption failed");
    }
  } finally {
    ctx.free();
  }
  return out;
}

/** One-shot AEAD decrypt (handshakes): returns the plaintext, or null when authentication fails. */
export function aeadDecrypt(
  key: Uint8Array,
  counter: number,
  sealed: Uint8Array,
  aad: Uint8Array,
): Uint8Array | null {
  if (sealed.length < TAG_SIZE) return null;
  const buf = sealed.slice();
  const ctx = new AeadContext(key, false);
  try {
    if (!ctx.open(buf, buf.length, counter, aad)) return null;
  } finally {
    ctx.free();
  }
  return buf.subarray(0, buf.length - TAG_SIZE);
}

/** HChaCha20 (draft-irtf-cfrg-xchacha): derives a subkey from a key and a 16-byte nonce. */
export function hchacha20(key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  const s = new Uint32Array(16);
  s[0] = 0x61707865;
  s[1] = 0x3320646e;
  s[2] = 0x79622d32;
  s[3] = 0x6b206574;
  const kv = new DataView(key.buffer, key.byteOffset, 32);
  for (let i = 0; i < 8; i++) s[4 + i] = kv.getUint32(4 * i, true);
  const nv = new DataView(nonce16.buffer, nonce16.byteOffset, 16);
  for (let i = 0; i < 4; i++) s[12 + i] = nv.getUint32(4 * i, true);
  for (let r = 0; r < 10; r++) {
    qr(s, 0, 4, 8, 12);
    qr(s, 1, 5, 9, 13);
    qr(s, 2, 6, 10, 14);
    qr(s, 3, 7, 11, 15);
    qr(s, 0, 5, 10, 15);
    qr(s, 1, 6, 11, 12);
    qr(s, 2, 7, 8, 13);
    qr(s, 3, 4, 9, 14);
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) ov.setUint32(4 * i, s[i], true);
  for (let i = 0; i < 4; i++) ov.setUint32(16 + 4 * i, s[12 + i], true);
  s.fill(0);
  return out;
}

function qr(s: Uint32Array, a: number, b: number, c: number, d: number): void {
  s[a] += s[b];
  s[d] = rotl(s[d] ^ s[a], 16);
  s[c] += s[d];
  s[b] = rotl(s[b] ^ s[c], 12);
  s[a] += s[b];
  s[d] = rotl(s[d] ^ s[a], 8);
  s[c] += s[d];
  s[b] = rotl(s[b] ^ s[c], 7);
}

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

function xnonce(nonce24: Uint8Array): Uint8Array {
  const n = new Uint8Array(12);
  n.set(nonce24.subarray(16, 24), 4);
  return n;
}

/** XChaCha20-Poly1305 encrypt with a 24-byte nonce: returns ciphertext || tag. */
export function xaeadEncrypt(
  key: Uint8Array,
  nonce24: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  if (nonce24.length !== 24) {
    throw new RangeError(`XChaCha20 nonce length ${nonce24.length} is not 24`);
  }
  const sub = hchacha20(key, nonce24.subarray(0, 16));
  const out = new Uint8Array(plaintext.length + TAG_SIZE);
  out.set(plaintext);
  const ctx = new AeadContext(sub, true);
  try {
    if (!ctx.sealWithNonce(out, plaintext.length, xnonce(nonce24), aad)) {
      throw new Error("XChaCha20-Poly1305 encryption failed");
    }
  } finally {
    ctx.free();
    sub.fill(0);
  }
  return out;
}

/** XChaCha20-Poly1305 decrypt: returns the plaintext, or null when authentication fails. */
export function xaeadDecrypt(
  key: Uint8Array,
  nonce24: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
): Uint8Array | null {
  if (nonce24.length !== 24 || sealed.length < TAG_SIZE) return null;
  const sub = hchacha20(key, nonce24.subarray(0, 16));
  const buf = sealed.slice();
  const ctx = new AeadContext(sub, false);
  try {
    if (!ctx.openWithNonce(buf, buf.length, xnonce(nonce24), aad)) return null;
  } finally {
    ctx.free();
    sub.fill(0);
  }
  return buf.subarray(0, buf.length - TAG_SIZE);
}
