/**
 * TCP, UDP, ICMP and ICMPv6 header parsing on top of a parsed IpHeader, the
 * transport checksum (pseudo-header included) and the five-tuple used by the
 * data plane for flow lookups. Like ip.ts: reusable structs, reason strings,
 * no allocation.
 */
import { foldSum, pseudoHeaderSumV4, pseudoHeaderSumV6, sumWords } from "./checksum.ts";
import { IpHeader, IPPROTO, type MalformedReason, parseIp } from "./ip.ts";

/** TCP flag bits as they appear in byte 13 of the header. */
export const TCP_FLAGS = Object.freeze(
  {
    FIN: 0x01,
    SYN: 0x02,
    RST: 0x04,
    PSH: 0x08,
    ACK: 0x10,
    URG: 0x20,
    ECE: 0x40,
    CWR: 0x80,
  } as const,
);

/** ICMP (v4) message types used by Portcullis. */
export const ICMP_TYPE = Object.freeze(
  {
    ECHO_REPLY: 0,
    DEST_UNREACHABLE: 3,
    ECHO_REQUEST: 8,
    TIME_EXCEEDED: 11,
  } as const,
);

/** ICMPv6 message types used by Portcullis. */
export const ICMPV6_TYPE = Object.freeze(
  {
    DEST_UNREACHABLE: 1,
    PACKET_TOO_BIG: 2,
    TIME_EXCEEDED: 3,
    ECHO_REQUEST: 128,
    ECHO_REPLY: 129,
  } as const,
);

/** Parsed transport header fields; one instance is reused for every packet. */
export class TransportHeader {
  /** IPPROTO value of the header parsed (TCP, UDP, ICMP, ICMPV6), or 0 when none. */
  protocol = 0;
  /** Offset of the transport header in the buffer. */
  offset = 0;
  /** Transport header length in bytes (TCP data offset, 8 for UDP/ICMP). */
  headerLength = 0;
  /** Offset of the transport payload. */
  payloadOffset = 0;
  /** Bytes of transport payload. */
  payloadLength = 0;
  /** TCP/UDP source port (0 for ICMP). */
  srcPort = 0;
  /** TCP/UDP destination port (0 for ICMP). */
  dstPort = 0;
  /** Checksum field as found in the packet. */
  checksum = 0;
  /** TCP flag byte (see TCP_FLAGS). */
  tcpFlags = 0;
  /** TCP sequence number (unsigned 32-bit). */
  seq = 0;
  /** TCP acknowledgement number (unsigned 32-bit). */
  ack = 0;
  /** TCP window. */
  window = 0;
  /** UDP length field. */
  udpLength = 0;
  /** ICMP/ICMPv6 type. */
  icmpType = 0;
  /** ICMP/ICMPv6 code. */
  icmpCode = 0;
  /** ICMP echo identifier (bytes 4-5; meaningful for echo messages). */
  icmpId = 0;
  /** ICMP echo sequence number (bytes 6-7; meaningful for echo messages). */
  icmpSeq = 0;

  /** True when every bit of `flags` is set in the TCP flag byte. */
  hasFlags(flags: number): boolean {
    return (this.tcpFlags & flags) === flags;
  }
}

/**
 * Parses the TCP/UDP/ICMP/ICMPv6 header that follows `ip`. Returns null when
 * well-formed (or when the protocol is one we do not parse, with
 * `out.protocol` = 0), else the reason. Non-first fragments carry no
 * transport header and leave `out.protocol` = 0.
 */
export function parseTransport(ip: IpHeader, out: TransportHeader): MalformedReason | null {
  out.protocol = 0;
  out.srcPort = 0;
  out.dstPort = 0;
  out.tcpFlags = 0;
  out.icmpType = 0;
  out.icmpCode = 0;
  out.icmpId = 0;
  out.icmpSeq = 0;
  if (ip.fragmentOffset !== 0) return null;
  const b = ip.buf;
  const o = ip.payloadOffset;
  const len = ip.payloadLength;
  out.offset = o;
  switch (ip.protocol) {
    case IPPROTO.TCP: {
      if (len < 20) return "bad_transport_header";
      const doff = (b[o + 12] >> 4) * 4;
      if (doff < 20 || doff > len) return "bad_tcp_data_offset";
      out.srcPort = (b[o] << 8) | b[o + 1];
      out.dstPort = (b[o + 2] << 8) | b[o + 3];
      out.seq = ((b[o + 4] << 24) | (b[o + 5] << 16) | (b[o + 6] << 8) | b[o + 7]) >>> 0;
      out.ack = ((b[o + 8] << 24) | (b[o + 9] << 16) | (b[o + 10] << 8) | b[o + 11]) >>> 0;
      out.tcpFlags = b[o + 13];
      out.window = (b[o + 14] << 8) | b[o + 15];
      out.checksum = (b[o + 16] << 8) | b[o + 17];
      out.headerLength = doff;
      break;
    }
    case IPPROTO.UDP: {
      if (len < 8) return "bad_transport_header";
      const ulen = (b[o + 4] << 8) | b[o + 5];
      // A first fragment carries only part of the datagram, so only check the length when whole.
      if (!ip.moreFragments && (ulen < 8 || ulen > len)) return "bad_udp_length";
      out.srcPort = (b[o] << 8) | b[o + 1];
      out.dstPort = (b[o + 2] << 8) | b[o + 3];
      out.udpLength = ulen;
      out.checksum = (b[o + 6] << 8) | b[o + 7];
      out.headerLength = 8;
      break;
    }
    case IPPROTO.ICMP:
    case IPPROTO.ICMPV6: {
      if (len < 8) return "bad_transport_header";
      out.icmpType = b[o];
      out.icmpCode = b[o + 1];
      out.checksum = (b[o + 2] << 8) | b[o + 3];
      out.icmpId = (b[o + 4] << 8) | b[o + 5];
      out.icmpSeq = (b[o + 6] << 8) | b[o + 7];
      out.headerLength = 8;
      break;
    }
    default:
      return null;
  }
  out.protocol = ip.protocol;
  out.payloadOffset = o + out.headerLength;
  out.payloadLength = (ip.protocol === IPPROTO.UDP && !ip.moreFragments ? out.udpLength : len) -
    out.headerLength;
  return null;
}

