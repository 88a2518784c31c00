/**
 * Rejections that make a denied application fail fast instead of hanging
 * until its own timeout: a TCP RST for TCP, and an ICMP "destination
 * unreachable, communication administratively prohibited" (type 3 code 13;
 * ICMPv6 type 1 code 1) for everything else. Built with src/packet, pure.
 *
 * Never in answer to a RST, an ICMP error, a non-first fragment, or a
 * multicast/broadcast destination (RFC 1122 §3.2.2, RFC 4443 §2.4), so two
 * edges can never ping-pong rejections.
 */
import { buildIp } from "../../packet/build.ts";
import { formatIpBytes } from "../../packet/addr.ts";
import { IpHeader, IPPROTO, parseIp } from "../../packet/ip.ts";
import {
  fillTransportChecksum,
  ICMP_TYPE,
  ICMPV6_TYPE,
  TCP_FLAGS,
  type TransportHeader,
} from "../../packet/transport.ts";

/** ICMP code 13: communication administratively prohibited. */
export const ICMP_ADMIN_PROHIBITED = 13;
/** ICMPv6 destination unreachable code 1: communication administratively prohibited. */
export const ICMPV6_ADMIN_PROHIBITED = 1;

function finish(p: Uint8Array): Uint8Array {
  const h = new IpHeader();
  if (parseIp(p, 0, p.length, h) === null) fillTransportChecksum(h);
  return p;
}

function isGroupAddress(ip: IpHeader): boolean {
  const b = ip.buf, o = ip.dstOffset;
  if (ip.version === 4) return b[o] >= 224 || ip.dst4 === 0xffffffff;
  return b[o] === 0xff;
}

/**
 * A TCP RST answering the segment `ip`/`tp` (RFC 793 "reset generation"):
 * from its destination to its source; null when none may be sent.
 */
export function buildTcpReset(ip: IpHeader, tp: TransportHeader): Uint8Array | null {
  if (tp.protocol !== IPPROTO.TCP || (tp.tcpFlags & TCP_FLAGS.RST) || ip.isFragment) return null;
  if (isGroupAddress(ip)) return null;
  const t = new Uint8Array(20);
  t[0] = tp.dstPort >> 8;
  t[1] = tp.dstPort & 0xff;
  t[2] = tp.srcPort >> 8;
  t[3] = tp.srcPort & 0xff;
  const dv = new DataView(t.buffer);
  if (tp.tcpFlags & TCP_FLAGS.ACK) {
    dv.setUint32(4, tp.ack);
    t[13] = TCP_FLAGS.RST;
  } else {
    const len = tp.payloadLength + (tp.tcpFlags & TCP_FLAGS.SYN ? 1 : 0) +
      (tp.tcpFlags & TCP_FLAGS.FIN ? 1 : 0);
    dv.setUint32(8, (tp.seq + len) >>> 0);
    t[13] = TCP_FLAGS.RST | TCP_FLAGS.ACK;
  }
  t[12] = 5 << 4;
  return finish(buildIp({ src: ip.dstText(), dst: ip.srcText(), ttl: 64 }, IPPROTO.TCP, t));
}

/**
 * An ICMP(v6) "administratively prohibited" error about the packet `ip`,
 * sent from `from` (the edge's tunnel address, 4 or 16 bytes) to its
 * source, quoting as much of it as the minimum MTU allows; null when no
 * error may be sent.
 */
export function buildAdminProhibited(
  ip: IpHeader,
  tp: TransportHeader,
  from: Uint8Array,
): Uint8Array | null {
  if (ip.isFragment && ip.fragmentOffset !== 0) return null;
  if (isGroupAddress(ip)) return null;
  const v6 = ip.version === 6;
  if (!v6 && ip.protocol === IPPROTO.ICMP && tp.icmpType !== ICMP_TYPE.ECHO_REQUEST) return null;
  if (v6 && ip.protocol === IPPROTO.ICMPV6 && tp.icmpType < 128) return null;
  if ((from.length === 16) !== v6) return null;
  const room = v6 ? 1280 - 48 : 576 - 28;
  const quoted = ip.buf.subarray(ip.offset, ip.offset + Math.min(ip.totalLength, room));
  const m = new Uint8Array(8 + quoted.length);
  m[0] = v6 ? ICMPV6_TYPE.DEST_UNREACHABLE : ICMP_TYPE.DEST_UNREACHABLE;
  m[1] = v6 ? ICMPV6_ADMIN_PROHIBITED : ICMP_ADMIN_PROHIBITED;
  m.set(quoted, 8);
  return finish(
    buildIp(
      { src: formatIpBytes(from), dst: ip.srcText(), ttl: 64 },
      v6 ? IPPROTO.ICMPV6 : IPPROTO.ICMP,
      m,
    ),
  );
}

/** A token bucket: `rate` per second, `burst` at most; injected time in ms. */
export class TokenBucket {
  #tokens: number;
  #at: number;
  constructor(private rate: number, private burst: number, now: number) {
    this.#tokens = burst;
    this.#at = now;
  }
  /** Takes one token if there is one. */
  take(now: number): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
