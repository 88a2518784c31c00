/**
 * Posture evaluation: compares facts collected on the device (src/posture
 * gathers them) with the typed checks of posture profiles. Every result keeps
 * expected and actual values so a failure explains itself in the console.
 *
 * A fact the collector could not gather (undefined) fails its check with
 * actual "unknown (not collected)": posture must fail closed.
 */
import type { PostureCheck, PostureProfile } from "./types.ts";
import type { PostureState } from "./access_types.ts";
import { compareVersions } from "../version.ts";

/** One certificate found in the device's stores. */
export interface CertificateFact {
  /** Subject distinguished name, e.g. "CN=laptop-17, O=Example Corp". */
  subject: string;
  /** Issuer distinguished name, when known. */
  issuer?: string;
  /** Expiry as epoch milliseconds, when known; expired certificates do not count. */
  notAfter?: number;
  /** The store holds the certificate's private key (undefined: not looked at). */
  hasKey?: boolean;
  /** The store directory it was found in. */
  store?: string;
}

/** One EDR service the collector looked for. */
export interface ServiceFact {
  running: boolean;
  /** SHA-256 hex of the running binary, when it runs and could be read. */
  sha256?: string;
}

/** One file the collector looked at. */
export interface FileFact {
  exists: boolean;
  /** SHA-256 hex of the contents, when the check asked for it and the file exists. */
  sha256?: string;
}

/** Facts collected on the device; any may be missing when not collected. */
export interface PostureFacts {
  osVersion?: string;
  /** Names of running processes (executable base names). */
  processes?: readonly string[];
  /** Path → what was found there. */
  files?: ReadonlyMap<string, FileFact>;
  diskEncryption?: boolean;
  firewallEnabled?: boolean;
  certificates?: readonly CertificateFact[];
  /** EDR service name → what was found. */
  services?: ReadonlyMap<string, ServiceFact>;
  connectorVersion?: string;
}

/**
 * One posture check result: expected vs actual, so a failure explains itself.
 * Connectors report these to the edge (src/http/api/schemas.ts validates them
 * on the wire).
 */
export interface PostureResult {
  profile: string;
  check: string;
  passed: boolean;
  expected: string;
  actual: string;
}

/** Results of evaluating several profiles. */
export interface PostureEvaluation {
  results: PostureResult[];
  /** Names of the profiles whose every check passed. */
  passedProfiles: string[];
}

const UNKNOWN = "unknown (not collected)";

/** Splits a DN into normalised "attr=value" parts ("CN = A, o=B" → ["cn=a", "o=b"]). */
function dnParts(dn: string): string[] {
  return dn.split(/\s*[,/;]\s*/).filter(Boolean).map((part) => {
    const eq = part.indexOf("=");
    if (eq === -1) return part.trim().toLowerCase();
    return `${part.slice(0, eq).trim().toLowerCase()}=${
      part.slice(eq + 1).trim().toLowerCase().replace(/\s+/g, " ")
    }`;
  });
}

/** True when every attribute of `expected` appears in `actual` (order-free, case-insensitive). */
export function subjectMatches(expected: string, actual: string): boolean {
  const want = dnParts(expected);
  if (want.length === 0) return false;
  const have = new Set(dnParts(actual));
  return want.every((w) => have.has(w));
}

/** A short name for a check, unique within a profile for typical use. */
export function checkName(check: PostureCheck): string {
  switch (check.type) {
    case "process_running":
      return `process_running:${check.name}`.slice(0, 100);
    case "file_exists":
      return `file_exists:${check.path}`.slice(0, 100);
    case "certificate":
      return `certificate:${check.issuer ?? check.subject}`.slice(0, 100);
    case "edr":
      return `edr:${check.service}`.slice(0, 100);
    default:
      return check.type;
  }
}

/** Outcome of one check: passed, with the expected and actual values as text. */
export interface CheckOutcome {
  passed: boolean;
  expected: string;
  actual: string;
}

function minVersion(min: string, actual: string | undefined): CheckOutcome {
  const expected = `>= ${min}`;
  if (actual === undefined) return { passed: false, expected, actual: UNKNOWN };
  const c = compareVersions(actual, min);
  if (c === null) return { passed: false, expected, actual: `${actual} (not a version)` };
  return { passed: c >= 0, expected, actual };
}

function bool(yes: string, no: string, value: boolean | undefined): CheckOutcome {
  if (value === undefined) return { passed: false, expected: yes, actual: UNKNOWN };
  return { passed: value, expected: yes, actual: value ? yes : no };
}

/** What a certificate check asks for, in words. */
function certificateWanted(check: Extract<PostureCheck, { type: "certificate" }>): string {
  const parts = [
    check.issuer ? `issued by ${check.issuer}` : "",
    check.subject ? `with subject ${check.subject}` : "",
    check.store ? `in ${check.store}` : "",
  ].filter(Boolean);
  return `certificate ${parts.join(" ")} with its private key`;
}

function certificate(
  check: Extract<PostureCheck, { type: "certificate" }>,
  facts: PostureFacts,
  now: number,
): CheckOutcome {
  const expected = certificateWanted(check);
  if (!facts.certificates) return { passed: false, expected, actual: UNKNOWN };
  const named = facts.certificates.filter((c) =>
    (!check.store || c.store === undefined || c.store === check.store) &&
    (!check.issuer || (c.issuer !== undefined && subjectMatches(check.issuer, c.issuer))) &&
    (!check.subject || subjectMatches(check.subject, c.subject))
  );
  const current = named.filter((c) => c.notAfter === undefined || c.notAfter > now);
  const good = current.find((c) => c.hasKey === true);
  if (good) return { passed: true, expected, actual: `certificate ${good.subject} with its key` };
  if (current.length) {
    return { passed: false, expected, actual: `certificate ${current[0].subject} without its key` };
  }
  if (named.length) {
    return { passed: false, expected, actual: `certificate ${named[0].subject} expired` };
  }
  return {
    passed: false,
    expected,
    actual: `no matching certificate among ${facts.certificates.length}`,
  };
}

