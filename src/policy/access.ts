/**
 * Access policy: which user may reach which application segment, by rule
 * order. The edge compiles segments and rules into an AccessPolicy once per
 * policy version and asks it per new flow.
 *
 * Semantics:
 * - A destination is "private" when it falls in a segment: its address is in
 *   one of the segment's CIDRs (or its name matches one of the segment's
 *   domains), and its port and protocol are among the segment's.
 * - Rules are tried in ruleOrder (ties keep their given order); the first
 *   rule that names one of the destination's segments and whose conditions
 *   hold decides allow or deny.
 * - Conditions: with no users and no groups a rule applies to everyone;
 *   otherwise the user must be listed or be in a listed group. Every listed
 *   posture profile must have passed.
 * - No deciding rule for a private destination → deny (default deny).
 *   Destinations outside every segment are not private; the decision says
 *   so and the caller applies its internet policy.
 */
import type { AccessRule, AppSegment } from "./types.ts";
import { InputError } from "../errors.ts";
import { type IpAddress, parsePrefix, type Prefix, prefixContains, tryParseIp } from "./cidr.ts";

/** Transport protocol of a flow. */
export type FlowProtocol = "tcp" | "udp" | "icmp";

/** A new flow to decide on. */
export interface AccessRequest {
  user: string;
  groups: readonly string[];
  /** Names of the posture profiles the device currently passes. */
  postureProfiles: readonly string[];
  /** Destination address, when known. */
  ip?: string;
  /** Destination name, when known (e.g. from DNS or SNI). */
  domain?: string;
  /** Destination port (ignored for ICMP). */
  port?: number;
  protocol: FlowProtocol;
}

/** The decision and the reason for it. */
export interface AccessDecision {
  allowed: boolean;
  /** True when the destination is in at least one application segment. */
  private: boolean;
  /** Segments the destination falls in. */
  segments: string[];
  /** The rule that decided, or null for the default. */
  rule: string | null;
  reason: string;
}

/** A compiled access policy. */
export interface AccessPolicy {
  /** Decides on one flow. */
  decide(req: AccessRequest): AccessDecision;
  /** Names of the segments a destination falls in. */
  segmentsFor(dest: Pick<AccessRequest, "ip" | "domain" | "port" | "protocol">): string[];
}

function normDomain(d: string): string {
  return d.trim().toLowerCase().replace(/\.$/, "");
}

/**
 * Matches a domain against a segment pattern: "app.example" matches exactly,
 * "*.example" matches any name below example.com but not "example" itself.
 */
export function domainMatches(pattern: string, name: string): boolean {
  const p = normDomain(pattern), n = normDomain(name);
  if (!p || !n) return false;
  if (p.startsWith("*.")) {
    const suffix = p.slice(1);
    return n.length > suffix.length && n.endsWith(suffix);
  }
  return p === n;
}

/** Parses "80" or "8000-8100" into an inclusive range; null when invalid. */
export function parsePortRange(text: string): [number, number] | null {
  const m = text.trim().match(/^(\d{1,5})(?:-(\d{1,5}))?$/);
  if (!m) return null;
  const lo = Number(m[1]), hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo < 1 || hi > 65535 || lo > hi) return null;
  return [lo, hi];
}

interface CompiledSegment {
  name: string;
  domains: string[];
  cidrs: Prefix[];
  ports: [number, number][];
  protocols: Set<FlowProtocol>;
}

function compileSegment(s: AppSegment): CompiledSegment {
  return {
    name: s.name,
    domains: s.domains,
    cidrs: s.cidrs.map((c) => parsePrefix(c)),
    ports: s.ports.map((p) => {
      const r = parsePortRange(p);
      if (!r) {
        throw new InputError(
          "invalid_segment",
          `Cannot compile segment "${s.name}": invalid port range "${p}"`,
        );
      }
      return r;
    }),
    protocols: new Set(s.protocols),
  };
}

function segmentHolds(
  s: CompiledSegment,
  ip: IpAddress | null,
  dest: Pick<AccessRequest, "domain" | "port" | "protocol">,
): boolean {
  if (!s.protocols.has(dest.protocol)) return false;
  const byAddr = ip !== null && s.cidrs.some((c) => prefixContains(c, ip));
  const byName = dest.domain !== undefined &&
    s.domains.some((d) => domainMatches(d, dest.domain as string));
  if (!byAddr && !byName) return false;
  if (dest.protocol === "icmp" || s.ports.length === 0) return true;
  const port = dest.port;
  return port !== undefined && s.ports.some(([lo, hi]) => port >= lo && port <= hi);
}

/** Compiles segments and rules; throws naming the first invalid segment. */
export function compileAccessPolicy(
  segments: readonly AppSegment[],
  rules: readonly AccessRule[],
): AccessPolicy {
  const segs = segments.map(compileSegment);
  const ordered = rules.map((r, i) => ({ r, i }))
    .sort((a, b) => a.r.ruleOrder - b.r.ruleOrder || a.i - b.i)
    .map(({ r }) => ({ ...r, segmentSet: new Set(r.segments) }));

  const segmentsFor = (dest: Pick<AccessRequest, "ip" | "domain" | "port" | "protocol">) => {
    const ip = dest.ip === undefined ? null : tryParseIp(dest.ip);
    return segs.filter((s) => segmentHolds(s, ip, dest)).map((s) => s.name);
  };

  const decide = (req: AccessRequest): AccessDecision => {
    const hit = segmentsFor(req);
    if (hit.length === 0) {
      return {
        allowed: true,
        private: false,
        segments: [],
        rule: null,
        reason: "Destination is not in any application segment",
      };
    }
    const groups = new Set(req.groups);
    const posture = new Set(req.postureProfiles);
    for (const rule of ordered) {
      if (!hit.some((s) => rule.segmentSet.has(s))) continue;
      const anyone = rule.users.length === 0 && rule.groups.length === 0;
      const who = anyone || rule.users.includes(req.user) || rule.groups.some((g) => groups.has(g));
      if (!who) continue;
      const missing = rule.postureProfiles.filter((p) => !posture.has(p));
      if (missing.length) continue;
      return {
        allowed: rule.action === "allow",
        private: true,
        segments: hit,
        rule: rule.name,
        reason: `Rule "${rule.name}" ${rule.action === "allow" ? "allows" : "denies"} ${
          hit.join(", ")
        }`,
      };
    }
    return {
      allowed: false,
      private: true,
      segments: hit,
      rule: null,
      reason: `No rule allows user "${req.user}" to reach ${hit.join(", ")} (default deny)`,
    };
  };

  return { decide, segmentsFor };
}
