/**
 * IPv4 and IPv6 addresses and prefixes as bigints, and the set arithmetic the
 * connector needs to turn include/exclude lists into kernel routes.
 *
 * Decisions:
 * - Addresses are `{ family, value }` with `value` a bigint (32 or 128 bits),
 *   so one code path serves both families and IPv6 needs no number pairs.
 * - Prefixes with host bits set ("10.0.0.1/8") are normalised to the network
 *   ("10.0.0.0/8") rather than rejected: operators paste interface addresses,
 *   and the intent is unambiguous. `parsePrefix(text, { strict: true })`
 *   rejects them where a caller wants to.
 * - IPv4 octets with leading zeros ("010.0.0.1") are rejected: some parsers
 *   read them as octal, so accepting them would make policy ambiguous.
 * - A bare address parses as a host prefix (/32 or /128) in `parsePrefix`.
 * - IPv6 zone ids ("fe80::1%eth0") are rejected; policy never names links.
 * - Output follows RFC 5952 (lowercase, longest zero run compressed,
 *   IPv4-mapped addresses as ::ffff:a.b.c.d).
 */
import { formatIpBytes, parseIpText } from "../packet/addr.ts";
import { InputError } from "../errors.ts";

/** Address family. */
export type IpFamily = 4 | 6;

/** An IP address: family and its value as an unsigned bigint. */
export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

/** A prefix: family, network address (host bits zero) and length. */
export interface Prefix {
  readonly family: IpFamily;
  readonly addr: bigint;
  readonly len: number;
}

/** Bit width of an address family. */
export function familyBits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

/** Address bytes (4 or 16) as one unsigned integer. */
function bytesValue(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

/** An unsigned integer as `n` address bytes. */
function valueBytes(v: bigint, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = n - 1; i >= 0; i--, v >>= 8n) b[i] = Number(v & 0xffn);
  return b;
}

/** Parses an IPv4 or IPv6 address, or returns null when it is not one. */
export function tryParseIp(text: string): IpAddress | null {
  // The one text parser (src/packet/addr.ts); here addresses are integers.
  const b = parseIpText(text.trim());
  return b === null ? null : { family: b.length === 4 ? 4 : 6, value: bytesValue(b) };
}

/** Parses an IPv4 or IPv6 address; throws an InputError naming the value. */
export function parseIp(text: string): IpAddress {
  const ip = tryParseIp(text);
  if (!ip) throw new InputError("invalid_ip", `Cannot parse IP address "${text}"`);
  return ip;
}

/** Formats an address: dotted quad, or RFC 5952 IPv6 text (IPv4-mapped with a dotted tail). */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return formatIpBytes(valueBytes(ip.value, 4));
  if (ip.value >> 32n === 0xffffn) return `::ffff:${formatIpBytes(valueBytes(ip.value, 4))}`;
  return formatIpBytes(valueBytes(ip.value, 16));
}

/** Re-formats an address in canonical form, or returns null when it does not parse. */
export function canonicalIp(text: string): string | null {
  const ip = tryParseIp(text);
  return ip ? formatIp(ip) : null;
}

function hostMask(family: IpFamily, len: number): bigint {
  return (1n << BigInt(familyBits(family) - len)) - 1n;
}

/** Builds a prefix, clearing any host bits. */
export function makePrefix(family: IpFamily, addr: bigint, len: number): Prefix {
  return { family, addr: addr & ~hostMask(family, len) & allOnes(family), len };
}

function allOnes(family: IpFamily): bigint {
  return (1n << BigInt(familyBits(family))) - 1n;
}

/**
 * Parses "a.b.c.d/n", "v6/n" or a bare address (a host prefix). Host bits are
 * cleared unless `strict`, in which case they are an error.
 */
export function tryParsePrefix(text: string, opts: { strict?: boolean } = {}): Prefix | null {
  const t = text.trim();
  const slash = t.indexOf("/");
  const ip = tryParseIp(slash === -1 ? t : t.slice(0, slash));
  if (!ip) return null;
  const bits = familyBits(ip.family);
  let len = bits;
  if (slash !== -1) {
    const l = t.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(l)) return null;
    len = Number(l);
    if (len > bits) return null;
  }
  const p = makePrefix(ip.family, ip.value, len);
  if (opts.strict && p.addr !== ip.value) return null;
  return p;
}

