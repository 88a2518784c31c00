/**
 * Builders for well-formed packets: IPv4/IPv6 carrying ICMP echo, UDP or
 * TCP, with every checksum filled. Used by tests, the lab and diagnostics
 * (e.g. a synthetic ping through the tunnel); they allocate and are not for
 * the hot path.
 */
import { parseIpText } from "./addr.ts";
import { internetChecksum } from "./checksum.ts";
import { IpHeader, IPPROTO, parseIp } from "./ip.ts";
import { fillTransportChecksum, ICMP_TYPE, ICMPV6_TYPE, TCP_FLAGS } from "./transport.ts";

/** Fields common to every built packet. */
export interface IpBuildOptions {
  /** Source address text (IPv4 or IPv6; both ends must be the same family). */
  src: string;
  /** Destination address text. */
  dst: string;
  /** TTL / hop limit; default 64. */
  ttl?: number;
  /** IPv4 identification; default 0. */
  id?: number;
  /** IPv4 don't-fragment flag; default true. */
  dontFragment?: boolean;
  /** DSCP/ECN byte; default 0. */
  trafficClass?: number;
  /** IPv6 flow label; default 0. */
  flowLabel?: number;
}

function addresses(o: IpBuildOptions): [Uint8Array, Uint8Array] {
  const s = parseIpText(o.src);
  const d = parseIpText(o.dst);
  if (!s) throw new Error(`Cannot build packet: source "${o.src}" is not an IP address`);
  if (!d) throw new Error(`Cannot build packet: destination "${o.dst}" is not an IP address`);
  if (s.length !== d.length) {
    throw new Error(`Cannot build packet: "${o.src}" and "${o.dst}" are of different families`);
  }
  return [s, d];
}

/**
 * Builds an IP packet around `payload` (the upper-layer bytes, copied) with
 * protocol/next header `protocol`; fills the IPv4 header checksum but not the
 * transport checksum (see the typed builders).
 */
export function buildIp(o: IpBuildOptions, protocol: number, payload: Uint8Array): Uint8Array {
  const [s, d] = addresses(o);
  const ttl = o.ttl ?? 64;
  if (s.length === 4) {
    const total = 20 + payload.length;
    if (total > 0xffff) throw new Error(`Cannot build IPv4 packet: ${total} bytes exceed 65535`);
    const p = new Uint8Array(total);
    p[0] = 0x45;
    p[1] = o.trafficClass ?? 0;
    p[2] = total >> 8;
    p[3] = total & 0xff;
    p[4] = ((o.id ?? 0) >> 8) & 0xff;
    p[5] = (o.id ?? 0) & 0xff;
    p[6] = (o.dontFragment ?? true) ? 0x40 : 0;
    p[8] = ttl;
    p[9] = protocol;
    p.set(s, 12);
    p.set(d, 16);
    const c = internetChecksum(p, 0, 20);
    p[10] = c >> 8;
    p[11] = c & 0xff;
    p.set(payload, 20);
    return p;
  }
  if (payload.length > 0xffff) {
    throw new Error(`Cannot build IPv6 packet: payload of ${payload.length} bytes exceeds 65535`);
  }
  const p = new Uint8Array(40 + payload.length);
  const tc = o.trafficClass ?? 0;
  const fl = o.flowLabel ?? 0;
  p[0] = 0x60 | (tc >> 4);
  p[1] = ((tc & 0x0f) << 4) | ((fl >> 16) & 0x0f);
  p[2] = (fl >> 8) & 0xff;
  p[3] = fl & 0xff;
  p[4] = payload.length >> 8;
  p[5] = payload.length & 0xff;
  p[6] = protocol;
  p[7] = ttl;
  p.set(s, 8);
  p.set(d, 24);
  p.set(payload, 40);
  return p;
}

function finish(p: Uint8Array): Uint8Array {
  const h = new IpHeader();
  const r = parseIp(p, 0, p.length, h);
  if (r !== null) throw new Error(`Cannot build packet: result is malformed (${r})`);
  fillTransportChecksum(h);
  return p;
}

