/**
 * The connector engine as an explicit state machine: a pure function
 * `(state, event) → { state, effects }`. Everything impure (talking to the
 * edge, bringing the tunnel up, timers) happens in engine.ts, which performs
 * the effects this function returns. Keeping the decisions here, as data,
 * lets the table tests cover every legal transition and prove the illegal
 * ones are refused.
 *
 * Policy inputs the machine needs (what to do when the edge is unreachable,
 * what happens when the captive-portal window ends) ride on the events, so
 * the machine holds no policy of its own. The one exception is strict
 * enforcement, which must outlive the policy that set it: after a logout the
 * policy is forgotten, yet its verdict ("block until the user logs in again")
 * still holds. So the state carries it (`strict`), set by `strict_changed`.
 */
import type { ForwardingAction, NetworkType } from "../policy/types.ts";

/** Tunnel transport in use. */
export type Transport = "udp" | "tls";

/** What network we are on and what the forwarding profile says to do there. */
export interface NetworkVerdict {
  type: NetworkType;
  action: ForwardingAction;
  /** Human sentence: which criteria matched or failed. */
  explanation: string;
  /** Criteria that matched, one sentence each (when detection ran). */
  matched?: string[];
  /** Criteria that did not match, with what was seen instead. */
  unmatched?: string[];
}

/** Why strict enforcement blocks traffic: not enrolled yet, or the user logged out. */
export type StrictBlock = "enrollment" | "login";

/** Names of the states. */
export type StateKind =
  | "unenrolled"
  | "authenticating"
  | "connecting"
  | "connected"
  | "captive_portal"
  | "fail_open"
  | "fail_closed"
  | "disabled"
  | "trusted_network"
  | "signin_required"
  | "error";

/** The machine's state: a kind plus the context every state carries. */
export interface EngineState {
  kind: StateKind;
  /** True once the device holds a credential (enrolled or restored). */
  enrolled: boolean;
  /** The last network verdict, or null before the first evaluation. */
  verdict: NetworkVerdict | null;
  /** authenticating: enrolling with a key, or refreshing a stored enrolment. */
  phase?: "enrolling" | "refreshing";
  /** connected: which transport carries the tunnel. */
  transport?: Transport;
  /** error, fail_open, fail_closed, connecting, signin_required: why we are here; connected: why this transport. */
  reason?: string;
  /** Strict enforcement in force (the connector setting before the first policy, then the policy's); absent = off. */
  strict?: boolean;
  /** Only while not enrolled: strict enforcement blocks traffic, and why. */
  blocked?: StrictBlock;
}

/** Inputs to the machine. */
export type EngineEvent =
  | { type: "enroll_requested" }
  | { type: "enrollment_restored" }
  | { type: "enrolled" }
  | { type: "enroll_failed"; reason: string }
  | { type: "credential_rejected"; reason: string }
  | { type: "signin_lapsed"; reason: string }
  | { type: "reauthenticated" }
  | { type: "tunnel_up"; transport: Transport; reason?: string }
  | { type: "tunnel_down"; reason: string }
  | { type: "handshake_timeout"; mode: "direct" | "blocked"; reason?: string }
  | {
    type: "network_changed";
    verdict: NetworkVerdict;
    /**
     * The same network judged again after a policy change, with the same
     * type and action but new words (other criteria): the verdict is
     * replaced and nothing else happens (no retry from fail-open).
     */
    restated?: boolean;
  }
  | { type: "captive_detected"; windowMin: number }
  | { type: "captive_cleared" }
  | { type: "captive_expired"; then: "enforce" | "fail_open" }
  | { type: "edge_unreachable"; mode: "direct" | "blocked"; reason: string }
  | { type: "edge_reachable" }
  | { type: "policy_updated"; version: string }
  | { type: "disable_requested" }
  | { type: "enable_requested" }
  | { type: "restart_requested" }
  | { type: "logout_requested" }
  | { type: "strict_changed"; strict: boolean };

