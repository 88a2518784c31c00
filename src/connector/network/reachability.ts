/**
 * Edge reachability and the fail-open / fail-closed decision, as a pure state
 * machine over an injected Clock. The engine reports each attempt to reach
 * the edge (handshake or control request) and asks when to try next.
 *
 *   unknown/reachable ──failure──▶ retrying (quick retries with backoff)
 *   retrying ──`retries` failures in a row──▶ fail_open | fail_closed (per profile)
 *   fail_* ──keeps retrying in the background, backoff capped──▶ reachable on success
 *
 * fail_open means direct internet with a loud, persistent warning;
 * fail_closed means everything blocked except DNS, DHCP and the edge. The
 * engine enforces either; this module only decides and times.
 */
import type { Clock } from "../../clock.ts";
import { withDefaults } from "../../defaults.ts";
import type { FailOpenSettings } from "../../policy/types.ts";

/** Where the tracker is. */
export type ReachabilityState = "unknown" | "reachable" | "retrying" | "fail_open" | "fail_closed";

/** Something the engine must act on (and notify about). */
export type ReachabilityDecision =
  | {
    type: "edge_unreachable";
    action: "fail_open" | "fail_closed";
    failures: number;
    reason: string;
  }
  | {
    type: "edge_recovered";
    /** The state we recovered from. */
    from: "fail_open" | "fail_closed" | "retrying";
    /** How long the edge was unreachable, in ms since the first failure. */
    downMs: number;
  };

/** Backoff between attempts. */
export interface BackoffSettings {
  /** First retry delay (default 1000 ms). */
  initialMs: number;
  /** Upper bound (default 30000 ms). */
  maxMs: number;
  /** Growth factor (default 2). */
  factor: number;
  /** Fraction of random spread, 0..1 (default 0: deterministic). */
  jitter: number;
}

/** Options of the tracker. */
export interface ReachabilityOptions {
  settings: Pick<FailOpenSettings, "edgeUnreachable" | "retries">;
  clock: Clock;
  backoff?: Partial<BackoffSettings>;
  /** Random source in [0, 1) for jitter (default Math.random). */
  random?: () => number;
}

/** Edge reachability tracker (pure; driven by attempt results). */
export class ReachabilityTracker {
  #settings: ReachabilityOptions["settings"];
  readonly #clock: Clock;
  readonly #backoff: BackoffSettings;
  readonly #random: () => number;
  #state: ReachabilityState = "unknown";
  #failures = 0;
  #firstFailure = 0;
  #nextAttempt: number | null = null;
  #lastReason = "";

  constructor(opts: ReachabilityOptions) {
    this.#settings = opts.settings;
    this.#clock = opts.clock;
    this.#backoff = withDefaults(opts.backoff ?? {}, {
      initialMs: 1000,
      maxMs: 30_000,
      factor: 2,
      jitter: 0,
    });
    this.#random = opts.random ?? Math.random;
  }

  /** The current state. */
  get state(): ReachabilityState {
    return this.#state;
  }

  /** Failures in a row since the last success. */
  get failures(): number {
    return this.#failures;
  }

  /** The reason given with the last failure. */
  get lastReason(): string {
    return this.#lastReason;
  }

  /** Monotonic ms of the next attempt, or null when none is due (reachable). */
  nextAttemptAt(): number | null {
    return this.#nextAttempt;
  }

  /** Replaces the settings (a new policy); an active fail state follows the new action. */
  updateSettings(settings: ReachabilityOptions["settings"]): ReachabilityDecision[] {
    this.#settings = settings;
    if (this.#state === "fail_open" || this.#state === "fail_closed") {
      const next = this.#failState();
      if (next !== this.#state) {
        this.#state = next;
        return [{
          type: "edge_unreachable",
          action: next,
          failures: this.#failures,
          reason: this.#lastReason,
        }];
      }
    }
    return [];
  }

  #failState(): "fail_open" | "fail_closed" {
    return this.#settings.edgeUnreachable === "direct" ? "fail_open" : "fail_closed";
  }

  #delay(): number {
    const b = this.#backoff;
    const base = Math.min(b.maxMs, b.initialMs * b.factor ** Math.max(0, this.#failures - 1));
    const spread = base * b.jitter * (this.#random() * 2 - 1);
    return Math.max(0, Math.round(base + spread));
  }

  /** Forgets all failures (a new network is a new chance); no decision is returned. */
  reset(): void {
    this.#state = "unknown";
    this.#failures = 0;
    this.#nextAttempt = null;
    this.#lastReason = "";
  }

  /** Records a failed attempt; returns edge_unreachable when the retries run out. */
  onFailure(reason: string): ReachabilityDecision[] {
    const now = this.#clock.monotonic();
    if (this.#failures === 0) this.#firstFailure = now;
    this.#failures++;
    this.#lastReason = reason;
    this.#nextAttempt = now + this.#delay();
    if (this.#state === "fail_open" || this.#state === "fail_closed") return [];
    if (this.#failures >= this.#settings.retries) {
      this.#state = this.#failState();
      return [{
        type: "edge_unreachable",
        action: this.#state,
        failures: this.#failures,
        reason,
      }];
    }
    this.#state = "retrying";
    return [];
  }

  /** Records a successful attempt; returns edge_recovered when leaving a failure state. */
  onSuccess(): ReachabilityDecision[] {
    const now = this.#clock.monotonic();
    const prev = this.#state;
    const downMs = this.#failures ? now - this.#firstFailure : 0;
    this.#state = "reachable";
    this.#failures = 0;
    this.#nextAttempt = null;
    if (prev === "fail_open" || prev === "fail_closed" || prev === "retrying") {
      return [{ type: "edge_recovered", from: prev, downMs }];
    }
    return [];
  }
}
