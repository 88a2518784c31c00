/**
 * Segmentation of super-packets (what a NIC does for TSO/USO, done here
 * because the TUN device hands them to us): a TCP or UDP packet of up to
 * 64 KiB with a virtio_net_hdr saying "cut me into gso_size pieces" becomes
 * MTU-sized packets, each with its own IP length, IPv4 id and header
 * checksum, TCP sequence number and flags (FIN/PSH only on the last, CWR only
 * on the first) or UDP length, and a complete transport checksum.
 *
 * Also completes the partial checksum of a single packet the kernel left as
 * CHECKSUM_PARTIAL (NEEDS_CSUM): the field holds the pseudo-header sum and we
 * add the data.
 *
 * Pure and allocation-free: the caller owns the structs and the slots; bytes
 * move with copyBytes (a copyWithin inside one arena).
 */
import { copyBytes } from "./arena.ts";
import { foldSum, internetChecksum, sumWords } from "./checksum.ts";
import {
  VNET_GSO_ECN,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  type VnetHeader,
} from "./vnet.ts";

/** TCP flag bits (byte 13 of the header). */
const FIN = 0x01, PSH = 0x08, CWR = 0x80;

/** Why a frame from the TUN device could not be segmented. */
export type GsoError =
  | "bad_gso_type"
  | "bad_ip_header"
  | "bad_transport_header"
  | "bad_gso_size"
  | "segment_too_large";

/** A validated super-packet, ready to cut (a reusable struct: fill it with parseSuperPacket). */
export interface SuperPacket {
  version: number;
  /** 6 (TCP) or 17 (UDP). */
  protocol: number;
  /** Bytes of IP header (and IPv6 extension headers) before the transport header. */
  ipHeaderLength: number;
  /** IP plus transport header: what every segment repeats. */
  headerLength: number;
  gsoSize: number;
  payloadLength: number;
  segments: number;
  /** TCP with ECN: CWR stays on the first segment only. */
  ecn: boolean;
  firstSeq: number;
  firstId: number;
  /** Pseudo-header sum of addresses and protocol (the length is added per segment). */
  addressSum: number;
}

/** Makes an empty SuperPacket to parse into. */
export function newSuperPacket(): SuperPacket {
  return {
    version: 0,
    protocol: 0,
    ipHeaderLength: 0,
    headerLength: 0,
    gsoSize: 0,
    payloadLength: 0,
    segments: 0,
    ecn: false,
    firstSeq: 0,
    firstId: 0,
    addressSum: 0,
  };
}

/**
 * Checks the super-packet at `buf[off .. off+len]` against its header `h`
 * and fills `out`; `maxSegment` is the largest packet a slot holds. The
 * header's hdr_len is not trusted (on the forwarding path the kernel sets it
 * to a whole first packet): the IP and transport headers are measured here.
 */
export function parseSuperPacket(
  buf: Uint8Array,
  off: number,
  len: number,
  h: VnetHeader,
  maxSegment: number,
  out: SuperPacket,
): GsoError | null {
  const type = h.gsoType & ~VNET_GSO_ECN;
  if (len < 20) return "bad_ip_header";
  const version = buf[off] >> 4;
  let protocol: number;
  if (type === VNET_GSO_TCPV4 && version === 4) protocol = 6;
  else if (type === VNET_GSO_TCPV6 && version === 6) protocol = 6;
  else if (type === VNET_GSO_UDP_L4 && (version === 4 || version === 6)) protocol = 17;
  else return "bad_gso_type";
  if (protocol === 17 && (h.gsoType & VNET_GSO_ECN) !== 0) return "bad_gso_type";
  // The transport header's offset comes from the packet, not from csum_start:
  // every segment's checksum is computed from scratch, so a header that is not
  // CHECKSUM_PARTIAL (csum_start 0) is cut just the same.
  let ipHl: number;
  if (version === 4) {
    ipHl = (buf[off] & 0x0f) * 4;
    if (ipHl < 20 || ipHl > len || buf[off + 9] !== protocol) return "bad_ip_header";
    // A fragment (MF or an offset) cannot be a super-packet.
    if ((buf[off + 6] & 0x3f) !== 0 || buf[off + 7] !== 0) return "bad_ip_header";
  } else {
    if (len < 40) return "bad_ip_header";
    // With extension headers only the kernel's csum_start says where TCP/UDP begins.
    ipHl = h.csumStart > 40 ? h.csumStart : 40;
    if ((ipHl === 40 && buf[off + 6] !== protocol) || ipHl > len) return "bad_ip_header";
  }
  let l4Hl = 8;
  if (protocol === 6) {
    if (ipHl + 20 > len) return "bad_transport_header";
    l4Hl = (buf[off + ipHl + 12] >> 4) * 4;
    if (l4Hl < 20) return "bad_transport_header";
  }
  const hl = ipHl + l4Hl;
  if (hl >= len) return "bad_transport_header";
  if (h.gsoSize < 1) return "bad_gso_size";
  if (hl + h.gsoSize > maxSegment) return "segment_too_large";
  out.version = version;
  out.protocol = protocol;
  out.ipHeaderLength = ipHl;
  out.headerLength = hl;
  out.gsoSize = h.gsoSize;
  out.payloadLength = len - hl;
  out.segments = Math.ceil((len - hl) / h.gsoSize);
  out.ecn = (h.gsoType & VNET_GSO_ECN) !== 0;
  const t = off + ipHl;
  out.firstSeq = protocol === 6
    ? ((buf[t + 4] << 24) | (buf[t + 5] << 16) | (buf[t + 6] << 8) | buf[t + 7]) >>> 0
    : 0;
  out.firstId = version === 4 ? (buf[off + 4] << 8) | buf[off + 5] : 0;
  out.addressSum = version === 4
    ? sumWords(buf, off + 12, 8, protocol)
    : sumWords(buf, off + 8, 32, protocol);
  return null;
}