/** Like tryParsePrefix, but throws an InputError naming the value. */
export function parsePrefix(text: string, opts: { strict?: boolean } = {}): Prefix {
  const p = tryParsePrefix(text, opts);
  if (!p) {
    const why = opts.strict && tryParsePrefix(text) ? ": host bits are set" : "";
    throw new InputError("invalid_prefix", `Cannot parse IP prefix "${text}"${why}`);
  }
  return p;
}

/** Formats a prefix as "addr/len". */
export function formatPrefix(p: Prefix): string {
  return `${formatIp({ family: p.family, value: p.addr })}/${p.len}`;
}

/** The /32 or /128 prefix holding exactly this address. */
export function hostPrefix(ip: IpAddress): Prefix {
  return { family: ip.family, addr: ip.value, len: familyBits(ip.family) };
}

/** First and last address of a prefix, inclusive. */
export function prefixRange(p: Prefix): [bigint, bigint] {
  return [p.addr, p.addr | hostMask(p.family, p.len)];
}

/** True when the prefix holds the address (or the whole other prefix). */
export function prefixContains(p: Prefix, x: IpAddress | Prefix): boolean {
  if (p.family !== x.family) return false;
  if ("len" in x) {
    if (x.len < p.len) return false;
    return makePrefix(p.family, x.addr, p.len).addr === p.addr;
  }
  return makePrefix(p.family, x.value, p.len).addr === p.addr;
}

/** True when two prefixes share at least one address. */
export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  return a.len <= b.len ? prefixContains(a, b) : prefixContains(b, a);
}

/** Orders prefixes by family, address, then length (shorter first). */
export function comparePrefixes(a: Prefix, b: Prefix): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.addr !== b.addr) return a.addr < b.addr ? -1 : 1;
  return a.len - b.len;
}

type Range = [bigint, bigint];

function mergeRanges(ranges: Range[]): Range[] {
  const sorted = ranges.slice().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    // Adjacent ranges merge too, so the result is minimal.
    if (last && r[0] <= last[1] + 1n) {
      if (r[1] > last[1]) last[1] = r[1];
    } else {
      out.push([r[0], r[1]]);
    }
  }
  return out;
}

function subtractRanges(inc: Range[], exc: Range[]): Range[] {
  const out: Range[] = [];
  const ex = mergeRanges(exc);
  for (const [s0, e0] of mergeRanges(inc)) {
    let s = s0;
    for (const [xs, xe] of ex) {
      if (xe < s || xs > e0) continue;
      if (xs > s) out.push([s, xs - 1n]);
      s = xe + 1n;
      if (s > e0) break;
    }
    if (s <= e0) out.push([s, e0]);
  }
  return out;
}

/** The minimal list of prefixes that exactly covers [start, end]. */
function rangeToPrefixes(family: IpFamily, start: bigint, end: bigint): Prefix[] {
  const bits = familyBits(family);
  const out: Prefix[] = [];
  let s = start;
  while (s <= end) {
    // Largest block aligned at s that does not run past end.
    let size = bits;
    while (size > 0) {
      const block = 1n << BigInt(bits - size + 1);
      if ((s & (block - 1n)) !== 0n || s + block - 1n > end) break;
      size--;
    }
    out.push({ family, addr: s, len: size });
    s += 1n << BigInt(bits - size);
  }
  return out;
}

function byFamily(ps: readonly Prefix[], family: IpFamily): Range[] {
  return ps.filter((p) => p.family === family).map(prefixRange);
}

/** Merges overlapping and adjacent prefixes into the minimal covering list, sorted. */
export function aggregatePrefixes(ps: readonly Prefix[]): Prefix[] {
  const out: Prefix[] = [];
  for (const family of [4, 6] as const) {
    for (const [s, e] of mergeRanges(byFamily(ps, family))) {
      out.push(...rangeToPrefixes(family, s, e));
    }
  }
  return out;
}

/**
 * The minimal sorted set of prefixes covering `includes` minus `excludes`,
 * per family (an IPv6 exclude never affects IPv4 includes and vice versa).
 */
