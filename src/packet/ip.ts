/**
 * IPv4 and IPv6 header parsing into a caller-owned, reusable struct.
 *
 * The data plane calls `parseIp` once per packet on a Uint8Array view of a
 * slot in its big buffer, so nothing here allocates: the struct keeps a
 * reference to the buffer and offsets into it, IPv4 addresses are unsigned
 * 32-bit numbers, and text is produced only when asked for (logs, UI).
 * Malformed packets are reported with a reason string constant instead of an
 * exception, because throwing per bad packet is expensive and hostile input
 * is routine on a tunnel endpoint.
 */
import { formatIpv4Number, formatIpv6Bytes, ipv4ToNumber } from "./addr.ts";
import { foldSum, sumWords } from "./checksum.ts";

/** IP protocol numbers used by Portcullis. */
export const IPPROTO = Object.freeze(
  {
    HOPOPTS: 0,
    ICMP: 1,
    TCP: 6,
    UDP: 17,
    IPV6_ROUTING: 43,
    IPV6_FRAGMENT: 44,
    ESP: 50,
    AH: 51,
    ICMPV6: 58,
    IPV6_NONXT: 59,
    IPV6_DSTOPTS: 60,
  } as const,
);

/** Why a packet was judged malformed; `null` from a parser means it was fine. */
export type MalformedReason =
  | "empty"
  | "truncated"
  | "bad_version"
  | "bad_ihl"
  | "total_length_too_small"
  | "total_length_exceeds_buffer"
  | "bad_extension_header"
  | "too_many_extension_headers"
  | "bad_transport_header"
  | "bad_tcp_data_offset"
  | "bad_udp_length";

/** Sentence-case explanations of each MalformedReason, for logs and diagnostics. */
export const MALFORMED_TEXT: Readonly<Record<MalformedReason, string>> = Object.freeze({
  empty: "packet is empty",
  truncated: "packet is shorter than its header",
  bad_version: "IP version is neither 4 nor 6",
  bad_ihl: "IPv4 header length (IHL) is below 5 words or beyond the packet",
  total_length_too_small: "IP total length is smaller than the header",
  total_length_exceeds_buffer: "IP total length is larger than the bytes received",
  bad_extension_header: "IPv6 extension header runs past the payload",
  too_many_extension_headers: "IPv6 packet chains more extension headers than allowed",
  bad_transport_header: "transport header is truncated",
  bad_tcp_data_offset: "TCP data offset is below 5 words or beyond the segment",
  bad_udp_length: "UDP length disagrees with the IP payload",
});

/** At most this many IPv6 extension headers are walked before giving up. */
export const MAX_IPV6_EXTENSION_HEADERS = 8;

/** Parsed IP header fields; one instance is reused for every packet. */
export class IpHeader {
  /** The buffer the offsets below point into (not copied). */
  buf: Uint8Array = new Uint8Array(0);
  /** Offset of the IP header in `buf`. */
  offset = 0;
  /** 4 or 6; 0 before a successful parse. */
  version: 0 | 4 | 6 = 0;
  /** Bytes from the start of the IP header to the upper-layer header (IPv6: includes extension headers). */
  headerLength = 0;
  /** Bytes of the whole IP packet per its header (may be less than the buffer slice). */
  totalLength = 0;
  /** Upper-layer protocol: IPv4 protocol field, or IPv6 next header after extension headers. */
  protocol = 0;
  /** IPv4 TTL or IPv6 hop limit. */
  ttl = 0;
  /** Offset in `buf` of the source address (4 or 16 bytes). */
  srcOffset = 0;
  /** Offset in `buf` of the destination address. */
  dstOffset = 0;
  /** Address length in bytes: 4 or 16. */
  addrLength = 0;
  /** IPv4 source as an unsigned 32-bit number (0 for IPv6). */
  src4 = 0;
  /** IPv4 destination as an unsigned 32-bit number (0 for IPv6). */
  dst4 = 0;
  /** IPv4 identification, or the IPv6 fragment header's identification when present. */
  identification = 0;
  /** Fragment offset in bytes (0 for unfragmented packets). */
  fragmentOffset = 0;
  /** More-fragments flag. */
  moreFragments = false;
  /** IPv4 don't-fragment flag (always false for IPv6). */
  dontFragment = false;
  /** DSCP/ECN byte (IPv4 TOS or IPv6 traffic class). */
  trafficClass = 0;
  /** IPv6 flow label (0 for IPv4). */
  flowLabel = 0;
  /** Offset in `buf` of the upper-layer header. */
  payloadOffset = 0;
  /** Bytes of upper-layer data (totalLength - headerLength). */
  payloadLength = 0;

  /** True when this packet is a fragment (first or later). */
  get isFragment(): boolean {
    return this.moreFragments || this.fragmentOffset !== 0;
  }
  /** Source address as text (allocates; not for the hot path). */
  srcText(): string {
    return this.version === 4
      ? formatIpv4Number(this.src4)
      : formatIpv6Bytes(this.buf, this.srcOffset);
  }
  /** Destination address as text (allocates; not for the hot path). */
  dstText(): string {
    return this.version === 4
      ? formatIpv4Number(this.dst4)
      : formatIpv6Bytes(this.buf, this.dstOffset);
  }
  /** Copies the source address bytes into `out` at `outOff`. */
  copySrc(out: Uint8Array, outOff = 0): void {
    for (let i = 0; i < this.addrLength; i++) out[outOff + i] = this.buf[this.srcOffset + i];
  }
  /** Copies the destination address bytes into `out` at `outOff`. */
  copyDst(out: Uint8Array, outOff = 0): void {
    for (let i = 0; i < this.addrLength; i++) out[outOff + i] = this.buf[this.dstOffset + i];
  }
}

