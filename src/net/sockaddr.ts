/**
 * IP address text ↔ bytes and struct sockaddr_in / sockaddr_in6 building,
 * for the FFI socket layer. IPv6 text is produced in RFC 5952 canonical form
 * so the same address always interns to the same Endpoint.
 */
import { AF_INET, AF_INET6, SOCKADDR_IN6_SIZE, SOCKADDR_IN_SIZE } from "../../ffi/libc.ts";
import { formatIpv4Bytes, formatIpv6Bytes, parseIpv4Text, parseIpv6Text } from "../packet/addr.ts";

/** Parses dotted IPv4 ("192.0.2.1") into 4 bytes; null when malformed. */
export const parseIpv4 = parseIpv4Text;

/** Parses IPv6 text into 16 bytes, ignoring a zone id ("fe80::1%eth0"); null when malformed. */
export function parseIpv6(text: string): Uint8Array | null {
  const pct = text.indexOf("%");
  return parseIpv6Text(pct >= 0 ? text.slice(0, pct) : text);
}

/** Formats 4 bytes at `off` as dotted IPv4. */
export const formatIpv4 = formatIpv4Bytes;

/** Formats 16 bytes at `off` as RFC 5952 IPv6 text. */
export const formatIpv6 = formatIpv6Bytes;

/** Returns the address family (4 or 6) of IP text, or 0 when it is not an IP literal. */
export function ipFamily(text: string): 0 | 4 | 6 {
  if (parseIpv4(text)) return 4;
  if (parseIpv6(text)) return 6;
  return 0;
}

/**
 * Builds the sockaddr for `address`:`port` for a socket of `socketFamily`;
 * an IPv4 address on an IPv6 socket becomes ::ffff:a.b.c.d. Null when the
 * address does not parse or cannot be reached from that socket family.
 */
export function buildSockaddr(
  address: string,
  port: number,
  socketFamily: 4 | 6,
): Uint8Array | null {
  const v4 = parseIpv4(address);
  const v6 = v4 ? null : parseIpv6(address);
  if (!v4 && !v6) return null;
  if (socketFamily === 4) {
    if (!v4) return null;
    const sa = new Uint8Array(SOCKADDR_IN_SIZE);
    const dv = new DataView(sa.buffer);
    dv.setUint16(0, AF_INET, true);
    dv.setUint16(2, port, false);
    sa.set(v4, 4);
    return sa;
  }
  const sa = new Uint8Array(SOCKADDR_IN6_SIZE);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, AF_INET6, true);
  dv.setUint16(2, port, false);
  if (v4) {
    sa[18] = 0xff;
    sa[19] = 0xff;
    sa.set(v4, 20);
  } else sa.set(v6!, 8);
  return sa;
}