/** Work the runner must do after a transition. */
export type Effect =
  | { type: "enroll" }
  | { type: "refresh" }
  | { type: "bring_up" }
  | { type: "tear_down" }
  | { type: "forget_enrollment" }
  | { type: "set_fail_mode"; mode: "direct" | "blocked" | null }
  | { type: "start_captive_timer"; minutes: number }
  | { type: "cancel_captive_timer" }
  | { type: "apply_policy" };

/** A transition's outcome: accepted with a new state and effects, or refused. */
export type TransitionResult =
  | { ok: true; state: EngineState; effects: Effect[] }
  | { ok: false; reason: string };

/** The state a connector starts in; `strict` is the strict enforcement in force at start. */
export function initialState(strict = false): EngineState {
  const s: EngineState = { kind: "unenrolled", enrolled: false, verdict: null };
  if (strict) s.strict = true;
  return s;
}

const ALL: readonly StateKind[] = [
  "unenrolled",
  "authenticating",
  "connecting",
  "connected",
  "captive_portal",
  "fail_open",
  "fail_closed",
  "disabled",
  "trusted_network",
  "signin_required",
  "error",
];

/** Every state name, for tests and the console. */
export const STATE_KINDS: readonly StateKind[] = ALL;

/** States in which the device is enrolled and tunnelling is being decided. */
const ACTIVE: ReadonlySet<StateKind> = new Set([
  "connecting",
  "connected",
  "captive_portal",
  "fail_open",
  "fail_closed",
  "trusted_network",
  "error",
]);

/** The context every state carries; `blocked` only while not enrolled. */
function base(s: EngineState): EngineState {
  const b: EngineState = { kind: s.kind, enrolled: s.enrolled, verdict: s.verdict };
  if (s.strict) b.strict = true;
  if (s.blocked && !s.enrolled) b.blocked = s.blocked;
  return b;
}

function to(s: EngineState, kind: StateKind, extra: Partial<EngineState> = {}): EngineState {
  const next = { ...base(s), kind, ...extra };
  if (next.enrolled) delete next.blocked;
  return next;
}

const BLOCK: Effect = { type: "set_fail_mode", mode: "blocked" };
const UNBLOCK: Effect = { type: "set_fail_mode", mode: null };

/**
 * Enrolled and ready: tunnel unless the current network says "none". A
 * strict-enforcement block is lifted only after the tunnel was asked up, so
 * its routes are in place before the firewall goes (no unprotected moment).
 */
function decide(
  s: EngineState,
  extraEffects: Effect[] = [],
  after: Effect[] = [],
): TransitionResult {
  if (s.verdict?.action === "none") {
    return {
      ok: true,
      state: to(s, "trusted_network"),
      effects: [...extraEffects, { type: "tear_down" }, ...after],
    };
  }
  return {
    ok: true,
    state: to(s, "connecting"),
    effects: [...extraEffects, { type: "bring_up" }, ...after],
  };
}

/** Leaving enrolment (logout, refused credential): blocked for `why` when strict. */
function leave(s: EngineState, why: StrictBlock): EngineState {
  const next: EngineState = { kind: "unenrolled", enrolled: false, verdict: s.verdict };
  if (s.strict) {
    next.strict = true;
    next.blocked = why;
  }
  return next;
}

function accept(state: EngineState, effects: Effect[] = []): TransitionResult {
  return { ok: true, state, effects };
}

function refuse(s: EngineState, e: EngineEvent): TransitionResult {
  return { ok: false, reason: `Cannot handle event "${e.type}" in state "${s.kind}"` };
}

