/**
 * Flow keys from packets (see conntrack.ts for the layout), filled in place
 * from parsed headers: the five-tuple of a packet, the key a later fragment
 * shares with its first one, and the key of the packet an ICMP error quotes.
 * Pure and allocation-free, for the data path.
 */
import { formatIpBytes } from "../../packet/addr.ts";
import { type IpHeader, IPPROTO } from "../../packet/ip.ts";
import { ICMP_TYPE, ICMPV6_TYPE, type TransportHeader } from "../../packet/transport.ts";

const word = (b: Uint8Array, o: number) =>
  ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

/** Writes the addresses of `ip` into words 0–7 of `key`. */
export function fillAddrs(ip: IpHeader, key: Uint32Array): void {
  if (ip.version === 4) {
    key[0] = ip.src4;
    key[4] = ip.dst4;
    key[1] =
      key[2] =
      key[3] =
      key[5] =
      key[6] =
      key[7] =
        0;
  } else {
    for (let i = 0; i < 4; i++) {
      key[i] = word(ip.buf, ip.srcOffset + 4 * i);
      key[4 + i] = word(ip.buf, ip.dstOffset + 4 * i);
    }
  }
}

/** The key every fragment of one datagram shares (addresses, protocol, identification). */
export function fillFragmentKey(ip: IpHeader, key: Uint32Array): void {
  fillAddrs(ip, key);
  key[8] = ip.identification >>> 0;
  key[9] = (ip.version << 8 | ip.protocol | 0x10000) >>> 0;
}

/**
 * The flow key of a packet: ports for TCP/UDP, the identifier twice for
 * ICMP echo, 0 otherwise; a non-first fragment gets its fragment key.
 */
export function fillFlowKey(ip: IpHeader, tp: TransportHeader, key: Uint32Array): void {
  if (ip.fragmentOffset !== 0) {
    fillFragmentKey(ip, key);
    return;
  }
  fillAddrs(ip, key);
  let ports = 0;
  if (tp.protocol === IPPROTO.TCP || tp.protocol === IPPROTO.UDP) {
    ports = (tp.srcPort << 16 | tp.dstPort) >>> 0;
  } else if (
    (tp.protocol === IPPROTO.ICMP &&
      (tp.icmpType === ICMP_TYPE.ECHO_REQUEST || tp.icmpType === ICMP_TYPE.ECHO_REPLY)) ||
    (tp.protocol === IPPROTO.ICMPV6 &&
      (tp.icmpType === ICMPV6_TYPE.ECHO_REQUEST || tp.icmpType === ICMPV6_TYPE.ECHO_REPLY))
  ) {
    ports = (tp.icmpId << 16 | tp.icmpId) >>> 0;
  }
  key[8] = ports;
  key[9] = (ip.version << 8 | ip.protocol) >>> 0;
}

/**
 * For an ICMP error (unreachable, too big, time exceeded, parameter
 * problem), writes into `key` the flow key of the packet it quotes (in that
 * packet's direction) and returns true; false for anything else or a quote
 * too short to read.
 */
export function quotedFlowKey(ip: IpHeader, tp: TransportHeader, key: Uint32Array): boolean {
  const v4 = ip.version === 4;
  const isError = v4
    ? tp.protocol === IPPROTO.ICMP &&
      (tp.icmpType === 3 || tp.icmpType === 11 || tp.icmpType === 12)
    : tp.protocol === IPPROTO.ICMPV6 && tp.icmpType >= 1 && tp.icmpType <= 4;
  if (!isError) return false;
  const b = ip.buf;
  const p = tp.offset + 8;
  const end = ip.payloadOffset + ip.payloadLength;
  let proto: number, t: number;
  if (v4) {
    if (p + 20 > end || b[p] >> 4 !== 4) return false;
    proto = b[p + 9];
    key[0] = word(b, p + 12);
    key[4] = word(b, p + 16);
    key[1] =
      key[2] =
      key[3] =
      key[5] =
      key[6] =
      key[7] =
        0;
    t = p + (b[p] & 0x0f) * 4;
  } else {
    if (p + 40 > end || b[p] >> 4 !== 6) return false;
    proto = b[p + 6];
    for (let i = 0; i < 4; i++) {
      key[i] = word(b, p + 8 + 4 * i);
      key[4 + i] = word(b, p + 24 + 4 * i);
    }
    t = p + 40;
  }
  if (t + 8 > end) return false;
  let ports = 0;
  if (proto === IPPROTO.TCP || proto === IPPROTO.UDP) {
    ports = (((b[t] << 8 | b[t + 1]) << 16) | (b[t + 2] << 8 | b[t + 3])) >>> 0;
  } else if ((proto === IPPROTO.ICMP && b[t] === 8) || (proto === IPPROTO.ICMPV6 && b[t] === 128)) {
    const id = b[t + 4] << 8 | b[t + 5];
    ports = (id << 16 | id) >>> 0;
  }
  key[8] = ports;
  key[9] = ((v4 ? 4 : 6) << 8 | proto) >>> 0;
  return true;
}

/** Address words `at..at+3` of a key as IPv6 text (allocates; for logs). */
export function wordsText(key: Uint32Array, at: number): string {
  const b = new Uint8Array(16);
  for (let i = 0; i < 4; i++) {
    const w = key[at + i];
    b[4 * i] = w >>> 24;
    b[4 * i + 1] = (w >>> 16) & 0xff;
    b[4 * i + 2] = (w >>> 8) & 0xff;
    b[4 * i + 3] = w & 0xff;
  }
  return formatIpBytes(b, 0, 16);
}
