/**
 * The Internet checksum (RFC 1071), its incremental update (RFC 1624) and the
 * TCP/UDP/ICMPv6 pseudo-header sums for IPv4 and IPv6.
 *
 * Sums are carried unfolded as plain non-negative numbers: a packet of at
 * most 64 KiB adds at most 32768 words of 0xffff, far below 2^53, so the fold
 * happens once at the end. Nothing here allocates.
 *
 * Why the word trick in sumWords: the data plane checksums every segment it
 * cuts from a 64 KiB super-packet and every segment it coalesces, so the sum
 * is on the hot path. Reading the bytes two at a time costs about 0.8 ns a
 * byte in V8; reading 32-bit little-endian words through an Int32Array over
 * the same memory costs about a fifth of that (0.16 ns a byte). The one's complement sum does
 * not care about byte order (RFC 1071 §2B): the sum of byte-swapped words is
 * the byte-swapped sum, so the word sum is folded and swapped back.
 */

/** True on little-endian hosts (x86-64, aarch64), where the word trick applies. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Below this many bytes the plain byte loop is as fast. */
const WORD_MIN = 64;
/** Words per block: two 16-bit halves of 8192 words stay below 2^31. */
const BLOCK = 8192;

// A two-entry cache of Int32Array views over whole ArrayBuffers (the data
// plane's arena, a test's buffer), so the fast path creates no view per call.
let cacheA: ArrayBufferLike | null = null;
let wordsA: Int32Array | null = null;
let cacheB: ArrayBufferLike | null = null;
let wordsB: Int32Array | null = null;

function wordsOf(ab: ArrayBufferLike): Int32Array {
  if (ab === cacheA) return wordsA!;
  if (ab === cacheB) {
    const w = wordsB!;
    cacheB = cacheA;
    wordsB = wordsA;
    cacheA = ab;
    wordsA = w;
    return w;
  }
  cacheB = cacheA;
  wordsB = wordsA;
  cacheA = ab;
  wordsA = new Int32Array(ab, 0, ab.byteLength >>> 2);
  return wordsA;
}

function sumBytePairs(buf: Uint8Array, off: number, len: number, sum: number): number {
  const end = off + len;
  let i = off;
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  return sum;
}

/**
 * Adds the 16-bit big-endian words of `buf[off .. off+len]` to `sum` and
 * returns the unfolded sum (an odd trailing byte is padded with zero).
 */
export function sumWords(buf: Uint8Array, off: number, len: number, sum = 0): number {
  if (len < WORD_MIN || !LITTLE_ENDIAN) return sumBytePairs(buf, off, len, sum);
  const abs = buf.byteOffset + off;
  // Bytes before the first 4-aligned address, paired from `off` as usual.
  const lead = (4 - (abs & 3)) & 3;
  sum = sumBytePairs(buf, off, lead, sum);
  const words = wordsOf(buf.buffer);
  let w = (abs + lead) >>> 2;
  const count = (len - lead) >>> 2;
  const wEnd = w + count;
  let folded = 0;
  while (w < wEnd) {
    const stop = Math.min(wEnd, w + BLOCK);
    // Two words a turn into four int32 accumulators: a third faster than one word a turn.
    let lo = 0, hi = 0, lo2 = 0, hi2 = 0;
    for (; w + 1 < stop; w += 2) {
      const x = words[w], y = words[w + 1];
      lo = (lo + (x & 0xffff)) | 0;
      hi = (hi + (x >>> 16)) | 0;
      lo2 = (lo2 + (y & 0xffff)) | 0;
      hi2 = (hi2 + (y >>> 16)) | 0;
    }
    if (w < stop) {
      const x = words[w++];
      lo = (lo + (x & 0xffff)) | 0;
      hi = (hi + (x >>> 16)) | 0;
    }
    folded += lo + hi + lo2 + hi2;
  }
  folded = foldSum(folded);
  // Little-endian halves pair bytes the other way round from `off` when the
  // aligned run starts at an even distance from it: swap back.
  sum += (lead & 1) === 0 ? ((folded & 0xff) << 8) | (folded >>> 8) : folded;
  const rest = lead + count * 4;
  if (rest === len) return sum;
  if (rest & 1) {
    // The tail starts at an odd distance from `off`: its first byte is a low byte.
    sum += buf[off + rest];
    return sumBytePairs(buf, off + rest + 1, len - rest - 1, sum);
  }
  return sumBytePairs(buf, off + rest, len - rest, sum);
}

/** Folds an unfolded sum into 16 bits with end-around carry (not complemented). */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return sum;
}

/** Returns the Internet checksum (complemented 16-bit value) of a byte range plus `initial`. */
export function internetChecksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return ~foldSum(sumWords(buf, off, len, initial)) & 0xffff;
}

/**
 * Pseudo-header sum for IPv4 (RFC 793/768): source, destination, protocol and
 * the transport length. Addresses are read from `buf` at the given offsets.
 */
export function pseudoHeaderSumV4(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  protocol: number,
  length: number,
): number {
  return sumWords(buf, srcOff, 4, sumWords(buf, dstOff, 4, protocol + length));
}

/** Pseudo-header sum for IPv6 (RFC 8200 §8.1): addresses, upper-layer length, next header. */
export function pseudoHeaderSumV6(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  nextHeader: number,
  length: number,
): number {
  const hi = Math.floor(length / 65536);
  return sumWords(buf, srcOff, 16, sumWords(buf, dstOff, 16, nextHeader + hi + (length & 0xffff)));
}

/**
 * RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered data
 * changes from `oldWord` to `newWord`: HC' = ~(~HC + ~m + m').
 */
export function checksumUpdate16(checksum: number, oldWord: number, newWord: number): number {
  const sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~foldSum(sum) & 0xffff;
}

/** RFC 1624 update for a 32-bit field (e.g. an IPv4 address rewritten by NAT). */
export function checksumUpdate32(checksum: number, oldValue: number, newValue: number): number {
  const sum = (~checksum & 0xffff) +
    (~(oldValue >>> 16) & 0xffff) + (~oldValue & 0xffff) +
    ((newValue >>> 16) & 0xffff) + (newValue & 0xffff);
  return ~foldSum(sum) & 0xffff;
}

/**
 * RFC 1624 update for a changed byte range of even offset and length: pass
 * the old bytes and the new bytes (e.g. a 16-byte IPv6 address).
 */
export function checksumUpdateBytes(
  checksum: number,
  oldBytes: Uint8Array,
  oldOff: number,
  newBytes: Uint8Array,
  newOff: number,
  len: number,
): number {
  let sum = ~checksum & 0xffff;
  for (let i = 0; i + 1 < len; i += 2) {
    sum += (~((oldBytes[oldOff + i] << 8) | oldBytes[oldOff + i + 1]) & 0xffff) +
      ((newBytes[newOff + i] << 8) | newBytes[newOff + i + 1]);
  }
  return ~foldSum(sum) & 0xffff;
}