/** Options for an ICMP/ICMPv6 echo message. */
export interface EchoBuildOptions extends IpBuildOptions {
  /** "request" (ping) or "reply" (pong); default "request". */
  kind?: "request" | "reply";
  /** Echo identifier; default 1. */
  ident?: number;
  /** Echo sequence number; default 1. */
  seq?: number;
  /** Echo data; default 32 bytes of 0..31. */
  data?: Uint8Array;
}

/** Builds an ICMP (IPv4) or ICMPv6 (IPv6) echo request or reply with checksums filled. */
export function buildIcmpEcho(o: EchoBuildOptions): Uint8Array {
  const data = o.data ?? Uint8Array.from({ length: 32 }, (_, i) => i);
  const v6 = o.src.includes(":");
  const reply = o.kind === "reply";
  const icmp = new Uint8Array(8 + data.length);
  icmp[0] = v6
    ? (reply ? ICMPV6_TYPE.ECHO_REPLY : ICMPV6_TYPE.ECHO_REQUEST)
    : (reply ? ICMP_TYPE.ECHO_REPLY : ICMP_TYPE.ECHO_REQUEST);
  const ident = o.ident ?? 1, seq = o.seq ?? 1;
  icmp[4] = (ident >> 8) & 0xff;
  icmp[5] = ident & 0xff;
  icmp[6] = (seq >> 8) & 0xff;
  icmp[7] = seq & 0xff;
  icmp.set(data, 8);
  return finish(buildIp(o, v6 ? IPPROTO.ICMPV6 : IPPROTO.ICMP, icmp));
}

/** Options for a UDP datagram. */
export interface UdpBuildOptions extends IpBuildOptions {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Datagram payload; default empty. */
  data?: Uint8Array;
}

/** Builds a UDP datagram over IPv4/IPv6 with checksums filled. */
export function buildUdp(o: UdpBuildOptions): Uint8Array {
  const data = o.data ?? new Uint8Array(0);
  const u = new Uint8Array(8 + data.length);
  u[0] = o.srcPort >> 8;
  u[1] = o.srcPort & 0xff;
  u[2] = o.dstPort >> 8;
  u[3] = o.dstPort & 0xff;
  u[4] = u.length >> 8;
  u[5] = u.length & 0xff;
  u.set(data, 8);
  return finish(buildIp(o, IPPROTO.UDP, u));
}

/** Options for a TCP segment. */
export interface TcpBuildOptions extends IpBuildOptions {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Flag byte (TCP_FLAGS bits); default SYN. */
  flags?: number;
  /** Sequence number; default 1. */
  seq?: number;
  /** Acknowledgement number; default 0. */
  ack?: number;
  /** Window; default 65535. */
  window?: number;
  /** TCP options (padded to 4 bytes); default MSS 1360 on SYN, none otherwise. */
  options?: Uint8Array;
  /** Segment payload; default empty. */
  data?: Uint8Array;
}

/** Builds a TCP segment (a SYN unless `flags` says otherwise) with checksums filled. */
export function buildTcp(o: TcpBuildOptions): Uint8Array {
  const flags = o.flags ?? TCP_FLAGS.SYN;
  const opts = o.options ??
    ((flags & TCP_FLAGS.SYN) ? Uint8Array.of(2, 4, 1360 >> 8, 1360 & 0xff) : new Uint8Array(0));
  const optLen = (opts.length + 3) & ~3;
  if (optLen > 40) {
    throw new Error(`Cannot build TCP segment: ${opts.length} option bytes exceed 40`);
  }
  const data = o.data ?? new Uint8Array(0);
  const hl = 20 + optLen;
  const t = new Uint8Array(hl + data.length);
  const seq = o.seq ?? 1, ack = o.ack ?? 0, win = o.window ?? 65535;
  t[0] = o.srcPort >> 8;
  t[1] = o.srcPort & 0xff;
  t[2] = o.dstPort >> 8;
  t[3] = o.dstPort & 0xff;
  new DataView(t.buffer).setUint32(4, seq >>> 0);
  new DataView(t.buffer).setUint32(8, ack >>> 0);
  t[12] = (hl / 4) << 4;
  t[13] = flags;
  t[14] = win >> 8;
  t[15] = win & 0xff;
  t.set(opts, 20);
  t.set(data, hl);
  return finish(buildIp(o, IPPROTO.TCP, t));
}
