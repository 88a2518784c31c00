/**
 * Edge selection, the policy: which of the fleet's healthy edges a connector
 * tunnels to, from round-trip measurements. Pure — the mechanism
 * (src/connector/edge_selector.ts) probes, keeps time and moves the tunnel;
 * this only decides, so every rule is a row in a table test.
 *
 * - The first choice is the nearest answering edge, without the thresholds
 *   below (there is nothing to be loyal to yet): at once when the connector
 *   has no edge, and when it would leave the enrolment's edge (which
 *   answers) only once `confirmations` (2) measurements in a row agree — a
 *   probe slowed by a host busy starting up must not move a fresh tunnel.
 * - An edge the bundle no longer lists (unhealthy, stopped) is left at once
 *   for the nearest answering one.
 * - Otherwise the connector moves only when another edge is clearly better:
 *   at least `minGainRatio` (30 %) and `minGainMs` (10 ms) nearer, in
 *   `confirmations` (2) measurements in a row — a single lucky probe or a
 *   few milliseconds of jitter never moves a tunnel.
 * - `failuresToFailover` (2) failed probes of the current edge in a row, or
 *   the tunnel saying the edge stopped answering, make it a failover: the
 *   next measurement moves to the nearest answering edge without hysteresis.
 * - Coming back to a first edge that returned is the same rule as any move:
 *   clearly nearer, twice. After a failover the edge that failed is measured
 *   again "soon" (not only at the next period) until it answers, because an
 *   edge restarted within its 15 s of grace never leaves the bundle's list,
 *   so no list change would tell the connector to look.
 */

/** Thresholds of the selection. */
export interface SelectionSettings {
  /** Fraction of the current RTT another edge must save (0.3: 30 % nearer). */
  minGainRatio: number;
  /** Milliseconds another edge must save at least. */
  minGainMs: number;
  /** Measurements in a row in which the same edge must be clearly nearer. */
  confirmations: number;
  /** Failed probes of the current edge in a row that make it a failover. */
  failuresToFailover: number;
}

/** The defaults: 30 % and 10 ms nearer, twice; two failed probes fail over. */
export const DEFAULT_SELECTION: SelectionSettings = {
  minGainRatio: 0.3,
  minGainMs: 10,
  confirmations: 2,
  failuresToFailover: 2,
};

/** What the policy remembers between two inputs. */
export interface SelectionState {
  /** The edge in use (null before any choice). */
  current: string | null;
  /** True once a measurement reached some edge. */
  measured: boolean;
  /** The edge that was clearly nearer in the last measurements, and how many in a row. */
  challenger: { id: string; count: number } | null;
  /** Failed probes of the current edge in a row. */
  failures: number;
  /** The edge failed over from, measured soon until it answers again (absent: none). */
  returnTo?: string | null;
}

/** A fresh state; `current` is the edge the connector starts with (its enrolment's). */
export function initialSelection(current: string | null = null): SelectionState {
  return { current, measured: false, challenger: null, failures: 0 };
}

/** What the mechanism tells the policy. */
export type SelectionInput =
  /** A measurement of every listed edge: RTT in ms, or null when it did not answer. */
  | { kind: "measured"; listed: readonly string[]; rtt: ReadonlyMap<string, number | null> }
  /** A probe of the current edge alone (the frequent liveness check). */
  | { kind: "liveness"; ok: boolean }
  /** The tunnel says the current edge stopped answering (handshakes, keepalives). */
  | { kind: "current_failed" };

/** Why the decision is what it is. */
export type SelectionReason =
  | "initial"
  | "nearer"
  | "failover"
  | "unlisted"
  | "stay"
  | "confirming"
  | "suspect"
  | "unreachable";

/** The policy's answer. */
export interface SelectionDecision {
  state: SelectionState;
  /** The edge to move to now (null: stay). */
  moveTo: string | null;
  reason: SelectionReason;
  /**
   * When to measure every edge again: "now" (the current edge looks dead),
   * "soon" (a challenger needs its confirmation), or "periodic".
   */
  measure: "now" | "soon" | "periodic";
}

