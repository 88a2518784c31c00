/**
 * Trusted-network detection: evaluates a forwarding profile's TrustedCriteria
 * against facts observed about the current network, and says why.
 *
 * Semantics (documented here because the console shows them):
 * - Each non-empty list of values is ONE criterion that matches when any of
 *   its values is observed: "DNS server is one of 10.0.0.53, 10.0.0.54".
 *   Lists of probes are one criterion per entry, because each is its own
 *   test: every hostname→IPs pair and every TLS beacon.
 * - Empty lists are not considered. With no criteria configured nothing is
 *   trusted (an empty profile must not switch protection off).
 * - match "any": at least one criterion matched; "all": every one did.
 * - VPN-trusted wins when another VPN interface holds the default route:
 *   our traffic leaves through that VPN whatever the network below it is.
 *   The criteria are still evaluated so the explanation stays complete.
 * - Addresses compare in canonical form (so "2001:DB8::1" equals
 *   "2001:db8:0::1"); domains compare case-insensitively without a final dot.
 */
import type { NetworkType, TrustedCriteria } from "./types.ts";
import { canonicalIp, parsePrefix, prefixContains, tryParseIp, tryParsePrefix } from "./cidr.ts";

/** What the connector observed about the network it is on. */
export interface NetworkFacts {
  /** Nameservers in use (resolv.conf). */
  dnsServers: readonly string[];
  /** DNS search domains in use. */
  dnsSearchDomains: readonly string[];
  /** Hostnames from the criteria and the addresses they resolved to (empty when they did not). */
  resolved: ReadonlyMap<string, readonly string[]>;
  /** Next hops of the default routes. */
  defaultGateways: readonly string[];
  /** Local interface addresses in CIDR form ("192.168.1.20/24"). */
  addresses: readonly string[];
  /** Our public address as the edge sees it, when known. */
  egressIp?: string;
  /** "host:port" → SHA-256 hex of the leaf certificate, or an Error when the probe failed. */
  beaconFingerprints: ReadonlyMap<string, string | Error>;
  /** True when a VPN interface that is not ours holds the default route. */
  vpnDefaultRoute: boolean;
  /** Name of that VPN interface, for the explanation. */
  vpnInterface?: string;
}

/** The outcome of trusted-network evaluation, with reasons. */
export interface TrustedVerdict {
  /** True for on_trusted and vpn_trusted. */
  trusted: boolean;
  networkType: NetworkType;
  /** Human-readable descriptions of the criteria that matched. */
  matched: string[];
  /** Human-readable descriptions of the criteria that did not match, with what was seen. */
  unmatched: string[];
  /** One sentence for the console and the logs. */
  explanation: string;
}

