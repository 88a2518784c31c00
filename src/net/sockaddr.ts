/**
 * IP address text ↔ bytes and struct sockaddr_in / sockaddr_in6 building,
 * for the FFI socket layer. IPv6 text is produced in RFC 5952 canonical form
 * so the same address always interns to the same Endpoint.
 */
import { AF_INET, AF_INET6, SOCKADDR_IN6_SIZE, SOCKADDR_IN_SIZE } from "../../ffi/libc.ts";

/** Parses dotted IPv4 ("192.0.2.1") into 4 bytes; null when malformed. */
export function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^(0|[1-9]\d{0,2})$/.test(parts[i])) return null;
    const v = Number(parts[i]);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** Parses IPv6 text (with "::" and an optional dotted IPv4 tail) into 16 bytes; null when malformed. */
export function parseIpv6(text: string): Uint8Array | null {
  let s = text;
  const pct = s.indexOf("%");
  if (pct >= 0) s = s.slice(0, pct); // zone ids are not part of the address
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return null;
  let tail: Uint8Array | null = null;
  const lastColon = s.lastIndexOf(":");
  if (s.indexOf(".") >= 0) {
    tail = parseIpv4(s.slice(lastColon + 1));
    if (!tail) return null;
    s = s.slice(0, lastColon + 1) + "0:0"; // placeholder groups, overwritten below
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parse = (h: string): number[] | null => {
    if (h === "") return [];
    const groups = h.split(":");
    const out: number[] = [];
    for (const g of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  if (!head || !rest) return null;
  let groups: number[];
  if (halves.length === 2) {
    if (head.length + rest.length > 7) return null;
    groups = [...head, ...new Array(8 - head.length - rest.length).fill(0), ...rest];
  } else {
    if (head.length !== 8) return null;
    groups = head;
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[i * 2] = groups[i] >> 8;
    out[i * 2 + 1] = groups[i] & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

/** Formats 4 bytes as dotted IPv4. */
export function formatIpv4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** Formats 16 bytes as RFC 5952 IPv6 text (lowercase, longest zero run compressed). */
export function formatIpv6(b: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + i * 2] << 8) | b[off + i * 2 + 1]);
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return g.map((x) => x.toString(16)).join(":");
  const left = g.slice(0, bestStart).map((x) => x.toString(16)).join(":");
  const right = g.slice(bestStart + bestLen).map((x) => x.toString(16)).join(":");
  return `${left}::${right}`;
}

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