function edr(check: Extract<PostureCheck, { type: "edr" }>, facts: PostureFacts): CheckOutcome {
  const want = check.sha256?.toLowerCase();
  const expected = want
    ? `service ${check.service} running from a binary with sha256 ${want}`
    : `service ${check.service} running`;
  const f = facts.services?.get(check.service);
  if (!f) return { passed: false, expected, actual: UNKNOWN };
  if (!f.running) {
    return { passed: false, expected, actual: `service ${check.service} not running` };
  }
  if (!want) return { passed: true, expected, actual: `service ${check.service} running` };
  if (!f.sha256) {
    return { passed: false, expected, actual: `service ${check.service} binary sha256 ${UNKNOWN}` };
  }
  const got = f.sha256.toLowerCase();
  return {
    passed: got === want,
    expected,
    actual: `service ${check.service} running from a binary with sha256 ${got}`,
  };
}

/** Evaluates one check against the facts. */
export function evaluateCheck(
  check: PostureCheck,
  facts: PostureFacts,
  now: number = Date.now(),
): CheckOutcome {
  switch (check.type) {
    case "os_version":
      return minVersion(check.min, facts.osVersion);
    case "connector_version":
      return minVersion(check.min, facts.connectorVersion);
    case "process_running": {
      const expected = `process ${check.name} running`;
      if (!facts.processes) return { passed: false, expected, actual: UNKNOWN };
      const running = facts.processes.includes(check.name);
      return {
        passed: running,
        expected,
        actual: running ? `process ${check.name} running` : `process ${check.name} not running`,
      };
    }
    case "file_exists": {
      const want = check.sha256?.toLowerCase();
      const expected = want ? `${check.path} with sha256 ${want}` : `${check.path} exists`;
      const f = facts.files?.get(check.path);
      if (!f) return { passed: false, expected, actual: UNKNOWN };
      if (!f.exists) return { passed: false, expected, actual: `${check.path} missing` };
      if (!want) return { passed: true, expected, actual: `${check.path} exists` };
      if (!f.sha256) return { passed: false, expected, actual: `${check.path} sha256 ${UNKNOWN}` };
      const got = f.sha256.toLowerCase();
      return { passed: got === want, expected, actual: `${check.path} with sha256 ${got}` };
    }
    case "disk_encryption":
      return bool("disk encrypted", "disk not encrypted", facts.diskEncryption);
    case "firewall_enabled":
      return bool(
        "firewall dropping inbound",
        "no firewall dropping inbound",
        facts.firewallEnabled,
      );
    case "certificate":
      return certificate(check, facts, now);
    case "edr":
      return edr(check, facts);
  }
}

function clip(s: string): string {
  return s.length > 1024 ? s.slice(0, 1021) + "..." : s;
}

/** What evaluation reads of a profile (its settings may be left to their defaults). */
export type ProfileInput =
  & Pick<PostureProfile, "name" | "checks">
  & Partial<Pick<PostureProfile, "validityMinutes" | "reevaluateMinutes">>;

/** Evaluates every check of every profile; a profile passes when all its checks pass. */
export function evaluatePosture(
  profiles: readonly ProfileInput[],
  facts: PostureFacts,
  now: number = Date.now(),
): PostureEvaluation {
  const results: PostureResult[] = [];
  const passedProfiles: string[] = [];
  for (const profile of profiles) {
    let all = true;
    for (const check of profile.checks) {
      const o = evaluateCheck(check, facts, now);
      all &&= o.passed;
      results.push({
        profile: profile.name.slice(0, 100),
        check: checkName(check),
        passed: o.passed,
        expected: clip(o.expected),
        actual: clip(o.actual),
      });
    }
    if (all) passedProfiles.push(profile.name);
  }
  return { results, passedProfiles };
}

/** The edge's standing of one profile for a device: the state enforcement uses, and why. */
export interface ProfileStanding extends PostureState {
  /** Every check's outcome, expected vs actual. */
  results: PostureResult[];
  /** When the edge should evaluate the facts again (profile's reevaluateMinutes). */
  reevaluateAt: number;
}

/**
 * Judges a device's reported facts against every profile, as the edge does
 * with a verified report. The result holds until the report is older than
 * the profile's validity (counted from `collectedAt`, never later than
 * `now`, so a report dated in the future cannot extend its own life); the
 * reason names the first failing check's actual value ("/etc/x missing"),
 * which the access decision quotes ("device reports /etc/x missing").
 */
export function judgeProfiles(
  profiles: readonly ProfileInput[],
  facts: PostureFacts,
  collectedAt: number,
  now: number,
): Map<string, ProfileStanding> {
  const at = Math.min(collectedAt, now);
  const out = new Map<string, ProfileStanding>();
  for (const profile of profiles) {
    const { results } = evaluatePosture([profile], facts, now);
    const failed = results.find((r) => !r.passed);
    out.set(profile.name, {
      passed: !failed,
      reason: failed ? failed.actual : "every check passed",
      evaluatedAt: now,
      expiresAt: at + (profile.validityMinutes ?? 15) * 60_000,
      reevaluateAt: now + (profile.reevaluateMinutes ?? 5) * 60_000,
      results,
    });
  }
  return out;
}