/** The transition function: pure, total, and explicit about what it refuses. */
export function transition(s: EngineState, e: EngineEvent): TransitionResult {
  // Events that mean the same thing in (almost) every state.
  switch (e.type) {
    case "disable_requested":
      if (s.kind === "disabled") return refuse(s, e);
      if (s.blocked) {
        // Disabling must not become a way around strict enforcement.
        return {
          ok: false,
          reason: `Cannot handle event "${e.type}" in state "${s.kind}": ${
            blockedSentence(s.blocked).toLowerCase()
          }`,
        };
      }
      return accept(to(s, "disabled"), [
        { type: "cancel_captive_timer" },
        { type: "set_fail_mode", mode: null },
        { type: "tear_down" },
      ]);
    case "enable_requested":
      if (s.kind !== "disabled") return refuse(s, e);
      if (s.enrolled) {
        return accept(to(s, "authenticating", { phase: "refreshing" }), [{ type: "refresh" }]);
      }
      return s.strict
        ? accept(to(s, "unenrolled", { blocked: "enrollment" }), [BLOCK])
        : accept(to(s, "unenrolled"));
    case "logout_requested": {
      if (!s.enrolled) return refuse(s, e);
      const next = leave(s, "login");
      // Blocking before the teardown: the firewall is up before the routes go.
      return accept(next, [
        { type: "cancel_captive_timer" },
        next.blocked ? BLOCK : UNBLOCK,
        { type: "tear_down" },
        { type: "forget_enrollment" },
      ]);
    }
    case "strict_changed":
      return onStrictChanged(s, e.strict);
    case "policy_updated":
      if (!s.enrolled) return refuse(s, e);
      return accept({ ...s }, [{ type: "apply_policy" }]);
    case "restart_requested":
      if (!ACTIVE.has(s.kind)) return refuse(s, e);
      return s.enrolled
        ? accept(to(s, "authenticating", { phase: "refreshing" }), [
          { type: "cancel_captive_timer" },
          { type: "set_fail_mode", mode: null },
          { type: "tear_down" },
          { type: "refresh" },
        ])
        : accept(to(s, "authenticating", { phase: "enrolling" }), [{ type: "enroll" }]);
    case "network_changed":
      if (
        e.restated && s.verdict?.type === e.verdict.type && s.verdict?.action === e.verdict.action
      ) {
        return accept({ ...s, verdict: e.verdict });
      }
      return onNetworkChanged(s, e.verdict);
    case "signin_lapsed":
      return onSignInLapsed(s, e.reason);
  }

  switch (s.kind) {
    case "unenrolled":
      if (e.type === "enroll_requested") {
        if (s.strict && !s.blocked) {
          return accept(to(s, "authenticating", { phase: "enrolling", blocked: "enrollment" }), [
            BLOCK,
            { type: "enroll" },
          ]);
        }
        return accept(to(s, "authenticating", { phase: "enrolling" }), [{ type: "enroll" }]);
      }
      if (e.type === "enrollment_restored") {
        return accept(to(s, "authenticating", { phase: "refreshing", enrolled: true }), [
          ...(s.blocked ? [UNBLOCK] : []),
          { type: "refresh" },
        ]);
      }
      return refuse(s, e);

    case "authenticating":
      switch (e.type) {
        case "enrolled":
          return decide({ ...s, enrolled: true }, [], s.blocked ? [UNBLOCK] : []);
        case "enroll_failed":
          return accept(to(s, "error", { reason: e.reason }));
        case "credential_rejected": {
          const next = leave(s, "enrollment");
          return accept(next, [
            ...(next.blocked && !s.blocked ? [BLOCK] : []),
            { type: "forget_enrollment" },
          ]);
        }
        case "edge_unreachable":
          if (s.phase === "refreshing") {
            // We hold a stored enrolment: the tunnel can still come up without the API.
            return accept(failState(s, e.mode, e.reason), [
              { type: "set_fail_mode", mode: e.mode },
              { type: "bring_up" },
            ]);
          }
          return accept(to(s, "error", { reason: e.reason }));
      }
      return refuse(s, e);

    case "connecting":
    case "connected":
      switch (e.type) {
        case "tunnel_up":
          return accept(to(s, "connected", upExtra(e)));
        case "tunnel_down":
          return accept(to(s, "connecting", { reason: e.reason }));
        case "handshake_timeout":
          return accept(
            failState(s, e.mode, e.reason ?? "No handshake answer from the edge on any transport"),
            [{ type: "set_fail_mode", mode: e.mode }],
          );
        case "edge_unreachable":
          return accept(failState(s, e.mode, e.reason), [{ type: "set_fail_mode", mode: e.mode }]);
        case "edge_reachable":
          return accept({ ...s });
        case "captive_detected":
          return captive(s, e.windowMin);
        case "credential_rejected":
          return credentialRejected(s);
      }
      return refuse(s, e);

    case "captive_portal":
      switch (e.type) {
        case "captive_cleared":
          return decide(s, [{ type: "cancel_captive_timer" }, {
            type: "set_fail_mode",
            mode: null,
          }]);
        case "captive_expired":
          if (e.then === "fail_open") {
            return accept(
              to(s, "fail_open", { reason: "The captive portal window ended before login" }),
              [{ type: "set_fail_mode", mode: "direct" }],
            );
          }
          return decide(s, [{ type: "set_fail_mode", mode: null }]);
        case "tunnel_up":
          return accept(to(s, "connected", upExtra(e)), [
            { type: "cancel_captive_timer" },
            { type: "set_fail_mode", mode: null },
          ]);
        case "captive_detected":
          return accept({ ...s });
      }
      return refuse(s, e);

    case "fail_open":
    case "fail_closed":
      switch (e.type) {
        case "tunnel_up":
          return accept(to(s, "connected", upExtra(e)), [
            { type: "set_fail_mode", mode: null },
          ]);
        case "edge_reachable":
          return decide(s, [{ type: "set_fail_mode", mode: null }]);
        case "edge_unreachable":
          return accept(failState(s, e.mode, e.reason), [{ type: "set_fail_mode", mode: e.mode }]);
        case "handshake_timeout":
          return accept(failState(s, e.mode, s.reason ?? "No handshake answer"), [
            { type: "set_fail_mode", mode: e.mode },
          ]);
        case "tunnel_down":
          return accept({ ...s });
        case "captive_detected":
          return captive(s, e.windowMin);
        case "credential_rejected":
          return credentialRejected(s);
      }
      return refuse(s, e);

    case "trusted_network":
      if (e.type === "credential_rejected") return credentialRejected(s);
      if (e.type === "edge_reachable" || e.type === "edge_unreachable") return accept({ ...s });
      return refuse(s, e);

    case "error":
      if (e.type === "enroll_requested" && !s.enrolled) {
        // A retry after the edge could not be reached for enrolment.
        return accept(to(s, "authenticating", { phase: "enrolling" }), [{ type: "enroll" }]);
      }
      if (e.type === "edge_reachable") {
        return s.enrolled
          ? accept(to(s, "authenticating", { phase: "refreshing" }), [{ type: "refresh" }])
          : refuse(s, e);
      }
      if (e.type === "credential_rejected") return credentialRejected(s);
      return refuse(s, e);

    case "signin_required":
      switch (e.type) {
        case "reauthenticated":
          // The user signed in again: the same enrolment, refreshed.
          return accept(to(s, "authenticating", { phase: "refreshing" }), [
            ...(s.strict ? [UNBLOCK] : []),
            { type: "refresh" },
          ]);
        case "credential_rejected":
          return credentialRejected(s);
        // Nothing else moves it: no tunnel, no retries, until the user signs in.
        case "edge_reachable":
        case "edge_unreachable":
        case "tunnel_up":
        case "tunnel_down":
        case "handshake_timeout":
        case "captive_detected":
        case "captive_cleared":
          return accept({ ...s });
      }
      return refuse(s, e);

    case "disabled":
      return refuse(s, e);
  }
}

