/**
 * IP address and prefix text parsing for allowed IPs and config files:
 * IPv4 dotted quads and IPv6 (with "::" and an embedded IPv4 tail).
 */

/** Parses an IPv4 or IPv6 address into 4 or 16 bytes; null when invalid. */
export function parseIp(text: string): Uint8Array | null {
  return text.includes(":") ? parseIp6(text) : parseIp4(text);
}

function parseIp4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^(0|[1-9]\d{0,2})$/.test(parts[i])) return null;
    const n = Number(parts[i]);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseIp6(text: string): Uint8Array | null {
  if (text.includes("%")) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const words = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    const groups = s.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = parseIp4(g);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = words(halves[0]);
  const tail = halves.length === 2 ? words(halves[1]) : [];
  if (!head || !tail) return null;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  const all = [...head, ...new Array(halves.length === 2 ? fill : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i] >> 8;
    out[2 * i + 1] = all[i] & 0xff;
  }
  return out;
}

/** Formats 4 or 16 address bytes as text (IPv6 compressed per RFC 5952). */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return b.join(".");
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[2 * i] << 8) | b[2 * i + 1]);
  let bestStart = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hexs = w.map((x) => x.toString(16));
  if (bestStart < 0) return hexs.join(":");
  return `${hexs.slice(0, bestStart).join(":")}::${hexs.slice(bestStart + bestLen).join(":")}`;
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