/**
 * Unfolded pseudo-header sum for the upper-layer data of `ip` (TCP, UDP,
 * ICMPv6); 0 for ICMPv4, which has no pseudo-header.
 */
export function pseudoHeaderSum(
  ip: IpHeader,
  protocol: number = ip.protocol,
  length: number = ip.payloadLength,
): number {
  if (protocol === IPPROTO.ICMP) return 0;
  return ip.version === 4
    ? pseudoHeaderSumV4(ip.buf, ip.srcOffset, ip.dstOffset, protocol, length)
    : pseudoHeaderSumV6(ip.buf, ip.srcOffset, ip.dstOffset, protocol, length);
}

/**
 * Computes the checksum the transport header of `ip` should carry (with the
 * checksum field itself treated as zero). UDP's "0 means no checksum" is
 * mapped to 0xffff as RFC 768 requires.
 */
export function computeTransportChecksum(ip: IpHeader): number {
  const proto = ip.protocol;
  const len = proto === IPPROTO.UDP
    ? Math.min((ip.buf[ip.payloadOffset + 4] << 8) | ip.buf[ip.payloadOffset + 5], ip.payloadLength)
    : ip.payloadLength;
  const field = checksumFieldOffset(proto);
  if (field < 0) return 0;
  const at = ip.payloadOffset + field;
  const stored = (ip.buf[at] << 8) | ip.buf[at + 1];
  // One's complement subtraction of the stored field is adding its complement.
  const sum = sumWords(ip.buf, ip.payloadOffset, len, pseudoHeaderSum(ip, proto, len)) +
    (~stored & 0xffff);
  const c = ~foldSum(sum) & 0xffff;
  return proto === IPPROTO.UDP && c === 0 ? 0xffff : c;
}

/** Writes the correct transport checksum into the packet; returns it. */
export function fillTransportChecksum(ip: IpHeader): number {
  const field = checksumFieldOffset(ip.protocol);
  if (field < 0) return 0;
  const at = ip.payloadOffset + field;
  ip.buf[at] = 0;
  ip.buf[at + 1] = 0;
  const c = computeTransportChecksum(ip);
  ip.buf[at] = c >> 8;
  ip.buf[at + 1] = c & 0xff;
  return c;
}

/**
 * True when the transport checksum of the parsed packet verifies (UDP over
 * IPv4 with checksum 0 counts as valid: the sender opted out).
 */
export function transportChecksumOk(ip: IpHeader): boolean {
  const field = checksumFieldOffset(ip.protocol);
  if (field < 0 || ip.isFragment) return false;
  const at = ip.payloadOffset + field;
  if (at + 2 > ip.payloadOffset + ip.payloadLength) return false;
  const stored = (ip.buf[at] << 8) | ip.buf[at + 1];
  if (ip.protocol === IPPROTO.UDP && ip.version === 4 && stored === 0) return true;
  return stored === computeTransportChecksum(ip);
}

function checksumFieldOffset(proto: number): number {
  switch (proto) {
    case IPPROTO.TCP:
      return 16;
    case IPPROTO.UDP:
      return 6;
    case IPPROTO.ICMP:
    case IPPROTO.ICMPV6:
      return 2;
    default:
      return -1;
  }
}

/**
 * A flow key filled in place. IPv6 addresses are held as four big-endian
 * 32-bit words so keys compare without allocating. For ICMP/ICMPv6 echo the
 * identifier stands in for both ports (as conntrack does); other ICMP
 * messages and unknown protocols have ports 0.
 */
