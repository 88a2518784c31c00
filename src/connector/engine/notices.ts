/**
 * What the user and the log are told when the engine changes state: the
 * state change itself, a new network verdict, protection going off (fail-
 * open, fail-closed) and coming back, strict enforcement starting or
 * stopping to block. Pure: the runner hands in the transition and a little
 * memory of earlier ones and gets back the ordered log lines and
 * notifications to emit, so every message is covered by table tests.
 */
import {
  blockedSentence,
  describeState,
  type EngineEvent,
  type EngineState,
  type NetworkVerdict,
  type StateKind,
} from "../engine_state.ts";

/** A notification for the hub (stored, shown in the console). */
export interface Notice {
  type: string;
  severity: "info" | "warn" | "error";
  message: string;
  data: Record<string, unknown>;
}

/** A log line for the engine's logger. */
export interface LogLine {
  level: "debug" | "info" | "warn" | "error";
  msg: string;
  data?: Record<string, unknown>;
}

/** One output, in the order it must be emitted. */
export type NoticeStep = { log: LogLine } | { notice: Notice };

/** What the notices depend on beyond the transition. */
export interface NoticeContext {
  /** Background enrolment attempts that failed in a row (their retries are not news). */
  enrollFailures: number;
  /** Protection is off because the edge was unreachable, until the tunnel is back. */
  failEpisode: boolean;
  /** Whether any edge host is known (asked only when a block starts). */
  edgeKnown: () => boolean;
}

/** The outputs of one transition and the fail-episode flag to keep. */
export interface TransitionNotices {
  steps: NoticeStep[];
  failEpisode: boolean;
}

/** Severity of the state_changed notice for each state. */
export const STATE_SEVERITY: Record<StateKind, "info" | "warn" | "error"> = {
  unenrolled: "warn",
  authenticating: "info",
  connecting: "info",
  connected: "info",
  captive_portal: "warn",
  fail_open: "warn",
  fail_closed: "error",
  disabled: "warn",
  trusted_network: "info",
  signin_required: "warn",
  error: "error",
};

/**
 * True when two verdicts say the same: type, action, explanation and the
 * criteria matched and not (an edited criterion can leave the sentence the
 * same, "none of 1 criteria matched", while the doctor lists the criteria).
 */
export function sameVerdict(a: NetworkVerdict | null, b: NetworkVerdict | null): boolean {
  const same = (x?: string[], y?: string[]) => (x ?? []).join("\n") === (y ?? []).join("\n");
  return a?.type === b?.type && a?.action === b?.action && a?.explanation === b?.explanation &&
    same(a?.matched, b?.matched) && same(a?.unmatched, b?.unmatched);
}

/** True when the state kind or the transport changed (the rest of the engine's reactions follow only then). */
export function stateChanged(from: EngineState, to: EngineState): boolean {
  return from.kind !== to.kind || from.transport !== to.transport;
}

/** The log lines and notifications for the transition `from` → `to` on `event`. */
export function transitionNotices(
  from: EngineState,
  to: EngineState,
  event: EngineEvent,
  ctx: NoticeContext,
): TransitionNotices {
  const steps: NoticeStep[] = [];
  let failEpisode = ctx.failEpisode;
  const notice = (
    type: string,
    severity: Notice["severity"],
    message: string,
    data: Record<string, unknown>,
  ) => steps.push({ notice: { type, severity, message, data } });
  if (event.type === "network_changed" && !sameVerdict(from.verdict, to.verdict)) {
    const v = to.verdict!;
    notice("network_changed", "info", `Network: ${v.explanation}`, {
      type: v.type,
      action: v.action,
      matched: v.matched ?? [],
      unmatched: v.unmatched ?? [],
    });
  }
  if (!stateChanged(from, to)) return { steps, failEpisode };
  const data = {
    from: from.kind,
    to: to.kind,
    event: event.type,
    reason: to.reason ?? null,
    transport: to.transport ?? null,
    /** Strict enforcement: traffic blocked until "enrolled" or "login", else null. */
    blockedUntil: to.blocked ? (to.blocked === "login" ? "login" : "enrolled") : null,
  };
  const level = STATE_SEVERITY[to.kind];
  if (isRetryFlip(from, to, ctx.enrollFailures)) {
    // Background enrolment retries: the first failure was told; the
    // authenticating ↔ error flips of each later attempt are not news.
    steps.push({ log: { level: "debug", msg: `State ${from.kind} → ${to.kind}`, data } });
  } else {
    steps.push({ log: { level, msg: `State ${from.kind} → ${to.kind}`, data } });
    notice("state_changed", level, describeState(to), data);
  }
  if (to.kind === "fail_open" || to.kind === "fail_closed") failEpisode = true;
  if (to.kind === "fail_open") {
    notice(
      "security_off",
      "error",
      `Internet security off (fail-open): you are NOT protected — the edge cannot be reached${
        to.reason ? ` (${to.reason})` : ""
      }. Traffic goes direct, unprotected, until the edge answers again; retrying in the background.`,
      { reason: to.reason ?? null },
    );
  } else if (to.kind === "fail_closed") {
    notice(
      "traffic_blocked",
      "error",
      `Traffic blocked (fail-closed): the edge cannot be reached${
        to.reason ? ` (${to.reason})` : ""
      }. Only DNS, DHCP and the edge are allowed until it answers again; retrying in the background.`,
      { reason: to.reason ?? null },
    );
  } else if (failEpisode && to.kind === "connected") {
    failEpisode = false;
    notice(
      "protection_restored",
      "info",
      `Protection restored: the tunnel is up again over ${to.transport === "tls" ? "TLS" : "UDP"}`,
      { from: from.kind },
    );
  } else if (to.kind === "trusted_network" || to.kind === "unenrolled") {
    failEpisode = false;
  }
  steps.push(...strictSteps(from, to, ctx.edgeKnown));
  return { steps, failEpisode };
}

/** True for the state flips of a background enrolment retry after the first failure. */
export function isRetryFlip(from: EngineState, to: EngineState, enrollFailures: number): boolean {
  if (to.enrolled) return false;
  if (from.kind === "error" && to.kind === "authenticating") return enrollFailures > 0;
  if (from.kind === "authenticating" && to.kind === "error") return enrollFailures > 1;
  return false;
}

/** Tells the user when strict enforcement starts or stops blocking, and why. */
function strictSteps(from: EngineState, to: EngineState, edgeKnown: () => boolean): NoticeStep[] {
  if (to.blocked && to.blocked !== from.blocked) {
    const allowed = edgeKnown()
      ? "only DNS, DHCP and the edge are allowed"
      : "only DNS and DHCP are allowed (no edge is known yet: start with an enrolment key)";
    const sentence = blockedSentence(to.blocked);
    return [
      { log: { level: "warn", msg: sentence, data: { until: to.blocked } } },
      {
        notice: {
          type: "strict_enforcement",
          severity: "error",
          message: `${sentence}: ${allowed}.`,
          data: { until: to.blocked === "login" ? "login" : "enrolled" },
        },
      },
    ];
  }
  if (from.blocked && !to.blocked) {
    const why = to.enrolled
      ? "the device is enrolled"
      : to.strict
      ? "the block no longer applies"
      : "the policy no longer requires it";
    return [
      { log: { level: "info", msg: `Strict enforcement lifted: ${why}` } },
      {
        notice: {
          type: "strict_enforcement_lifted",
          severity: "info",
          message: `Traffic unblocked: ${why}.`,
          data: {},
        },
      },
    ];
  }
  return [];
}
