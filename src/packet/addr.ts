/**
 * IP address bytes ↔ numbers ↔ text for the packet layer.
 *
 * Kept here (not imported from src/net) because src/packet must stay pure:
 * src/net/sockaddr.ts pulls in the FFI symbol table. Text is produced only on
 * demand; the hot path compares numbers and bytes.
 */

/** Reads 4 bytes at `off` as an unsigned 32-bit IPv4 address. */
export function ipv4ToNumber(b: Uint8Array, off = 0): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}

/** Writes an unsigned 32-bit IPv4 address into 4 bytes at `off`. */
export function writeIpv4Number(b: Uint8Array, off: number, n: number): void {
  b[off] = n >>> 24;
  b[off + 1] = (n >>> 16) & 0xff;
  b[off + 2] = (n >>> 8) & 0xff;
  b[off + 3] = n & 0xff;
}

/** Formats an unsigned 32-bit IPv4 address as dotted text. */
export function formatIpv4Number(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/** Formats 4 bytes at `off` as dotted IPv4 text. */
export function formatIpv4Bytes(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** Formats 16 bytes at `off` as RFC 5952 IPv6 text (lowercase, longest zero run as "::"). */
export function formatIpv6Bytes(b: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + 2 * i] << 8) | b[off + 2 * i + 1]);
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
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (bestLen < 2) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** Parses dotted IPv4 text into 4 bytes; null when malformed. */
export function parseIpv4Text(text: string): Uint8Array | null {
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
export function parseIpv6Text(text: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length > 45) return null;
  let s = text;
  let tail: Uint8Array | null = null;
  if (s.includes(".")) {
    const cut = s.lastIndexOf(":");
    if (cut < 0) return null;
    tail = parseIpv4Text(s.slice(cut + 1));
    if (!tail) return null;
    s = s.slice(0, cut + 1) + "0:0";
  }
  const dbl = s.indexOf("::");
  if (dbl !== s.lastIndexOf("::")) return null;
  const parseGroups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    for (const g of part.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const left = parseGroups(s.slice(0, dbl));
    const right = parseGroups(s.slice(dbl + 2));
    if (!left || !right || left.length + right.length > 7) return null;
    groups = [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
  } else {
    const all = parseGroups(s);
    if (!all || all.length !== 8) return null;
    groups = all;
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i] >> 8;
    out[2 * i + 1] = groups[i] & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

/** Parses IPv4 or IPv6 text into 4 or 16 bytes; null when it is not an IP literal. */
export function parseIpText(text: string): Uint8Array | null {
  return text.includes(":") ? parseIpv6Text(text) : parseIpv4Text(text);
}

/** Formats 4 or 16 address bytes as text. */
export function formatIpBytes(b: Uint8Array, off = 0, len = b.length - off): string {
  return len === 4 ? formatIpv4Bytes(b, off) : formatIpv6Bytes(b, off);
}
