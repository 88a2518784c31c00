/**
 * The Internet checksum (RFC 1071), its incremental update (RFC 1624) and the
 * TCP/UDP/ICMPv6 pseudo-header sums for IPv4 and IPv6.
 *
 * Sums are carried unfolded as plain numbers: a packet of at most 64 KiB adds
 * at most 32768 words of 0xffff, far below 2^53, so the fold happens once at
 * the end. Nothing here allocates.
 */

/**
 * Adds the 16-bit big-endian words of `buf[off .. off+len]` to `sum` and
 * returns the unfolded sum (an odd trailing byte is padded with zero).
 */
export function sumWords(buf: Uint8Array, off: number, len: number, sum = 0): number {
  const end = off + len;
  let i = off;
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  return sum;
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