/** Returns the IP version nibble of the packet at `off` (0 when `len` is 0). */
export function ipVersion(buf: Uint8Array, off: number, len: number): number {
  return len > 0 ? buf[off] >> 4 : 0;
}

/**
 * Parses the IPv4 or IPv6 header of the packet `buf[off .. off+len]` into
 * `out`. Returns null when well-formed, else the reason. Trailing bytes beyond
 * the header's total length (link padding) are allowed and ignored.
 */
export function parseIp(
  buf: Uint8Array,
  off: number,
  len: number,
  out: IpHeader,
): MalformedReason | null {
  out.version = 0;
  if (len <= 0) return "empty";
  if (off < 0 || off + len > buf.length) return "truncated";
  const v = buf[off] >> 4;
  if (v === 4) return parseIpv4(buf, off, len, out);
  if (v === 6) return parseIpv6(buf, off, len, out);
  return "bad_version";
}

function parseIpv4(
  buf: Uint8Array,
  off: number,
  len: number,
  out: IpHeader,
): MalformedReason | null {
  if (len < 20) return "truncated";
  const ihl = (buf[off] & 0x0f) * 4;
  if (ihl < 20 || ihl > len) return "bad_ihl";
  const total = (buf[off + 2] << 8) | buf[off + 3];
  if (total < ihl) return "total_length_too_small";
  if (total > len) return "total_length_exceeds_buffer";
  const frag = (buf[off + 6] << 8) | buf[off + 7];
  out.buf = buf;
  out.offset = off;
  out.version = 4;
  out.headerLength = ihl;
  out.totalLength = total;
  out.trafficClass = buf[off + 1];
  out.flowLabel = 0;
  out.identification = (buf[off + 4] << 8) | buf[off + 5];
  out.dontFragment = (frag & 0x4000) !== 0;
  out.moreFragments = (frag & 0x2000) !== 0;
  out.fragmentOffset = (frag & 0x1fff) * 8;
  out.ttl = buf[off + 8];
  out.protocol = buf[off + 9];
  out.srcOffset = off + 12;
  out.dstOffset = off + 16;
  out.addrLength = 4;
  out.src4 = ipv4ToNumber(buf, off + 12);
  out.dst4 = ipv4ToNumber(buf, off + 16);
  out.payloadOffset = off + ihl;
  out.payloadLength = total - ihl;
  return null;
}

function parseIpv6(
  buf: Uint8Array,
  off: number,
  len: number,
  out: IpHeader,
): MalformedReason | null {
  if (len < 40) return "truncated";
  const payloadLen = (buf[off + 4] << 8) | buf[off + 5];
  const total = 40 + payloadLen;
  // Jumbograms (payload length 0 + hop-by-hop option) are not supported on a tunnel MTU.
  if (total > len) return "total_length_exceeds_buffer";
  out.buf = buf;
  out.offset = off;
  out.version = 6;
  out.totalLength = total;
  out.trafficClass = ((buf[off] & 0x0f) << 4) | (buf[off + 1] >> 4);
  out.flowLabel = ((buf[off + 1] & 0x0f) << 16) | (buf[off + 2] << 8) | buf[off + 3];
  out.ttl = buf[off + 7];
  out.srcOffset = off + 8;
  out.dstOffset = off + 24;
  out.addrLength = 16;
  out.src4 = 0;
  out.dst4 = 0;
  out.identification = 0;
  out.dontFragment = false;
  out.moreFragments = false;
  out.fragmentOffset = 0;
  let next = buf[off + 6];
  let pos = 40;
  for (let n = 0;; n++) {
    if (
      next !== IPPROTO.HOPOPTS && next !== IPPROTO.IPV6_ROUTING &&
      next !== IPPROTO.IPV6_FRAGMENT && next !== IPPROTO.IPV6_DSTOPTS && next !== IPPROTO.AH
    ) break;
    if (n >= MAX_IPV6_EXTENSION_HEADERS) {
      out.version = 0;
      return "too_many_extension_headers";
    }
    if (pos + 8 > total) {
      out.version = 0;
      return "bad_extension_header";
    }
    const h = off + pos;
    let extLen: number;
    if (next === IPPROTO.IPV6_FRAGMENT) {
      extLen = 8;
      const fo = (buf[h + 2] << 8) | buf[h + 3];
      out.fragmentOffset = fo & 0xfff8;
      out.moreFragments = (fo & 1) !== 0;
      out.identification = ((buf[h + 4] << 24) | (buf[h + 5] << 16) | (buf[h + 6] << 8) |
        buf[h + 7]) >>> 0;
    } else if (next === IPPROTO.AH) {
      extLen = (buf[h + 1] + 2) * 4;
    } else {
      extLen = (buf[h + 1] + 1) * 8;
    }
    if (pos + extLen > total) {
      out.version = 0;
      return "bad_extension_header";
    }
    next = buf[h];
    pos += extLen;
  }
  out.protocol = next;
  out.headerLength = pos;
  out.payloadOffset = off + pos;
  out.payloadLength = total - pos;
  return null;
}

/** True when the IPv4 header checksum of the parsed packet is correct. */
export function ipv4HeaderChecksumOk(h: IpHeader): boolean {
  return h.version === 4 && foldSum(sumWords(h.buf, h.offset, h.headerLength)) === 0xffff;
}

/** Describes why the packet is malformed, or returns null when it parses; allocates, for diagnostics. */
export function explainIp(buf: Uint8Array, off = 0, len = buf.length - off): string | null {
  const r = parseIp(buf, off, len, new IpHeader());
  return r === null ? null : MALFORMED_TEXT[r];
}
