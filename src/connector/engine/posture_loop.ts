/**
 * Posture reports: the connector collects the facts the policy's posture
 * profiles check, signs them with the device key (src/connector/mod.ts
 * builds the report) and sends them to the edge, which evaluates the
 * profiles itself. It looks every `checkSec` (default 2 s, cheap: only the
 * facts the profiles ask for) and sends when the facts changed — so a file
 * created or removed reaches the edge within seconds — or when the last
 * report is older than `postureSec` or a third of the shortest profile
 * validity, so a healthy device's result never expires at the edge.
 */
import type { PostureReport, PostureVerdict } from "../../control/mod.ts";
import type { PolicyBundle } from "../../policy/types.ts";
import type { EdgeApi } from "../edge_api.ts";

/** Builds a signed posture report for a policy. */
export type CollectPosture = (policy: PolicyBundle) => Promise<PostureReport>;

/** What the loop remembers between looks. */
export interface PostureSendState {
  /** The facts last sent (JSON), or null. */
  lastFacts: string | null;
  /** When they were sent (ms). */
  lastSentAt: number;
  /** The edge's last verdict (JSON), so only a change is told. */
  lastVerdict?: string | null;
  /** Told when the edge's verdict changed. */
  onVerdict?: (v: PostureVerdict) => void;
}

/** The edge's verdict in a sentence for the user ("Posture failing: disk-encrypted (disk not encrypted)"). */
export function describeVerdict(v: PostureVerdict): string {
  if (v.passed) {
    return v.profiles.length
      ? `Posture passes: ${v.profiles.map((p) => p.profile).join(", ")}`
      : "No posture profile applies to this device";
  }
  const failing = v.profiles.filter((p) => !p.passed).map((p) => `${p.profile} (${p.reason})`);
  return `Posture failing: ${failing.join("; ")}`.slice(0, 500);
}

/** The facts part of a signed report's payload, as text, for change detection. */
function factsOf(report: PostureReport): string {
  try {
    return JSON.stringify((JSON.parse(report.payload) as { facts?: unknown }).facts ?? null);
  } catch {
    return report.payload;
  }
}

/** Longest time between two reports under `policy` (ms). */
export function reportPeriodMs(policy: PolicyBundle, postureSec: number): number {
  let ms = postureSec * 1000;
  for (const p of policy.postureProfiles) ms = Math.min(ms, (p.validityMinutes * 60_000) / 3);
  return ms;
}

/**
 * Collects and, when due (see the module comment) or when `state` is not
 * given, sends one report. Returns whether it sent; does nothing before
 * enrolment or without a policy.
 */
export async function reportPostureOnce(
  client: EdgeApi | null,
  policy: PolicyBundle | null,
  collect: CollectPosture | undefined,
  state?: PostureSendState & { now: number; periodMs: number },
): Promise<boolean> {
  if (!client || !policy || !collect) return false;
  const report = await collect(policy);
  if (state) {
    const facts = factsOf(report);
    if (facts === state.lastFacts && state.now - state.lastSentAt < state.periodMs) return false;
    const verdict = await client.reportPosture(report);
    state.lastFacts = facts;
    state.lastSentAt = state.now;
    const v = verdict && JSON.stringify(verdict);
    if (verdict && v !== state.lastVerdict) {
      // The first verdict of a connection is told only when it fails.
      if (state.lastVerdict !== undefined || !verdict.passed) state.onVerdict?.(verdict);
      state.lastVerdict = v;
    }
    return true;
  }
  await client.reportPosture(report);
  return true;
}