export class FiveTuple {
  /** 4 or 6; 0 when the last fill failed. */
  family: 0 | 4 | 6 = 0;
  /** IPPROTO of the upper layer. */
  protocol = 0;
  /** Source port (or ICMP echo id). */
  srcPort = 0;
  /** Destination port (or ICMP echo id). */
  dstPort = 0;
  /** Source address words; IPv4 uses word 0 only. */
  readonly src = new Uint32Array(4);
  /** Destination address words; IPv4 uses word 0 only. */
  readonly dst = new Uint32Array(4);

  /** True when both tuples name the same flow in the same direction. */
  equals(o: FiveTuple): boolean {
    return this.family === o.family && this.protocol === o.protocol &&
      this.srcPort === o.srcPort && this.dstPort === o.dstPort &&
      this.src[0] === o.src[0] && this.src[1] === o.src[1] && this.src[2] === o.src[2] &&
      this.src[3] === o.src[3] && this.dst[0] === o.dst[0] && this.dst[1] === o.dst[1] &&
      this.dst[2] === o.dst[2] && this.dst[3] === o.dst[3];
  }
  /** A 32-bit FNV-1a style hash of the tuple, for bucket selection. */
  hash(): number {
    let h = 0x811c9dc5;
    h = Math.imul(h ^ this.family, 0x01000193);
    h = Math.imul(h ^ this.protocol, 0x01000193);
    h = Math.imul(h ^ ((this.srcPort << 16) | this.dstPort), 0x01000193);
    for (let i = 0; i < 4; i++) {
      h = Math.imul(h ^ this.src[i], 0x01000193);
      h = Math.imul(h ^ this.dst[i], 0x01000193);
    }
    return h >>> 0;
  }
  /** Readable form "udp 10.0.0.1:5353 -> 10.0.0.2:53" (allocates). */
  toString(): string {
    const proto = this.protocol === IPPROTO.TCP
      ? "tcp"
      : this.protocol === IPPROTO.UDP
      ? "udp"
      : this.protocol === IPPROTO.ICMP
      ? "icmp"
      : this.protocol === IPPROTO.ICMPV6
      ? "icmpv6"
      : `proto${this.protocol}`;
    const addr = (w: Uint32Array) => {
      if (this.family === 4) {
        return `${w[0] >>> 24}.${(w[0] >>> 16) & 0xff}.${(w[0] >>> 8) & 0xff}.${w[0] & 0xff}`;
      }
      const g: string[] = [];
      for (let i = 0; i < 4; i++) g.push((w[i] >>> 16).toString(16), (w[i] & 0xffff).toString(16));
      return `[${g.join(":")}]`;
    };
    return `${proto} ${addr(this.src)}:${this.srcPort} -> ${addr(this.dst)}:${this.dstPort}`;
  }
}

const scratchIp = new IpHeader();
const scratchTp = new TransportHeader();

function readWord(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/**
 * Fills `out` with the five-tuple of the packet `buf[off .. off+len]`.
 * Returns null on success, else the reason (and `out.family` = 0).
 */
export function fiveTuple(
  buf: Uint8Array,
  off: number,
  len: number,
  out: FiveTuple,
): MalformedReason | null {
  out.family = 0;
  let r = parseIp(buf, off, len, scratchIp);
  if (r !== null) return r;
  r = parseTransport(scratchIp, scratchTp);
  if (r !== null) return r;
  const ip = scratchIp;
  if (ip.version === 4) {
    out.src[0] = ip.src4;
    out.dst[0] = ip.dst4;
    out.src[1] = out.src[2] = out.src[3] = 0;
    out.dst[1] = out.dst[2] = out.dst[3] = 0;
  } else {
    for (let i = 0; i < 4; i++) {
      out.src[i] = readWord(buf, ip.srcOffset + 4 * i);
      out.dst[i] = readWord(buf, ip.dstOffset + 4 * i);
    }
  }
  out.protocol = ip.protocol;
  const tp = scratchTp;
  if (tp.protocol === IPPROTO.TCP || tp.protocol === IPPROTO.UDP) {
    out.srcPort = tp.srcPort;
    out.dstPort = tp.dstPort;
  } else if (
    (tp.protocol === IPPROTO.ICMP &&
      (tp.icmpType === ICMP_TYPE.ECHO_REQUEST || tp.icmpType === ICMP_TYPE.ECHO_REPLY)) ||
    (tp.protocol === IPPROTO.ICMPV6 &&
      (tp.icmpType === ICMPV6_TYPE.ECHO_REQUEST || tp.icmpType === ICMPV6_TYPE.ECHO_REPLY))
  ) {
    out.srcPort = out.dstPort = tp.icmpId;
  } else {
    out.srcPort = out.dstPort = 0;
  }
  out.family = ip.version;
  return null;
}

/**
 * Validates the IP and transport headers of a packet; returns null when both
 * parse, else the reason. For callers that only want a yes/no plus why.
 */
export function validatePacket(
  buf: Uint8Array,
  off = 0,
  len = buf.length - off,
): MalformedReason | null {
  const r = parseIp(buf, off, len, scratchIp);
  if (r !== null) return r;
  return parseTransport(scratchIp, scratchTp);
}