/**
 * The edge says the user's sign-in on this device ended (re-authentication
 * every N hours): the tunnel goes (the edge dropped it already), the
 * enrolment stays — no re-enrolment, no retry loop — until the user signs
 * in again. Strict enforcement blocks traffic meanwhile.
 */
function onSignInLapsed(s: EngineState, reason: string): TransitionResult {
  if (!s.enrolled || s.kind === "disabled") return refuse(s, { type: "signin_lapsed", reason });
  if (s.kind === "signin_required") return accept({ ...s, reason });
  return accept(to(s, "signin_required", { reason }), [
    { type: "cancel_captive_timer" },
    s.strict ? BLOCK : UNBLOCK,
    { type: "tear_down" },
  ]);
}

function upExtra(e: { transport: Transport; reason?: string }): Partial<EngineState> {
  return e.reason ? { transport: e.transport, reason: e.reason } : { transport: e.transport };
}

function failState(s: EngineState, mode: "direct" | "blocked", reason: string): EngineState {
  return to(s, mode === "direct" ? "fail_open" : "fail_closed", { reason });
}

function captive(s: EngineState, windowMin: number): TransitionResult {
  return accept(to(s, "captive_portal"), [
    { type: "tear_down" },
    { type: "set_fail_mode", mode: "direct" },
    { type: "start_captive_timer", minutes: windowMin },
  ]);
}

