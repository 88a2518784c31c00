/**
 * Edge selection, the mechanism: measures the round trip to every edge the
 * bundle lists (the bootstrap listener's captive-portal probe, outside the
 * tunnel — the least of two probes per edge), feeds the figures to the pure
 * policy (src/policy/edge_selection.ts) and tells the engine when to move.
 *
 * When it measures: when the list of edges changes, on every network
 * change, every 5 minutes, 10 s after a challenger first looked clearly
 * nearer (its confirmation), and at once when the current edge looks dead.
 * Between measurements it probes the current edge alone every 2 s (only
 * when there is another edge to move to) and at once again after a failed
 * probe, so a dead edge is left in about 5 s: two probes time out (1.5 s
 * each), then a measurement of the others (1.5 s at most).
 */
import { type Clock, systemClock, systemTimers, type TimerId, type Timers } from "../clock.ts";
import { logger } from "../log.ts";
import {
  decideSelection,
  DEFAULT_SELECTION,
  initialSelection,
  type SelectionDecision,
  type SelectionInput,
  type SelectionReason,
  type SelectionSettings,
  type SelectionState,
} from "../policy/edge_selection.ts";
import type { BundleEdge } from "../policy/types.ts";

const log = logger("connector.edges");

/** Measures the round trip to an edge in ms; null when it did not answer. */
export type EdgeProbe = (edge: BundleEdge, signal: AbortSignal) => Promise<number | null>;

/** Timing of the selector. */
export interface EdgeSelectorTiming {
  /** Between two periodic measurements (default 5 min). */
  measureEveryMs: number;
  /** Between a challenger's first clear win and its confirmation (default 10 s). */
  confirmAfterMs: number;
  /** Between two liveness probes of the current edge (default 2 s). */
  livenessEveryMs: number;
  /** A probe that has not answered by then failed (default 1.5 s). */
  probeTimeoutMs: number;
  /** Probes per edge in a measurement, the least counts (default 2). */
  samples: number;
}

/** The default timing. */
export const DEFAULT_TIMING: EdgeSelectorTiming = {
  measureEveryMs: 300_000,
  confirmAfterMs: 10_000,
  livenessEveryMs: 2_000,
  probeTimeoutMs: 1_500,
  samples: 2,
};

/** One edge as the console shows it. */
export interface EdgeChoiceView {
  id: string;
  name: string;
  region: string;
  /** The last measured round trip (ms), or null when it did not answer or was not measured. */
  rttMs: number | null;
}

/** What the selector shows about itself. */
export interface EdgeSelectionStatus {
  current: EdgeChoiceView | null;
  alternatives: EdgeChoiceView[];
  /** ISO time of the last measurement of every edge, or null. */
  measuredAt: string | null;
  /** The last move, or null. */
  lastMove: { at: string; from: string | null; to: string; reason: SelectionReason } | null;
  /** The reason of the last decision (e.g. "confirming" while a nearer edge proves itself). */
  lastDecision: SelectionReason | null;
}

/** Options of an EdgeSelector. */
export interface EdgeSelectorOptions {
  probe: EdgeProbe;
  /** Called when the connector must move to `edge` (its tunnel, API and probes go there). */
  onMove: (edge: BundleEdge, reason: SelectionReason, from: BundleEdge | null) => void;
  timers?: Timers;
  clock?: Clock;
  timing?: Partial<EdgeSelectorTiming>;
  settings?: SelectionSettings;
}

/** Chooses the edge the connector uses, and moves it when the policy says so. */
export class EdgeSelector {
  #o: EdgeSelectorOptions;
  #t: EdgeSelectorTiming;
  #timers: Timers;
  #clock: Clock;
  #edges: BundleEdge[] = [];
  #state: SelectionState = initialSelection();
  #rtt = new Map<string, number | null>();
  #measuredAt: number | null = null;
  #lastMove: EdgeSelectionStatus["lastMove"] = null;
  #lastDecision: SelectionReason | null = null;
  #running = false;
  #busy: Promise<void> | null = null;
  #again = false;
  #measureTimer: TimerId | null = null;
  #liveTimer: TimerId | null = null;
  #abort = new AbortController();

  constructor(opts: EdgeSelectorOptions) {
    this.#o = opts;
    this.#t = { ...DEFAULT_TIMING, ...opts.timing };
    this.#timers = opts.timers ?? systemTimers;
    this.#clock = opts.clock ?? systemClock;
  }