/** Decides on one input. */
export function decideSelection(
  s: SelectionState,
  input: SelectionInput,
  settings: SelectionSettings = DEFAULT_SELECTION,
): SelectionDecision {
  const d = decide(s, input, settings);
  if (input.kind !== "measured") return d;
  // Watching for the edge failed over from: measured soon until it answers or leaves the list.
  let returnTo: string | null = null;
  if (d.moveTo) returnTo = d.reason === "failover" ? s.current : null;
  else if (s.returnTo && input.listed.includes(s.returnTo)) {
    const back = input.rtt.get(s.returnTo);
    if (back === null || back === undefined) returnTo = s.returnTo;
  }
  return {
    ...d,
    state: { ...d.state, returnTo },
    measure: returnTo !== null && d.measure === "periodic" ? "soon" : d.measure,
  };
}

function decide(
  s: SelectionState,
  input: SelectionInput,
  settings: SelectionSettings,
): SelectionDecision {
  const stay = (
    state: SelectionState,
    reason: SelectionReason,
    measure: SelectionDecision["measure"] = "periodic",
  ): SelectionDecision => ({ state, moveTo: null, reason, measure });
  if (input.kind === "liveness") {
    if (input.ok) return stay({ ...s, failures: 0 }, "stay");
    const failures = s.failures + 1;
    return failures >= settings.failuresToFailover
      ? { state: { ...s, failures }, moveTo: null, reason: "suspect", measure: "now" }
      : stay({ ...s, failures }, "stay");
  }
  if (input.kind === "current_failed") {
    return {
      state: { ...s, failures: Math.max(s.failures, settings.failuresToFailover) },
      moveTo: null,
      reason: "suspect",
      measure: "now",
    };
  }

  // A full measurement.
  const answered = input.listed
    .map((id) => ({ id, rtt: input.rtt.get(id) ?? null }))
    .filter((e): e is { id: string; rtt: number } => e.rtt !== null && Number.isFinite(e.rtt))
    .sort((a, b) => a.rtt - b.rtt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const nearest = answered[0] ?? null;
  const measured = s.measured || nearest !== null;
  const move = (id: string, reason: SelectionReason): SelectionDecision => ({
    state: { current: id, measured, challenger: null, failures: 0 },
    moveTo: id === s.current ? null : id,
    reason: id === s.current ? "stay" : reason,
    measure: "periodic",
  });
  /** `id` won this measurement: moves once it has won `confirmations` in a row. */
  const challenge = (id: string, reason: SelectionReason, nowMeasured: boolean) => {
    const count = s.challenger?.id === id ? s.challenger.count + 1 : 1;
    if (count >= settings.confirmations) return move(id, reason);
    return stay(
      { ...s, measured: nowMeasured, challenger: { id, count }, failures: 0 },
      "confirming",
      "soon",
    );
  };

  if (!nearest) {
    // Nobody answered (our own network is down, probes blocked): keep what we have.
    const failures = s.current !== null ? s.failures + 1 : s.failures;
    return stay({ ...s, measured, challenger: null, failures }, "unreachable");
  }
  if (s.current === null) return move(nearest.id, "initial");
  if (!input.listed.includes(s.current)) return move(nearest.id, "unlisted");

  const cur = answered.find((e) => e.id === s.current);
  if (!cur) {
    const failures = s.failures + 1;
    if (failures >= settings.failuresToFailover) return move(nearest.id, "failover");
    return stay({ ...s, measured, challenger: null, failures }, "stay", "soon");
  }
  if (!s.measured) {
    // The first choice: the nearest edge, without the thresholds (nothing to
    // be loyal to yet) but not on one measurement when it means leaving the
    // enrolment's edge, which answers: a probe slowed at start (the host
    // busy bringing everything up) would otherwise move the tunnel away and
    // keep it there until the next period.
    if (nearest.id === s.current) return move(nearest.id, "initial");
    return challenge(nearest.id, "initial", false);
  }

  const best = answered.find((e) => e.id !== s.current);
  const clearlyBetter = best !== undefined &&
    cur.rtt - best.rtt >= settings.minGainMs &&
    best.rtt <= cur.rtt * (1 - settings.minGainRatio);
  if (!clearlyBetter) return stay({ ...s, measured, challenger: null, failures: 0 }, "stay");
  return challenge(best.id, "nearer", measured);
}