/**
 * Cuts segments `first .. first+count-1` of the super-packet `sp` at
 * `src[srcOff ..]` into `bufs[at ..]` at `dstOffset`, and stores each
 * segment's length in `sizes`. Every segment leaves with complete IP and
 * transport checksums.
 */
export function cutSegments(
  src: Uint8Array,
  srcOff: number,
  sp: SuperPacket,
  first: number,
  count: number,
  bufs: Uint8Array[],
  sizes: Int32Array,
  at: number,
  dstOffset: number,
): void {
  const hl = sp.headerLength;
  const ipHl = sp.ipHeaderLength;
  const last = sp.segments - 1;
  const tcp = sp.protocol === 6;
  for (let k = 0; k < count; k++) {
    const j = first + k;
    const dst = bufs[at + k];
    const d = dstOffset;
    const start = j * sp.gsoSize;
    const segLen = Math.min(sp.gsoSize, sp.payloadLength - start);
    const total = hl + segLen;
    copyBytes(dst, d, src, srcOff, hl);
    copyBytes(dst, d + hl, src, srcOff + hl + start, segLen);
    if (sp.version === 4) {
      dst[d + 2] = total >> 8;
      dst[d + 3] = total & 0xff;
      const id = (sp.firstId + j) & 0xffff;
      dst[d + 4] = id >> 8;
      dst[d + 5] = id & 0xff;
      dst[d + 10] = dst[d + 11] = 0;
      const c = internetChecksum(dst, d, ipHl);
      dst[d + 10] = c >> 8;
      dst[d + 11] = c & 0xff;
    } else {
      const pl = total - 40;
      dst[d + 4] = pl >> 8;
      dst[d + 5] = pl & 0xff;
    }
    const t = d + ipHl;
    const l4Len = total - ipHl;
    let field: number;
    if (tcp) {
      const seq = (sp.firstSeq + start) >>> 0;
      dst[t + 4] = seq >>> 24;
      dst[t + 5] = (seq >>> 16) & 0xff;
      dst[t + 6] = (seq >>> 8) & 0xff;
      dst[t + 7] = seq & 0xff;
      let flags = dst[t + 13];
      if (j !== last) flags &= ~(FIN | PSH);
      if (sp.ecn && j !== 0) flags &= ~CWR;
      dst[t + 13] = flags;
      field = t + 16;
    } else {
      dst[t + 4] = l4Len >> 8;
      dst[t + 5] = l4Len & 0xff;
      field = t + 6;
    }
    dst[field] = dst[field + 1] = 0;
    let c = ~foldSum(sumWords(dst, t, l4Len, sp.addressSum + l4Len)) & 0xffff;
    if (!tcp && c === 0) c = 0xffff; // UDP: 0 would mean "no checksum" (RFC 768)
    dst[field] = c >> 8;
    dst[field + 1] = c & 0xff;
    sizes[at + k] = total;
  }
}

/**
 * Completes a CHECKSUM_PARTIAL packet in place: the 16-bit field at
 * csumStart+csumOffset holds the pseudo-header sum; the checksum over
 * `csumStart ..` replaces it. Returns false when the offsets lie outside
 * the packet.
 */
export function completeChecksum(
  buf: Uint8Array,
  off: number,
  len: number,
  csumStart: number,
  csumOffset: number,
): boolean {
  const at = csumStart + csumOffset;
  if (csumStart >= len || at + 2 > len) return false;
  let c = ~foldSum(sumWords(buf, off + csumStart, len - csumStart)) & 0xffff;
  if (c === 0 && csumOffset === 6) c = 0xffff; // UDP's checksum field sits at offset 6
  buf[off + at] = c >> 8;
  buf[off + at + 1] = c & 0xff;
  return true;
}