  /**
   * The edges to choose from (the bundle's healthy edges, or the enrolment's
   * edge alone) and the one in use before any measurement. A changed list
   * is measured at once.
   */
  setEdges(edges: readonly BundleEdge[], startWith: string | null): void {
    const before = JSON.stringify(this.#edges.map((e) => [e.id, e.bootstrapUrl, e.publicKey]));
    this.#edges = [...edges];
    if (this.#state.current === null && startWith !== null) {
      this.#state = initialSelection(startWith);
    }
    const after = JSON.stringify(this.#edges.map((e) => [e.id, e.bootstrapUrl, e.publicKey]));
    if (before !== after && this.#running) void this.measureNow("edges changed");
  }

  /** Every edge the connector may use (for routes that keep them outside the tunnel). */
  get edges(): readonly BundleEdge[] {
    return this.#edges;
  }

  /** The edge in use, or null when none of the listed edges is chosen yet. */
  current(): BundleEdge | null {
    return this.#edges.find((e) => e.id === this.#state.current) ?? null;
  }

  /** Starts measuring (at once) and probing. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    void this.measureNow("start");
  }

  /** Stops every timer and probe in flight. */
  stop(): void {
    this.#running = false;
    this.#abort.abort();
    this.#clear();
  }

  /** Stops and forgets the edges and the choice (the enrolment was removed). */
  reset(): void {
    this.stop();
    this.#edges = [];
    this.#state = initialSelection();
    this.#rtt.clear();
    this.#measuredAt = null;
    this.#lastMove = null;
    this.#lastDecision = null;
  }

  /** The network changed: the nearest edge may be another now. */
  networkChanged(): void {
    if (this.#running) void this.measureNow("network change");
  }

  /** The tunnel says the current edge stopped answering: measure and fail over now. */
  currentFailed(why: string): void {
    if (!this.#running || this.#edges.length < 2) return;
    log.info("The current edge stopped answering the tunnel", { why });
    this.#apply(decideSelection(this.#state, { kind: "current_failed" }, this.#settings()));
  }

  /** Measures every listed edge now (one measurement at a time; a request during one runs after it). */
  measureNow(why: string): Promise<void> {
    if (!this.#running) return Promise.resolve();
    if (this.#busy) {
      this.#again = true;
      return this.#busy;
    }
    this.#clear();
    const run = async (): Promise<SelectionDecision | null> => {
      let last: SelectionDecision | null = null;
      do {
        this.#again = false;
        log.debug("Measuring the edges", { why, edges: this.#edges.length });
        const listed = this.#edges.map((e) => e.id);
        const rtt = await this.#measureAll();
        if (!this.#running) return null;
        this.#rtt = rtt;
        this.#measuredAt = this.#clock.now();
        last = decideSelection(this.#state, { kind: "measured", listed, rtt }, this.#settings());
        this.#apply(last, false);
      } while (this.#again && this.#running);
      return last;
    };
    this.#busy = run().then((last) => {
      this.#busy = null;
      // What follows the measurement: the confirmation soon, or the next period.
      if (last && this.#running) this.#follow(last);
    }, (e) => {
      this.#busy = null;
      log.warn("Cannot measure the edges", { error: (e as Error).message });
      if (this.#running) this.#schedule(this.#t.measureEveryMs);
    });
    return this.#busy;
  }

  /** What the console shows: the chosen edge, its RTT and the alternatives. */
  status(): EdgeSelectionStatus {
    const view = (e: BundleEdge): EdgeChoiceView => ({
      id: e.id,
      name: e.name,
      region: e.region,
      rttMs: this.#rtt.get(e.id) ?? null,
    });
    const cur = this.current();
    return {
      current: cur ? view(cur) : null,
      alternatives: this.#edges.filter((e) => e !== cur).map(view),
      measuredAt: this.#measuredAt === null ? null : new Date(this.#measuredAt).toISOString(),
      lastMove: this.#lastMove,
      lastDecision: this.#lastDecision,
    };
  }

  #settings(): SelectionSettings {
    return this.#o.settings ?? DEFAULT_SELECTION;
  }

  #apply(d: SelectionDecision, follow = true): void {
    const from = this.current();
    if (d.reason === "confirming" && this.#lastDecision !== "confirming") {
      // Why the connector may move in a few seconds, for whoever reads the log.
      const challenger = this.#edges.find((e) => e.id === d.state.challenger?.id);
      log.info("Another edge looks clearly nearer; measuring again to confirm", {
        current: from?.name ?? null,
        currentRttMs: from ? this.#rtt.get(from.id) ?? null : null,
        challenger: challenger?.name ?? null,
        challengerRttMs: challenger ? this.#rtt.get(challenger.id) ?? null : null,
      });
    }
    this.#state = d.state;
    this.#lastDecision = d.reason;
    if (d.moveTo) {
      const to = this.#edges.find((e) => e.id === d.moveTo);
      if (to) {
        this.#lastMove = {
          at: new Date(this.#clock.now()).toISOString(),
          from: from?.name ?? null,
          to: to.name,
          reason: d.reason,
        };
        log.info("Moving to another edge", {
          from: from?.name ?? null,
          to: to.name,
          reason: d.reason,
          rttMs: this.#rtt.get(to.id) ?? null,
        });
        try {
          this.#o.onMove(to, d.reason, from);
        } catch (e) {
          log.error("Edge move listener failed", { error: String(e) });
        }
      }
    }
    if (follow && this.#running) this.#follow(d);
  }

  /** Measures now, soon (a challenger's confirmation) or at the next period, as `d` says. */
  #follow(d: SelectionDecision): void {
    if (d.measure === "now") {
      void this.measureNow(d.reason);
      return;
    }
    this.#schedule(d.measure === "soon" ? this.#t.confirmAfterMs : this.#t.measureEveryMs);
  }

  #schedule(measureInMs: number): void {
    this.#clear();
    this.#measureTimer = this.#timers.setTimeout(() => {
      this.#measureTimer = null;
      void this.measureNow("periodic");
    }, measureInMs);
    this.#scheduleLiveness(this.#t.livenessEveryMs);
  }

  #scheduleLiveness(ms: number): void {
    if (this.#liveTimer !== null) this.#timers.clearTimeout(this.#liveTimer);
    this.#liveTimer = null;
    // With one edge there is nowhere to fail over to: no liveness probes.
    if (!this.#running || this.#edges.length < 2 || !this.current()) return;
    this.#liveTimer = this.#timers.setTimeout(() => {
      this.#liveTimer = null;
      void this.#liveness();
    }, ms);
  }

  async #liveness(): Promise<void> {
    const cur = this.current();
    if (!cur || this.#busy || !this.#running) return;
    const rtt = await this.#probe(cur);
    if (!this.#running || this.#busy || this.current() !== cur) return;
    const input: SelectionInput = { kind: "liveness", ok: rtt !== null };
    const d = decideSelection(this.#state, input, this.#settings());
    this.#state = d.state;
    if (d.measure === "now") {
      this.#lastDecision = d.reason;
      void this.measureNow("the current edge did not answer");
      return;
    }
    // A failed probe is checked again at once, so a dead edge is known in two timeouts.
    this.#scheduleLiveness(rtt === null ? 0 : this.#t.livenessEveryMs);
  }

  async #measureAll(): Promise<Map<string, number | null>> {
    const out = new Map<string, number | null>();
    await Promise.all(this.#edges.map(async (e) => {
      let best: number | null = null;
      for (let i = 0; i < this.#t.samples; i++) {
        const rtt = await this.#probe(e);
        if (rtt === null) break; // a timeout says enough; do not wait for a second
        best = best === null ? rtt : Math.min(best, rtt);
      }
      out.set(e.id, best);
    }));
    return out;
  }

  /** One probe with the selector's timeout; null on failure. */
  async #probe(e: BundleEdge): Promise<number | null> {
    const ac = new AbortController();
    const onStop = () => ac.abort();
    this.#abort.signal.addEventListener("abort", onStop, { once: true });
    let timer: TimerId | null = null;
    const timeout = new Promise<null>((resolve) => {
      timer = this.#timers.setTimeout(() => {
        ac.abort();
        resolve(null);
      }, this.#t.probeTimeoutMs);
    });
    try {
      const rtt = await Promise.race([
        this.#o.probe(e, ac.signal).catch(() => null),
        timeout,
      ]);
      return rtt !== null && Number.isFinite(rtt) && rtt >= 0 ? rtt : null;
    } finally {
      if (timer !== null) this.#timers.clearTimeout(timer);
      this.#abort.signal.removeEventListener("abort", onStop);
    }
  }

  #clear(): void {
    if (this.#measureTimer !== null) this.#timers.clearTimeout(this.#measureTimer);
    if (this.#liveTimer !== null) this.#timers.clearTimeout(this.#liveTimer);
    this.#measureTimer = null;
    this.#liveTimer = null;
  }
}