/** The key used in NetworkFacts.beaconFingerprints for a beacon. */
export function beaconKey(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function ipKey(text: string): string {
  return canonicalIp(text) ?? text.trim().toLowerCase();
}

function domainKey(text: string): string {
  return text.trim().toLowerCase().replace(/\.$/, "");
}

function list(xs: readonly string[]): string {
  return xs.length ? xs.join(", ") : "none";
}

/** Does an observed address fall within a configured egress entry (address or prefix)? */
function egressMatches(entry: string, observed: string): boolean {
  const ip = tryParseIp(observed);
  const p = tryParsePrefix(entry);
  if (!ip || !p) return false;
  return prefixContains(p, ip);
}

interface Outcome {
  ok: boolean;
  text: string;
}

/** Evaluates each configured criterion; empty lists produce no outcome. */
function evaluateCriteria(c: TrustedCriteria, f: NetworkFacts): Outcome[] {
  const out: Outcome[] = [];
  if (c.dnsServers.length) {
    const seen = new Set(f.dnsServers.map(ipKey));
    const hit = c.dnsServers.filter((s) => seen.has(ipKey(s)));
    out.push({
      ok: hit.length > 0,
      text: hit.length
        ? `DNS server ${hit[0]} is in use`
        : `DNS servers ${list(c.dnsServers)} not in use (seen ${list(f.dnsServers)})`,
    });
  }
  if (c.dnsSearchDomains.length) {
    const seen = new Set(f.dnsSearchDomains.map(domainKey));
    const hit = c.dnsSearchDomains.filter((d) => seen.has(domainKey(d)));
    out.push({
      ok: hit.length > 0,
      text: hit.length
        ? `DNS search domain ${hit[0]} is in use`
        : `DNS search domains ${list(c.dnsSearchDomains)} not in use (seen ${
          list(f.dnsSearchDomains)
        })`,
    });
  }
  for (const h of c.hostnameIps) {
    const got = f.resolved.get(h.hostname) ?? f.resolved.get(domainKey(h.hostname)) ?? [];
    const want = new Set(h.ips.map(ipKey));
    const hit = got.find((ip) => want.has(ipKey(ip)));
    out.push({
      ok: hit !== undefined,
      text: hit !== undefined
        ? `${h.hostname} resolves to ${hit}`
        : `${h.hostname} does not resolve to ${list(h.ips)} (got ${list(got)})`,
    });
  }
  if (c.defaultGateways.length) {
    const seen = new Set(f.defaultGateways.map(ipKey));
    const hit = c.defaultGateways.filter((g) => seen.has(ipKey(g)));
    out.push({
      ok: hit.length > 0,
      text: hit.length
        ? `default gateway ${hit[0]} is in use`
        : `default gateways ${list(c.defaultGateways)} not in use (seen ${
          list(f.defaultGateways)
        })`,
    });
  }
  if (c.networkRanges.length) {
    const ranges = c.networkRanges.map((r) => parsePrefix(r));
    let hit: string | undefined;
    for (const a of f.addresses) {
      const ip = tryParseIp(a.split("/")[0]);
      if (ip && ranges.some((r) => prefixContains(r, ip))) {
        hit = a;
        break;
      }
    }
    out.push({
      ok: hit !== undefined,
      text: hit !== undefined
        ? `local address ${hit} is in ${list(c.networkRanges)}`
        : `no local address in ${list(c.networkRanges)} (have ${list(f.addresses)})`,
    });
  }
  if (c.egressIps.length) {
    const seen = f.egressIp;
    const hit = seen === undefined ? undefined : c.egressIps.find((e) => egressMatches(e, seen));
    out.push({
      ok: hit !== undefined,
      text: hit !== undefined
        ? `egress address ${seen} matches ${hit}`
        : `egress address ${seen ?? "unknown"} is not in ${list(c.egressIps)}`,
    });
  }
  for (const b of c.tlsBeacons) {
    const key = beaconKey(b.host, b.port);
    const got = f.beaconFingerprints.get(key);
    let ok = false;
    let text: string;
    if (got === undefined) text = `TLS beacon ${key} was not probed`;
    else if (got instanceof Error) text = `TLS beacon ${key} failed: ${got.message}`;
    else if (got.toLowerCase() === b.sha256.toLowerCase()) {
      ok = true;
      text = `TLS beacon ${key} presented the expected certificate`;
    } else {
      text = `TLS beacon ${key} presented certificate ${got.slice(0, 16)}…, expected ${
        b.sha256.slice(0, 16)
      }…`;
    }
    out.push({ ok, text });
  }
  return out;
}

/** Decides the network type from the criteria and the observed facts. */
export function evaluateTrustedNetwork(
  criteria: TrustedCriteria,
  facts: NetworkFacts,
): TrustedVerdict {
  const outcomes = evaluateCriteria(criteria, facts);
  const matched = outcomes.filter((o) => o.ok).map((o) => o.text);
  const unmatched = outcomes.filter((o) => !o.ok).map((o) => o.text);
  const criteriaTrusted = outcomes.length > 0 &&
    (criteria.match === "all" ? unmatched.length === 0 : matched.length > 0);
  if (facts.vpnDefaultRoute) {
    const via = facts.vpnInterface ? ` (${facts.vpnInterface})` : "";
    return {
      trusted: true,
      networkType: "vpn_trusted",
      matched,
      unmatched,
      explanation: `VPN-trusted: another VPN interface${via} holds the default route`,
    };
  }
  let explanation: string;
  if (outcomes.length === 0) {
    explanation = "Off-trusted: no trusted-network criteria are configured";
  } else if (criteriaTrusted) {
    explanation = criteria.match === "all"
      ? `On-trusted: all ${matched.length} criteria matched`
      : `On-trusted: ${matched[0]}`;
  } else {
    explanation = criteria.match === "all"
      ? `Off-trusted: ${unmatched.length} of ${outcomes.length} criteria did not match (${
        unmatched[0]
      })`
      : `Off-trusted: none of ${outcomes.length} criteria matched`;
  }
  return {
    trusted: criteriaTrusted,
    networkType: criteriaTrusted ? "on_trusted" : "off_trusted",
    matched,
    unmatched,
    explanation,
  };
}

/** Hostnames the facts collector must resolve for these criteria. */
export function hostnamesToResolve(criteria: TrustedCriteria): string[] {
  return [...new Set(criteria.hostnameIps.map((h) => h.hostname))];
}

/** Beacons the facts collector must probe for these criteria. */
export function beaconsToProbe(criteria: TrustedCriteria): { host: string; port: number }[] {
  return criteria.tlsBeacons.map((b) => ({ host: b.host, port: b.port }));
}
