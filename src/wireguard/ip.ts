/**
 * IP address and prefix text parsing for allowed IPs and config files:
 * IPv4 dotted quads and IPv6 (with "::" and an embedded IPv4 tail). The
 * address text itself is handled by src/packet/addr.ts, the one parser.
 */
import { formatIpBytes, parseIpText } from "../packet/addr.ts";

/** Parses an IPv4 or IPv6 address into 4 or 16 bytes; null when invalid. */
export function parseIp(text: string): Uint8Array | null {
  return parseIpText(text);
}

/** Formats 4 or 16 address bytes as text (IPv6 compressed per RFC 5952). */
export function formatIp(b: Uint8Array): string {
  return formatIpBytes(b);
}

/** An address prefix: address bytes (host bits zeroed) and length in bits. */
export interface Prefix {
  readonly addr: Uint8Array;
  readonly bits: number;
}

/**
 * Parses "10.0.0.0/8", "fd00::/64" or a bare address (full-length prefix);
 * host bits are cleared, as wg(8) does. Null when invalid.
 */
export function parsePrefix(text: string): Prefix | null {
  const t = text.trim();
  const slash = t.indexOf("/");
  const addr = parseIp(slash < 0 ? t : t.slice(0, slash));
  if (!addr) return null;
  const max = addr.length * 8;
  let bits = max;
  if (slash >= 0) {
    const s = t.slice(slash + 1);
    if (!/^\d{1,3}$/.test(s)) return null;
    bits = Number(s);
    if (bits > max) return null;
  }
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    addr[i] &= (0xff00 >> keep) & 0xff;
  }
  return { addr, bits };
}

/** Formats a prefix as "addr/bits". */
export function formatPrefix(p: Prefix): string {
  return `${formatIp(p.addr)}/${p.bits}`;
}
