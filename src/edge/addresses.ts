/**
 * Device addresses. Devices get addresses from a /16 of the shared address
 * space (100.64.0.0/10); the edge holds the first host address. If
 * 100.64.0.0/16 clashes with a network the edge is attached to, the next free
 * /16 is used, up to 100.83.0.0/16. The choice is made once, at first start,
 * and persisted, so addresses stay stable across restarts and network changes.
 */
import { InputError } from "../errors.ts";
import { formatIpv4Number, ipv4ToNumber, parseIpv4Text } from "../packet/addr.ts";

/** First and last candidate /16 (second octet). */
export const FIRST_OCTET2 = 64;
/** Last candidate second octet (100.83.0.0/16). */
export const LAST_OCTET2 = 83;
/** Highest host index leased to devices (x.y.255.254). */
export const MAX_HOST = 65534;

/** Parses dotted IPv4 to a 32-bit unsigned integer, or null. */
export function parseIPv4(text: string): number | null {
  const b = parseIpv4Text(text);
  return b === null ? null : ipv4ToNumber(b);
}

/** Formats a 32-bit unsigned integer as dotted IPv4. */
export function formatIPv4(n: number): string {
  return formatIpv4Number(n);
}

/** An IPv4 prefix as base and length. */
export interface Prefix4 {
  base: number;
  len: number;
}

/** Parses "a.b.c.d/n" (host bits allowed, they are masked off); null for non-IPv4. */
export function parsePrefix4(cidr: string): Prefix4 | null {
  const [addr, lenText] = cidr.split("/");
  const ip = parseIPv4(addr);
  const len = lenText === undefined ? 32 : Number(lenText);
  if (ip === null || !Number.isInteger(len) || len < 0 || len > 32) return null;
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return { base: (ip & mask) >>> 0, len };
}

/** True when two IPv4 prefixes share any address. */
export function overlaps(a: Prefix4, b: Prefix4): boolean {
  const len = Math.min(a.len, b.len);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((a.base & mask) >>> 0) === ((b.base & mask) >>> 0);
}

/**
 * Chooses the device network: `preferred` if it clashes with none of
 * `localPrefixes`, else the next free /16 from 100.64 to 100.83. Throws when
 * all twenty clash.
 */
export function chooseDeviceNetwork(
  localPrefixes: readonly string[],
  preferred = "100.64.0.0/16",
): string {
  const local = localPrefixes.map(parsePrefix4).filter((p): p is Prefix4 => p !== null);
  const pref = parsePrefix4(preferred);
  if (!pref || pref.len !== 16) {
    throw new InputError(
      "invalid_device_range",
      `Cannot use device range "${preferred}": expected an IPv4 /16 such as 100.64.0.0/16`,
    );
  }
  const candidates = [pref];
  for (let o = FIRST_OCTET2; o <= LAST_OCTET2; o++) {
    const base = parseIPv4(`100.${o}.0.0`)!;
    if (base !== pref.base) candidates.push({ base, len: 16 });
  }
  for (const c of candidates) {
    if (!local.some((l) => overlaps(l, c))) return `${formatIPv4(c.base)}/16`;
  }
  throw new InputError(
    "device_range_exhausted",
    `Cannot choose a device range: 100.64.0.0/16 to 100.83.0.0/16 all overlap local networks (${
      local.map((l) => `${formatIPv4(l.base)}/${l.len}`).join(", ")
    })`,
  );
}

/** The address of host index `host` inside `network` ("100.64.0.0/16"). */
export function hostAddress(network: string, host: number): string {
  const p = parsePrefix4(network);
  if (!p) throw new RangeError(`Cannot compute an address in "${network}"`);
  return formatIPv4((p.base + host) >>> 0);
}

/** Reads the IPv4 prefixes on this host's interfaces (`ip -j addr`), skipping loopback. */
export async function readLocalPrefixes(): Promise<string[]> {
  try {
    const out = await new Deno.Command("ip", {
      args: ["-j", "addr"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    if (!out.success) return [];
    const links = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      addr_info?: { family: string; local: string; prefixlen: number; scope?: string }[];
    }[];
    const prefixes: string[] = [];
    for (const link of links) {
      for (const a of link.addr_info ?? []) {
        if (a.family === "inet" && a.scope !== "host") prefixes.push(`${a.local}/${a.prefixlen}`);
      }
    }
    return prefixes;
  } catch {
    return [];
  }
}
