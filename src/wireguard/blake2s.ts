/**
 * BLAKE2s (RFC 7693) in TypeScript, with the keyed mode and variable output
 * length WireGuard needs (HASH, MAC), plus HMAC-BLAKE2s and the Noise HKDF.
 * Only handshakes and mac checks use it, so clarity beats speed here.
 */

const IV = new Uint32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);

const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
].flat();

/** Incremental BLAKE2s hasher (RFC 7693). */
export class Blake2s {
  #h = new Uint32Array(8);
  #buf = new Uint8Array(64);
  #m = new Uint32Array(16);
  #v = new Uint32Array(16);
  #fill = 0;
  #t = 0;
  #outLen: number;

  constructor(outLen = 32, key?: Uint8Array) {
    const keyLen = key?.length ?? 0;
    if (outLen < 1 || outLen > 32) {
      throw new RangeError(`BLAKE2s output length ${outLen} is not 1-32`);
    }
    if (keyLen > 32) throw new RangeError(`BLAKE2s key length ${keyLen} is over 32`);
    this.#outLen = outLen;
    this.#h.set(IV);
    this.#h[0] ^= 0x01010000 ^ (keyLen << 8) ^ outLen;
    if (key && keyLen) {
      this.#buf.set(key);
      this.#fill = 64;
    }
  }

  /** Absorbs `data`. */
  update(data: Uint8Array): this {
    for (let i = 0; i < data.length; i++) {
      if (this.#fill === 64) {
        this.#t += 64;
        this.#compress(false);
        this.#fill = 0;
      }
      this.#buf[this.#fill++] = data[i];
    }
    return this;
  }

  /** Finishes and returns the digest; the hasher must not be used afterwards. */
  digest(): Uint8Array {
    this.#t += this.#fill;
    this.#buf.fill(0, this.#fill);
    this.#compress(true);
    const out = new Uint8Array(this.#outLen);
    for (let i = 0; i < this.#outLen; i++) out[i] = this.#h[i >> 2] >>> (8 * (i & 3));
    this.#buf.fill(0);
    this.#h.fill(0);
    return out;
  }

  #compress(last: boolean): void {
    const m = this.#m, v = this.#v, h = this.#h, b = this.#buf;
    for (let i = 0; i < 16; i++) {
      m[i] = b[4 * i] | (b[4 * i + 1] << 8) | (b[4 * i + 2] << 16) | (b[4 * i + 3] << 24);
    }
    v.set(h);
    v.set(IV, 8);
    v[12] ^= this.#t >>> 0;
    v[13] ^= Math.floor(this.#t / 0x100000000);
    if (last) v[14] = ~v[14];
    for (let r = 0; r < 10; r++) {
      const s = r * 16;
      g(v, 0, 4, 8, 12, m[SIGMA[s]], m[SIGMA[s + 1]]);
      g(v, 1, 5, 9, 13, m[SIGMA[s + 2]], m[SIGMA[s + 3]]);
      g(v, 2, 6, 10, 14, m[SIGMA[s + 4]], m[SIGMA[s + 5]]);
      g(v, 3, 7, 11, 15, m[SIGMA[s + 6]], m[SIGMA[s + 7]]);
      g(v, 0, 5, 10, 15, m[SIGMA[s + 8]], m[SIGMA[s + 9]]);
      g(v, 1, 6, 11, 12, m[SIGMA[s + 10]], m[SIGMA[s + 11]]);
      g(v, 2, 7, 8, 13, m[SIGMA[s + 12]], m[SIGMA[s + 13]]);
      g(v, 3, 4, 9, 14, m[SIGMA[s + 14]], m[SIGMA[s + 15]]);
    }
    for (let i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
  }
}

function g(v: Uint32Array, a: number, b: number, c: number, d: number, x: number, y: number) {
  v[a] = v[a] + v[b] + x;
  v[d] = rotr(v[d] ^ v[a], 16);
  v[c] = v[c] + v[d];
  v[b] = rotr(v[b] ^ v[c], 12);
  v[a] = v[a] + v[b] + y;
  v[d] = rotr(v[d] ^ v[a], 8);
  v[c] = v[c] + v[d];
  v[b] = rotr(v[b] ^ v[c], 7);
}

function rotr(x: number, n: number): number {
  return (x >>> n) | (x << (32 - n));
}

/** HASH(parts...): unkeyed BLAKE2s-256 over the concatenation of `parts`. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  const h = new Blake2s(32);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** MAC(key, data): keyed BLAKE2s with a 16-byte output, as WireGuard's mac1/mac2/cookie. */
export function mac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Blake2s(16, key).update(data).digest();
}

/** HMAC-BLAKE2s-256 (RFC 2104 with a 64-byte block), as used by the Noise HKDF. */
export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const k = new Uint8Array(64);
  k.set(key.length > 64 ? hash(key) : key);
  const ipad = new Uint8Array(64), opad = new Uint8Array(64);
  for (let i = 0; i < 64; i++) {
    ipad[i] = k[i] ^ 0x36;
    opad[i] = k[i] ^ 0x5c;
  }
  const inner = new Blake2s(32).update(ipad);
  for (const p of parts) inner.update(p);
  const out = new Blake2s(32).update(opad).update(inner.digest()).digest();
  k.fill(0);
  ipad.fill(0);
  opad.fill(0);
  return out;
}

const ONE = new Uint8Array([1]), TWO = new Uint8Array([2]), THREE = new Uint8Array([3]);

/** Noise HKDF with BLAKE2s: returns `n` (1-3) 32-byte outputs from chaining key and input. */
export function kdf(n: 1 | 2 | 3, chainingKey: Uint8Array, input: Uint8Array): Uint8Array[] {
  const prk = hmac(chainingKey, input);
  const t1 = hmac(prk, ONE);
  const out = [t1];
  if (n >= 2) out.push(hmac(prk, t1, TWO));
  if (n >= 3) out.push(hmac(prk, out[1], THREE));
  prk.fill(0);
  return out;
}
