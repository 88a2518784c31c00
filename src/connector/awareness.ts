/**
 * Edge awareness: the runner that drives the two timing policies of network
 * awareness — captive portals (network/captive_controller.ts) and edge
 * reachability (network/reachability.ts) — with real probes and timers, and
 * hands their decisions to the engine.
 *
 * One probe serves both: a plain-HTTP GET of the edge's `/generate_204`
 * outside the tunnel. "captive" feeds the captive controller; "clear" tells
 * both that the path to the edge is open; "unreachable" counts as a failed
 * attempt to reach the edge. The engine adds what it learns elsewhere:
 * tunnel handshakes (success), a tunnel that stopped answering and failed
 * heartbeats (failures).
 *
 * When it probes: at start, on every network change, every `idleProbeMs`
 * while all is well, every `portalProbeMs` while a portal holds us, and at
 * the reachability tracker's backoff times while the edge is failing — the
 * background retries that restore protection on their own.
 */
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import { logger } from "../log.ts";
import type { FailOpenSettings } from "../policy/types.ts";
import type { CaptiveProbeResult } from "./network/captive.ts";
import { CaptiveController, type CaptiveDecision } from "./network/captive_controller.ts";
import {
  type BackoffSettings,
  type ReachabilityDecision,
  ReachabilityTracker,
} from "./network/reachability.ts";

const log = logger("connector.awareness");

/** A decision of either policy, for the engine to apply. */
export type AwarenessDecision = CaptiveDecision | ReachabilityDecision;

/** Options of the runner. */
export interface EdgeAwarenessOptions {
  settings: FailOpenSettings;
  /** The probe; null disables probing (reachability then rests on the engine's feeds). */
  probe: (() => Promise<CaptiveProbeResult>) | null;
  /** False while probing makes no sense (not enrolled, trusted network, disabled). */
  active: () => boolean;
  onDecision: (d: AwarenessDecision) => void;
  clock?: Clock;
  /** Probe interval with no portal (default 60 s). */
  idleProbeMs?: number;
  /** Probe interval while a portal is present (default 3 s). */
  portalProbeMs?: number;
  backoff?: Partial<BackoffSettings>;
}

/** Runs the captive and reachability policies over real time. */
export class EdgeAwareness {
  readonly #o: EdgeAwarenessOptions;
  readonly #clock: Clock;
  readonly captive: CaptiveController;
  readonly reach: ReachabilityTracker;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #probing = false;
  #again = false;
  #stopped = true;
  #attemptDue = false;
  #last: CaptiveProbeResult | null = null;

  /** Builds a stopped runner. */
  constructor(o: EdgeAwarenessOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.captive = new CaptiveController({
      settings: o.settings,
      clock: this.#clock,
      idleProbeMs: o.idleProbeMs,
      portalProbeMs: o.portalProbeMs,
    });
    this.reach = new ReachabilityTracker({
      settings: o.settings,
      clock: this.#clock,
      backoff: o.backoff,
    });
  }

  /** The last probe result, for status. */
  get lastProbe(): CaptiveProbeResult | null {
    return this.#last;
  }

  /** Starts probing (the first probe runs at once). */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.captive.probeSoon();
    this.#schedule();
  }

  /** Stops timers; a probe in flight finishes but changes nothing. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** New policy settings. */
  updateSettings(settings: FailOpenSettings): void {
    this.#o.settings = settings;
    this.captive.updateSettings(settings);
    this.#emit(this.reach.updateSettings(settings));
  }

  /** The network changed: probe now; a new network also forgets portals and failures. */
  networkChanged(newNetwork: boolean): void {
    if (newNetwork) {
      this.captive.reset();
      this.reach.reset();
    } else {
      this.captive.probeSoon();
    }
    this.#kick();
  }

  /** The tunnel completed a handshake or a heartbeat was answered: the edge is there. */
  reachable(): void {
    this.#emit(this.reach.onSuccess());
    this.#schedule();
  }

  /**
   * Something suggests the edge is gone (tunnel silent, heartbeat failed).
   * With a probe, that only triggers an attempt now — the retries the
   * profile counts are probe attempts, so one glitch seen by two observers
   * is not two failures. Without a probe, it counts as a failed attempt.
   */
  failed(reason: string): void {
    if (this.#o.probe) {
      log.info("Checking whether the edge is reachable", { reason });
      this.#attemptDue = true;
      this.#kick();
      return;
    }
    this.#emit(this.reach.onFailure(reason));
    this.#schedule();
  }

  /** Probes now (network change, tests). */
  probeNow(): void {
    this.captive.probeSoon();
    this.#kick();
  }

  #kick(): void {
    if (this.#stopped) return;
    if (this.#probing) {
      this.#again = true;
      return;
    }
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#run(), 0);
  }

  #nextAt(): number {
    const c = this.captive.nextWakeAt();
    const r = this.#o.probe ? this.reach.nextAttemptAt() : null;
    return r === null ? c : Math.min(c, r);
  }

  #schedule(): void {
    if (this.#stopped || this.#probing) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    const now = this.#clock.monotonic();
    // Never spin: a due time in the past still waits a little.
    const wait = Math.min(60_000, Math.max(250, this.#nextAt() - now));
    this.#timer = setTimeout(() => void this.#run(), wait);
  }

  async #run(): Promise<void> {
    this.#timer = null;
    if (this.#stopped) return;
    this.#emit(this.captive.tick());
    const now = this.#clock.monotonic();
    const due = now >= this.#nextAt() - 5 || this.#attemptDue;
    this.#attemptDue = false;
    if (due && this.#o.probe && this.#o.active()) {
      this.#probing = true;
      let result: CaptiveProbeResult;
      try {
        result = await this.#o.probe();
      } catch (e) {
        result = { kind: "unreachable", detail: (e as Error).message };
      } finally {
        this.#probing = false;
      }
      if (this.#stopped) return;
      this.#last = result;
      log.debug("Edge probe", { result: result.kind });
      // Decide only while still active: a probe that raced a move to a
      // trusted network must not pause or fail anything there.
      if (this.#o.active()) {
        this.#emit(this.captive.onProbe(result));
        if (result.kind === "clear") this.#emit(this.reach.onSuccess());
        else if (result.kind === "unreachable") this.#emit(this.reach.onFailure(result.detail));
      } else {
        this.#emit(this.captive.onProbe({ kind: "unreachable", detail: "inactive" }));
      }
    } else if (due) {
      // Nothing to probe now: push the idle schedule on.
      this.#emit(this.captive.onProbe({ kind: "unreachable", detail: "inactive" }));
    }
    if (this.#again) {
      this.#again = false;
      this.captive.probeSoon();
    }
    this.#schedule();
  }

  #emit(ds: AwarenessDecision[]): void {
    for (const d of ds) {
      try {
        this.#o.onDecision(d);
      } catch (e) {
        log.error("Awareness decision handler failed", { error: (e as Error).message });
      }
    }
  }
}
