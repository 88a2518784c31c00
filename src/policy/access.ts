/**
 * Access policy: which subject may reach which application segment, by rule
 * order. The edge compiles segments and rules into one immutable
 * CompiledAccess per policy version (indexes built once) and asks it on each
 * new flow; the console's "why can't this device reach that app?" view asks
 * the same value through `explain`, so both always agree.
 *
 * Semantics:
 * - A destination is in a segment when its address is in one of the
 *   segment's CIDRs or one of its names matches one of the segment's domains
 *   ("app.example" exactly, "*.example" any name below), and its protocol and
 *   port are among the segment's (no ports = every port; ICMP has none).
 *   Names come from the edge DNS (the addresses it handed this device for a
 *   name) or, for another device, from its valid client-to-client
 *   registration — so a segment with domain "*.clients.portcullis.internal"
 *   is a client-to-client segment.
 * - Rules are tried in ruleOrder (ties keep their given order); only rules
 *   naming one of the destination's segments count. A rule applies to the
 *   subject when every non-empty condition holds: users/groups (the user is
 *   listed, or one of the user's IdP/local groups is), machine groups (the
 *   enrolment key's group is listed), devices (the device id is listed).
 * - An applicable rule whose posture profiles all pass (and have not
 *   expired) decides allow or deny. One whose posture fails is skipped, but
 *   remembered: when no later rule decides, the flow is denied with that
 *   rule and the posture's reason ("needs posture …, device reports …").
 * - No deciding rule for a private destination → deny (default deny).
 *   A destination outside every segment that the caller does not mark as
 *   private is internet traffic: the decision says so and the caller
 *   applies its internet policy. Callers mark another device, and every
 *   address that is not the internet (`nonInternetReason`: private, CGNAT,
 *   loopback, link-local, the metadata address…): a device that routes
 *   10.x into its tunnel must not reach the edge's networks without a rule.
 *
 * Cost: segment lookup is a prefix-trie walk plus a hash lookup per name
 * label, and only the rules naming the segments found are tried, so a
 * lookup stays flat at 10,000 segments and 1,000 rules.
 */
import type { AccessRule, AppSegment } from "./types.ts";
import {
  type AccessDecision,
  type AccessDestination,
  type AccessSubject,
  type CompiledAccess,
  type FlowProtocol,
  type PostureStates,
  type PreparedSubject,
  prepareSubject,
  type SegmentStanding,
} from "./access_types.ts";
import { InputError } from "../errors.ts";
import { type AddressScope, addressScope, parsePrefix } from "./cidr.ts";
import { parseIpText } from "../packet/addr.ts";
import { PrefixTrie } from "./prefix_trie.ts";

export * from "./access_types.ts";

/** Lowercases a DNS name and drops a trailing dot. */
export function normDomain(d: string): string {
  return d.trim().toLowerCase().replace(/\.$/, "");
}

/**
 * Matches a domain against a segment pattern: "app.example" matches exactly,
 * "*.example" matches any name below example but not "example" itself.
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

const PROTO_BIT: Record<FlowProtocol, number> = { tcp: 1, udp: 2, icmp: 4 };

interface CSegment {
  name: string;
  protoMask: number;
  /** Sorted, merged [lo, hi] pairs; empty = every port. */
  ports: Int32Array;
  /** Positions (in rule order) of the rules naming this segment, ascending. */
  rules: Int32Array;
}

interface CRule {
  name: string;
  allow: boolean;
  users: ReadonlySet<string>;
  groups: ReadonlySet<string>;
  machineGroups: ReadonlySet<string>;
  devices: ReadonlySet<string>;
  posture: readonly string[];
}

function compileSegment(s: AppSegment): Omit<CSegment, "rules"> {
  const ranges = s.ports.map((p) => {
    const r = parsePortRange(p);
    if (!r) {
      throw new InputError(
        "invalid_segment",
        `Cannot compile segment "${s.name}": invalid port range "${p}"`,
      );
    }
    return r;
  }).sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  let mask = 0;
  for (const p of s.protocols) mask |= PROTO_BIT[p];
  return { name: s.name, protoMask: mask, ports: Int32Array.from(merged.flat()) };
}

function portIn(ports: Int32Array, port: number): boolean {
  if (ports.length === 0) return true;
  let lo = 0, hi = ports.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (port < ports[2 * mid]) hi = mid - 1;
    else if (port > ports[2 * mid + 1]) lo = mid + 1;
    else return true;
  }
  return false;
}

function bigintBytes(v: bigint, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = n - 1; i >= 0; i--, v >>= 8n) b[i] = Number(v & 0xffn);
  return b;
}

function subjectApplies(r: CRule, s: PreparedSubject): boolean {
  if (r.users.size || r.groups.size) {
    const u = s.subject.user;
    let who = u !== null && r.users.has(u);
    if (!who) { for (const g of s.identityGroups) if (r.groups.has(g)) who = true; }
    if (!who) return false;
  }
  if (r.machineGroups.size) {
    let hit = false;
    for (const g of s.machineGroups) if (r.machineGroups.has(g)) hit = true;
    if (!hit) return false;
  }
  if (r.devices.size && !r.devices.has(s.subject.deviceId)) return false;
  return true;
}

