/**
 * The access policy's model: who (subject, with its groups and where they
 * come from), their posture results, a destination, and what a compiled
 * policy answers (decision with rule and reason, a segment's standing).
 * Plain types shared by the evaluator (access.ts), the edge's enforcement
 * and the console's "why?" view.
 */

/** Transport protocol of a flow. */
export type FlowProtocol = "tcp" | "udp" | "icmp";

/** Where a group of a subject comes from. */
export type GroupSource = "idp" | "local" | "machine";

/** Who is behind a device: what rules are written against. */
export interface AccessSubject {
  deviceId: string;
  deviceName: string;
  /** The signed-in user, or null for a machine device. */
  user: string | null;
  groups: readonly { name: string; source: GroupSource }[];
  /** True when no user is signed in (pre-authorised by its enrolment key). */
  machine: boolean;
}

/** The posture result of one profile for a device. */
export interface PostureState {
  passed: boolean;
  /** Why it failed (or passed), in words an admin reads ("disk not encrypted"). */
  reason: string;
  /** When it was evaluated (ms since the epoch). */
  evaluatedAt: number;
  /** After this (ms since the epoch) the result counts as failed. */
  expiresAt: number;
}

/** Posture results by profile name. */
export type PostureStates = ReadonlyMap<string, PostureState>;

/** A destination to decide on. */
export interface AccessDestination {
  /** Destination address (IPv4 or IPv6 text). */
  ip?: string;
  /** Names the destination is known by (edge DNS answers, a device's registered FQDN). */
  names?: readonly string[];
  /** Destination port (ignored for ICMP). */
  port?: number;
  protocol: FlowProtocol;
  /** Set by the caller when the destination is private regardless of segments. */
  private?: { reason: string } | null;
}

/** A decision and the reason for it. */
export interface AccessDecision {
  allowed: boolean;
  /** True when the destination is private (in a segment, or marked so by the caller). */
  private: boolean;
  /** Segments the destination falls in. */
  segments: string[];
  /** The rule that decided, or null for a default. */
  rule: string | null;
  /** One sentence: "allowed: …" or "denied: …" (internet: "internet: …"). */
  reason: string;
}

/** The standing of one segment for one subject (for its policy bundle). */
export interface SegmentStanding {
  segment: string;
  /** allowed: a rule allows it now; posture_failing: one would if posture passed; denied. */
  state: "allowed" | "posture_failing" | "denied";
  rule: string | null;
  reason: string;
}

/** A subject with its condition sets built once (the enforcer keeps one per device). */
export interface PreparedSubject {
  readonly subject: AccessSubject;
  readonly identityGroups: ReadonlySet<string>;
  readonly machineGroups: ReadonlySet<string>;
}

/** Builds the condition sets of a subject. */
export function prepareSubject(subject: AccessSubject): PreparedSubject {
  const identityGroups = new Set<string>();
  const machineGroups = new Set<string>();
  for (const g of subject.groups) {
    (g.source === "machine" ? machineGroups : identityGroups).add(g.name);
  }
  return { subject, identityGroups, machineGroups };
}

/** A compiled, immutable access policy. */
export interface CompiledAccess {
  /** Number of segments and rules compiled. */
  readonly segmentCount: number;
  readonly ruleCount: number;
  /** Rule names that name segments that do not exist (compile warnings). */
  readonly unknownSegments: readonly string[];
  /** Decides on a destination given as text (the console's "why?" view, tests). */
  explain(
    subject: AccessSubject | PreparedSubject,
    posture: PostureStates,
    dest: AccessDestination,
    now: number,
  ): AccessDecision;
  /**
   * The data path's form: the address is read from `buf` at `off` (4 bytes
   * for family 4, 16 for 6), so no text is made for a flow.
   */
  decideAt(
    subject: PreparedSubject,
    posture: PostureStates,
    buf: Uint8Array,
    off: number,
    family: 4 | 6,
    protocol: FlowProtocol,
    port: number,
    names: readonly string[] | null,
    privateReason: string | null,
    now: number,
  ): AccessDecision;
  /** Names of the segments a destination falls in. */
  segmentsFor(dest: AccessDestination): string[];
  /** True when the address at `buf[off..]` is in some segment's CIDRs (any port or protocol). */
  addressInSegments(buf: Uint8Array, off: number, family: 4 | 6): boolean;
  /** Every exact (non-wildcard) segment domain, lowercase (the edge resolves them itself). */
  readonly exactDomains: readonly string[];
  /** True when `name` matches a domain of some segment (the edge DNS remembers its answers). */
  nameInSegments(name: string): boolean;
  /** For each segment, the subject's standing, in segment order. */
  standings(
    subject: AccessSubject | PreparedSubject,
    posture: PostureStates,
    now: number,
  ): SegmentStanding[];
}
