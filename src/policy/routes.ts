/**
 * Turns an app profile's include/exclude lists into the routes the connector
 * installs through its tunnel, and the prefixes it deliberately keeps outside.
 *
 * The edge's own endpoint addresses are always kept outside, whatever the
 * profile says: if the tunnel's encrypted packets were routed into the tunnel
 * they would loop forever and the connector would lose the edge.
 *
 * The CIDRs of the application segments that apply to this device are routed
 * into the tunnel even when they lie inside an exclude range (the default
 * excludes hold 10/8, 172.16/12 and 192.168/16, exactly where private apps
 * live): the admin named them as reachable through the edge, and an exclude
 * list written for "keep my LAN direct" must not silently cut them off. Only
 * the edge's own addresses (a loop) and, on request, the device's local
 * subnets (its connected routes) stay outside.
 *
 * A resulting /0 is split into two /1 halves (the wg-quick trick): the more
 * specific routes win over the existing default route without replacing it,
 * so tearing the tunnel down restores the network exactly as it was.
 */
import type { AppProfile } from "./types.ts";
import {
  aggregatePrefixes,
  familyBits,
  formatIp,
  formatPrefix,
  hostPrefix,
  type IpFamily,
  parseIp,
  parsePrefix,
  type Prefix,
  prefixContains,
  subtractPrefixes,
  tryParseIp,
} from "./cidr.ts";

/** What the connector knows about the network it sits on. */
export interface DeviceNetwork {
  /** Local interface addresses in CIDR form ("192.168.1.20/24"). */
  addresses?: readonly string[];
  /** Keep the local subnets of `addresses` outside the tunnel ("allow LAN access"). */
  keepLocalSubnetsDirect?: boolean;
}

/** Input to planRoutes. */
export interface RoutePlanInput {
  /** Only `include` and `exclude` are read. */
  profile: Pick<AppProfile, "include" | "exclude">;
  /** Addresses the tunnel transport talks to (UDP and TLS endpoints of the edge). */
  edgeAddresses: readonly string[];
  /** The device's own network, when local subnets must stay direct. */
  device?: DeviceNetwork;
  /** CIDRs of the application segments that apply to this device: tunnelled despite excludes. */
  segments?: readonly string[];
}

/** Routes to install through the tunnel and prefixes kept outside, per family. */
export interface RoutePlan {
  /** IPv4 routes to point at the tunnel device. */
  tunnel4: string[];
  /** IPv6 routes to point at the tunnel device. */
  tunnel6: string[];
  /** IPv4 prefixes kept outside the tunnel (profile excludes, edge, local subnets). */
  bypass4: string[];
  /** IPv6 prefixes kept outside the tunnel. */
  bypass6: string[];
}

function splitDefault(ps: Prefix[]): Prefix[] {
  const out: Prefix[] = [];
  for (const p of ps) {
    if (p.len === 0) {
      const half = 1n << BigInt(familyBits(p.family) - 1);
      out.push({ family: p.family, addr: 0n, len: 1 }, { family: p.family, addr: half, len: 1 });
    } else {
      out.push(p);
    }
  }
  return out;
}

function only(ps: Prefix[], family: IpFamily): string[] {
  return ps.filter((p) => p.family === family).map(formatPrefix);
}

/**
 * Computes the routes through the tunnel: includes minus (excludes, the
 * edge's addresses, and optionally the local subnets), plus the segments'
 * CIDRs minus the edge's addresses and the local subnets. Throws an
 * InputError naming the first unparsable prefix or address.
 */
export function planRoutes(input: RoutePlanInput): RoutePlan {
  const includes = input.profile.include.map((t) => parsePrefix(t));
  const always: Prefix[] = input.edgeAddresses.map((a) => hostPrefix(parseIp(a)));
  if (input.device?.keepLocalSubnetsDirect) {
    for (const a of input.device.addresses ?? []) always.push(parsePrefix(a));
  }
  const bypass = [...input.profile.exclude.map((t) => parsePrefix(t)), ...always];
  const segments = subtractPrefixes((input.segments ?? []).map((t) => parsePrefix(t)), always);
  const tunnel = splitDefault(
    aggregatePrefixes([...subtractPrefixes(includes, bypass), ...segments]),
  );
  // What is kept outside: everything bypassed that no segment claims back.
  const kept = subtractPrefixes(aggregatePrefixes(bypass), segments);
  return {
    tunnel4: only(tunnel, 4),
    tunnel6: only(tunnel, 6),
    bypass4: only(kept, 4),
    bypass6: only(kept, 6),
  };
}

/** True when an address would be sent through the tunnel under this plan. */
export function routedThroughTunnel(plan: RoutePlan, address: string): boolean {
  const ip = parseIp(address);
  const list = ip.family === 4 ? plan.tunnel4 : plan.tunnel6;
  return list.some((r) => prefixContains(parsePrefix(r), ip));
}

/**
 * Host routes for addresses the edge's DNS answered that this plan would not
 * send through the tunnel (an FQDN segment resolving inside an excluded
 * range): each as a /32 or /128, skipping the edge's own addresses (a loop),
 * text that is not an address, and duplicates.
 */
export function answerHostRoutes(
  plan: RoutePlan,
  addresses: readonly string[],
  edgeAddresses: readonly string[],
): string[] {
  const edge = new Set(
    edgeAddresses.map((a) => tryParseIp(a)).filter((x) => x !== null).map(formatIp),
  );
  const out = new Set<string>();
  for (const text of addresses) {
    const ip = tryParseIp(text);
    if (!ip || edge.has(formatIp(ip)) || routedThroughTunnel(plan, text)) continue;
    out.add(formatPrefix(hostPrefix(ip)));
  }
  return [...out];
}