function credentialRejected(s: EngineState): TransitionResult {
  const next = leave(s, "enrollment");
  return accept(next, [
    { type: "cancel_captive_timer" },
    next.blocked ? BLOCK : UNBLOCK,
    { type: "tear_down" },
    { type: "forget_enrollment" },
  ]);
}

/**
 * The strict-enforcement setting changed (first policy, or a new one). It
 * only acts while not enrolled; an enrolled device just remembers it for a
 * later logout. A disabled device is left alone (it cannot be disabled
 * while blocked, and enabling applies the setting).
 */
function onStrictChanged(s: EngineState, strict: boolean): TransitionResult {
  const next: EngineState = { ...s };
  if (strict) next.strict = true;
  else delete next.strict;
  if (s.enrolled || s.kind === "disabled") return accept(next);
  if (strict && !s.blocked) {
    next.blocked = "enrollment";
    return accept(next, [BLOCK]);
  }
  if (!strict && s.blocked) {
    delete next.blocked;
    return accept(next, [UNBLOCK]);
  }
  return accept(next);
}

/** Why traffic is blocked by strict enforcement, as a sentence. */
export function blockedSentence(b: StrictBlock): string {
  return b === "login"
    ? "Traffic blocked until you log in again (strict enforcement)"
    : "Traffic blocked until this device is enrolled (strict enforcement)";
}

function onNetworkChanged(s: EngineState, verdict: NetworkVerdict): TransitionResult {
  const next = { ...s, verdict };
  switch (s.kind) {
    // Remember the verdict; it decides what happens once we get going.
    case "unenrolled":
    case "authenticating":
    case "disabled":
    case "error":
    case "captive_portal":
    case "signin_required":
      return accept(next);
    case "connected":
      if (verdict.action === "none") return decide(next);
      return accept(next);
    case "connecting":
      if (verdict.action === "none") return decide(next);
      return accept(next);
    case "trusted_network":
      if (verdict.action === "none") return accept(next);
      return decide(next);
    case "fail_open":
    case "fail_closed":
      // A new network is a new chance: try the edge again.
      return decide(next, [{ type: "set_fail_mode", mode: null }]);
  }
}

/** One-line description of a state for logs and notifications. */
export function describeState(s: EngineState): string {
  switch (s.kind) {
    case "unenrolled":
      return s.blocked ? blockedSentence(s.blocked) : "Not enrolled";
    case "authenticating":
      if (s.blocked) return `${blockedSentence(s.blocked)}; enrolling with the edge`;
      return s.phase === "enrolling" ? "Enrolling with the edge" : "Refreshing credentials";
    case "connecting":
      return `Connecting the tunnel${s.reason ? ` (${s.reason})` : ""}`;
    case "connected":
      return `Connected over ${s.transport === "tls" ? "TLS" : "UDP"}${
        s.reason ? ` (${s.reason})` : ""
      }`;
    case "captive_portal":
      return "Captive portal detected: traffic goes direct until login";
    case "fail_open":
      return `Internet security off (fail-open): the edge is unreachable${
        s.reason ? ` — ${s.reason}` : ""
      }`;
    case "fail_closed":
      return `Traffic blocked (fail-closed): the edge is unreachable${
        s.reason ? ` — ${s.reason}` : ""
      }`;
    case "disabled":
      return "Disabled by the user";
    case "trusted_network":
      return `On a trusted network: no tunnel needed${
        s.verdict ? ` (${s.verdict.explanation})` : ""
      }`;
    case "signin_required":
      return `Sign-in required: ${s.reason ?? "the sign-in ended"}`;
    case "error":
      if (s.blocked) return `${blockedSentence(s.blocked)}; error: ${s.reason ?? "unknown"}`;
      return `Error: ${s.reason ?? "unknown"}`;
  }
}