/** The first posture profile of `r` that does not pass now, with the reason; null when all pass. */
function failingPosture(
  r: CRule,
  posture: PostureStates,
  now: number,
): { profile: string; reason: string } | null {
  for (const p of r.posture) {
    const st = posture.get(p);
    if (!st) return { profile: p, reason: "the device has not reported it" };
    if (now >= st.expiresAt) {
      return {
        profile: p,
        reason: `the device's last result expired at ${new Date(st.expiresAt).toISOString()}`,
      };
    }
    if (!st.passed) return { profile: p, reason: `device reports ${st.reason}` };
  }
  return null;
}

function who(s: AccessSubject): string {
  return s.user !== null
    ? `user "${s.user}" on device "${s.deviceName}"`
    : `device "${s.deviceName}"`;
}

const quoteList = (xs: readonly string[]) => xs.map((x) => `"${x}"`).join(", ");

/** Compiles segments and rules; throws naming the first invalid segment. */
export function compileAccessPolicy(
  segments: readonly AppSegment[],
  rules: readonly AccessRule[],
): CompiledAccess {
  const segs: CSegment[] = [];
  const segIndex = new Map<string, number>();
  const v4 = new PrefixTrie(), v6 = new PrefixTrie();
  const exact = new Map<string, number[]>();
  const wildcard = new Map<string, number[]>();
  const add = (m: Map<string, number[]>, k: string, i: number) => {
    const l = m.get(k);
    if (!l) m.set(k, [i]);
    else if (!l.includes(i)) l.push(i);
  };
  for (const s of segments) {
    if (segIndex.has(s.name)) continue; // names are unique in the store; first wins
    const i = segs.length;
    segIndex.set(s.name, i);
    segs.push({ ...compileSegment(s), rules: new Int32Array(0) });
    for (const c of s.cidrs) {
      const p = parsePrefix(c);
      (p.family === 4 ? v4 : v6).insert(
        bigintBytes(p.addr, p.family === 4 ? 4 : 16),
        p.len,
        i,
      );
    }
    for (const d of s.domains) {
      const n = normDomain(d);
      if (n.startsWith("*.")) add(wildcard, n.slice(2), i);
      else if (n) add(exact, n, i);
    }
  }
  v4.freeze();
  v6.freeze();

  const ordered = rules.map((r, i) => ({ r, i }))
    .sort((a, b) => a.r.ruleOrder - b.r.ruleOrder || a.i - b.i)
    .map(({ r }) => r);
  const crules: CRule[] = [];
  const perSegment: number[][] = segs.map(() => []);
  const unknown = new Set<string>();
  for (const r of ordered) {
    const pos = crules.length;
    crules.push({
      name: r.name,
      allow: r.action === "allow",
      users: new Set(r.users),
      groups: new Set(r.groups),
      machineGroups: new Set(r.machineGroups ?? []),
      devices: new Set(r.devices ?? []),
      posture: [...r.postureProfiles],
    });
    for (const name of new Set(r.segments)) {
      const si = segIndex.get(name);
      if (si === undefined) unknown.add(name);
      else perSegment[si].push(pos);
    }
  }
  perSegment.forEach((l, i) => (segs[i].rules = Int32Array.from(l)));

  // Scratch for one decision at a time (the data path is one thread).
  const hits: number[] = [];

  /** Segment indexes of a destination, deduplicated, in segment order. */
  function lookup(
    buf: Uint8Array | null,
    off: number,
    family: 4 | 6,
    protocol: FlowProtocol,
    port: number,
    names: readonly string[] | null,
  ): number[] {
    hits.length = 0;
    if (buf) (family === 4 ? v4 : v6).lookup(buf, off, family === 4 ? 32 : 128, hits);
    if (names) {
      for (const raw of names) {
        const n = normDomain(raw);
        if (n.length === 0 || n.length > 253) continue;
        const e = exact.get(n);
        if (e) hits.push(...e);
        for (let at = n.indexOf("."); at >= 0; at = n.indexOf(".", at + 1)) {
          const w = wildcard.get(n.slice(at + 1));
          if (w) hits.push(...w);
        }
      }
    }
    const bit = PROTO_BIT[protocol];
    const out: number[] = [];
    for (const i of hits) {
      if (out.includes(i)) continue;
      const s = segs[i];
      if ((s.protoMask & bit) === 0) continue;
      if (protocol !== "icmp" && !portIn(s.ports, port)) continue;
      out.push(i);
    }
    return out.sort((a, b) => a - b);
  }

  function decideSegments(
    ps: PreparedSubject,
    posture: PostureStates,
    found: number[],
    privateReason: string | null,
    now: number,
  ): AccessDecision {
    const names = found.map((i) => segs[i].name);
    if (found.length === 0) {
      if (privateReason === null) {
        return {
          allowed: true,
          private: false,
          segments: [],
          rule: null,
          reason: "internet: the destination is in no application segment",
        };
      }
      return {
        allowed: false,
        private: true,
        segments: [],
        rule: null,
        reason: `denied: ${privateReason}, and no application segment covers it (default deny)`,
      };
    }
    // Candidate rules: the union of the segments' rule lists, in rule order.
    let cand: number[];
    if (found.length === 1) cand = Array.from(segs[found[0]].rules);
    else {
      const set = new Set<number>();
      for (const i of found) for (const r of segs[i].rules) set.add(r);
      cand = [...set].sort((a, b) => a - b);
    }
    let blocked: { rule: string; profile: string; reason: string } | null = null;
    for (const pos of cand) {
      const r = crules[pos];
      if (!subjectApplies(r, ps)) continue;
      const fail = failingPosture(r, posture, now);
      if (fail) {
        if (r.allow) blocked ??= { rule: r.name, ...fail };
        continue;
      }
      // A later deny does not hide that passing posture would have allowed.
      if (!r.allow && blocked) break;
      const named = found.filter((i) => segs[i].rules.includes(pos)).map((i) => segs[i].name);
      return {
        allowed: r.allow,
        private: true,
        segments: names,
        rule: r.name,
        reason: `${r.allow ? "allowed" : "denied"}: rule "${r.name}" ${
          r.allow ? "allows" : "denies"
        } ${who(ps.subject)} to reach ${quoteList(named)}`,
      };
    }
    if (blocked) {
      return {
        allowed: false,
        private: true,
        segments: names,
        rule: blocked.rule,
        reason:
          `denied: rule "${blocked.rule}" needs posture "${blocked.profile}", ${blocked.reason}`,
      };
    }
    return {
      allowed: false,
      private: true,
      segments: names,
      rule: null,
      reason: `denied: no rule allows ${who(ps.subject)} to reach ${
        quoteList(names)
      } (default deny)`,
    };
  }

  const prep = (s: AccessSubject | PreparedSubject): PreparedSubject =>
    "identityGroups" in s ? s : prepareSubject(s);

  function destLookup(dest: AccessDestination): number[] {
    const b = dest.ip === undefined ? null : parseIpText(dest.ip.trim());
    return lookup(
      b,
      0,
      b && b.length === 16 ? 6 : 4,
      dest.protocol,
      dest.port ?? 0,
      dest.names ?? null,
    ).slice();
  }

  return {
    segmentCount: segs.length,
    ruleCount: crules.length,
    unknownSegments: [...unknown],
    exactDomains: [...exact.keys()],
    explain(subject, posture, dest, now) {
      const found = destLookup(dest);
      return decideSegments(prep(subject), posture, found, dest.private?.reason ?? null, now);
    },
    decideAt(subject, posture, buf, off, family, protocol, port, names, privateReason, now) {
      const found = lookup(buf, off, family, protocol, port, names);
      return decideSegments(subject, posture, found, privateReason, now);
    },
    segmentsFor(dest) {
      return destLookup(dest).map((i) => segs[i].name);
    },
    addressInSegments(buf, off, family) {
      hits.length = 0;
      (family === 4 ? v4 : v6).lookup(buf, off, family === 4 ? 32 : 128, hits);
      return hits.length > 0;
    },
    nameInSegments(name) {
      const n = normDomain(name);
      if (exact.has(n)) return true;
      for (let at = n.indexOf("."); at >= 0; at = n.indexOf(".", at + 1)) {
        if (wildcard.has(n.slice(at + 1))) return true;
      }
      return false;
    },
    standings(subject, posture, now) {
      const ps = prep(subject);
      return segs.map((s): SegmentStanding => {
        let failing: SegmentStanding | null = null;
        for (const pos of s.rules) {
          const r = crules[pos];
          if (!subjectApplies(r, ps)) continue;
          const fail = failingPosture(r, posture, now);
          if (fail) {
            if (r.allow && !failing) {
              failing = {
                segment: s.name,
                state: "posture_failing",
                rule: r.name,
                reason: `denied: rule "${r.name}" needs posture "${fail.profile}", ${fail.reason}`,
              };
            }
            continue;
          }
          if (failing && !r.allow) return failing;
          return {
            segment: s.name,
            state: r.allow ? "allowed" : "denied",
            rule: r.name,
            reason: `${r.allow ? "allowed" : "denied"}: rule "${r.name}" ${
              r.allow ? "allows" : "denies"
            } ${who(ps.subject)} to reach "${s.name}"`,
          };
        }
        return failing ?? {
          segment: s.name,
          state: "denied",
          rule: null,
          reason: `denied: no rule allows ${who(ps.subject)} to reach "${s.name}" (default deny)`,
        };
      });
    },
  };
}

/**
 * Why a destination is private although no segment holds it — it is not an
 * internet address (`addressScope`) — or null for an internet address. The
 * edge's data plane (with the scope it found on the packet's bytes) and its
 * "why" tool pass it as the private reason.
 */
export function nonInternetReason(
  ip: string,
  scope: AddressScope | null = addressScope(ip),
): string | null {
  return scope === null ? null : `${ip} is a ${scope} address, not the internet`;
}