export function subtractPrefixes(
  includes: readonly Prefix[],
  excludes: readonly Prefix[],
): Prefix[] {
  const out: Prefix[] = [];
  for (const family of [4, 6] as const) {
    for (const [s, e] of subtractRanges(byFamily(includes, family), byFamily(excludes, family))) {
      out.push(...rangeToPrefixes(family, s, e));
    }
  }
  return out;
}

/** String form of subtractPrefixes: parses (normalising host bits) and formats. */
export function subtract(includes: readonly string[], excludes: readonly string[]): string[] {
  return subtractPrefixes(includes.map((t) => parsePrefix(t)), excludes.map((t) => parsePrefix(t)))
    .map(formatPrefix);
}

/** Dotted netmask for an IPv4 prefix length ("255.255.255.0" for 24). */
export function ipv4Netmask(len: number): string {
  if (!Number.isInteger(len) || len < 0 || len > 32) {
    throw new InputError("invalid_prefix", `Cannot make an IPv4 netmask for length ${len}`);
  }
  return formatIp({ family: 4, value: allOnes(4) & ~hostMask(4, len) });
}

/** The scope of an address outside the global internet (RFC 6890's special blocks). */
export type AddressScope =
  | "unspecified"
  | "loopback"
  | "private"
  | "shared"
  | "link-local"
  | "unique-local"
  | "multicast"
  | "reserved";

/** Special blocks and their scopes; anything else is global. */
const SCOPE_BLOCKS: readonly (readonly [string, AddressScope])[] = [
  ["0.0.0.0/8", "unspecified"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "shared"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["172.16.0.0/12", "private"],
  ["192.168.0.0/16", "private"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved"],
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["fc00::/7", "unique-local"],
  ["fe80::/10", "link-local"],
  ["ff00::/8", "multicast"],
];
const SCOPES: readonly [Prefix, AddressScope][] = SCOPE_BLOCKS.map(([p, s]) => [parsePrefix(p), s]);
/** The IPv4 blocks as base and mask numbers, for the data plane's per-flow check. */
const V4 = SCOPES.filter(([p]) => p.family === 4);
const V4_BASE = Uint32Array.from(V4, ([p]) => Number(p.addr));
const V4_MASK = Uint32Array.from(V4, ([p]) => p.len === 0 ? 0 : 0xffffffff << (32 - p.len));
const V4_SCOPE: readonly AddressScope[] = V4.map(([, s]) => s);

/**
 * `addressScope` of an IPv4 address given as its 32-bit number (the data
 * plane's form): no text, no BigInt, so a new flow pays a few compares.
 */
export function addressScope4(n: number): AddressScope | null {
  for (let i = 0; i < V4_BASE.length; i++) {
    if (((n & V4_MASK[i]) >>> 0) === V4_BASE[i]) return V4_SCOPE[i];
  }
  return null;
}

/**
 * The special blocks of one family as CIDR text — every address that is not
 * the internet (for rules, such as nftables sets, that must cover exactly
 * what `addressScope` names).
 */
export function specialPrefixes(family: 4 | 6): string[] {
  return SCOPE_BLOCKS.filter(([p]) => p.includes(":") === (family === 6)).map(([p]) => p);
}

/**
 * The special scope of an address, or null for a global one (and for text
 * that is not an address). An IPv4-mapped IPv6 address is judged as its
 * IPv4 address: the kernel connects to that.
 */
export function addressScope(address: string): AddressScope | null {
  const ip = tryParseIp(address.replace(/^::ffff:(?=\d+\.)/i, ""));
  if (!ip) return null;
  const mapped = ip.family === 6 && ip.value >> 32n === 0xffffn
    ? { family: 4 as const, value: ip.value & 0xffffffffn }
    : ip;
  return SCOPES.find(([p]) => prefixContains(p, mapped))?.[1] ?? null;
}

const LOCAL_SCOPES: ReadonlySet<AddressScope> = new Set([
  "private",
  "shared",
  "link-local",
  "loopback",
  "unique-local",
]);

/**
 * True for private, shared (CGNAT), link-local and loopback addresses —
 * sources a LAN-side service may answer. Accepts IPv4-mapped IPv6 text.
 */
export function isPrivateOrLoopback(address: string): boolean {
  const s = addressScope(address);
  return s !== null && LOCAL_SCOPES.has(s);
}
