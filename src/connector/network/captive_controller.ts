/**
 * The timing policy for captive portals, as a pure state machine over an
 * injected Clock. It never sleeps or probes itself: the engine feeds it probe
 * results, calls `tick()` when `nextWakeAt()` comes, and applies the
 * decisions it returns.
 *
 *   clear ──captive──▶ portal (enforcement paused for the window, probe every 3 s)
 *   portal ──clear──▶ clear (protection resumes at once)
 *   portal ──window ends──▶ expired (the profile decides: enforce, or fail open)
 *   expired ──clear──▶ clear
 *
 * "unreachable" probe results never change the state: an unreachable edge is
 * the reachability tracker's business, and a portal that drops the probe
 * mid-sign-in must not end the window early. A portal seen again while
 * expired does not open a new window (that would pause protection forever);
 * `reset()` (a genuinely new network) does.
 */
import type { Clock } from "../../clock.ts";
import type { FailOpenSettings } from "../../policy/types.ts";
import type { CaptiveProbeResult } from "./captive.ts";

/** Where the controller is. */
export type CaptiveState = "clear" | "portal" | "expired";

/** What enforcement should be right now because of portals. */
export type CaptiveEnforcement = "on" | "paused" | "fail_open";

/** Something the engine must act on (and notify about). */
export type CaptiveDecision =
  | {
    type: "portal_detected";
    /** Monotonic ms when the window ends. */
    until: number;
    windowMin: number;
    location?: string;
    detail: string;
  }
  | { type: "portal_cleared"; /** How long the portal held us, in ms. */ heldMs: number }
  | { type: "window_expired"; action: "enforce" | "fail_open" };

/** Options of the controller. */
export interface CaptiveControllerOptions {
  settings: Pick<FailOpenSettings, "captivePortalWindowMin" | "captivePortalExpiry">;
  clock: Clock;
  /** Probe interval while a portal is present (default 3000 ms). */
  portalProbeMs?: number;
  /** Probe interval while no portal is present (default 60000 ms). */
  idleProbeMs?: number;
}

/** Captive-portal timing policy (pure; driven by probe results and ticks). */
export class CaptiveController {
  #settings: CaptiveControllerOptions["settings"];
  readonly #clock: Clock;
  readonly #portalProbeMs: number;
  readonly #idleProbeMs: number;
  #state: CaptiveState = "clear";
  #since = 0;
  #windowEnd = 0;
  #nextProbe: number;
  #location: string | undefined;

  constructor(opts: CaptiveControllerOptions) {
    this.#settings = opts.settings;
    this.#clock = opts.clock;
    this.#portalProbeMs = opts.portalProbeMs ?? 3000;
    this.#idleProbeMs = opts.idleProbeMs ?? 60_000;
    this.#nextProbe = this.#clock.monotonic();
  }

  /** The current state. */
  get state(): CaptiveState {
    return this.#state;
  }

  /** The portal's redirect target, when one was seen. */
  get location(): string | undefined {
    return this.#location;
  }

  /** Enforcement as portals require it: paused during the window, per profile after it. */
  enforcement(): CaptiveEnforcement {
    if (this.#state === "portal") return "paused";
    if (this.#state === "expired") {
      return this.#settings.captivePortalExpiry === "fail_open" ? "fail_open" : "on";
    }
    return "on";
  }

  /** Monotonic ms of the next probe. */
  nextProbeAt(): number {
    return this.#nextProbe;
  }

  /** Monotonic ms when the engine should call tick() or probe, whichever is first. */
  nextWakeAt(): number {
    return this.#state === "portal" ? Math.min(this.#nextProbe, this.#windowEnd) : this.#nextProbe;
  }

  /** Monotonic ms when the portal window ends (0 when no window is open). */
  windowEndsAt(): number {
    return this.#state === "portal" ? this.#windowEnd : 0;
  }

  /** Replaces the settings (a new policy); an open window keeps its end time. */
  updateSettings(settings: CaptiveControllerOptions["settings"]): void {
    this.#settings = settings;
  }

  /** Asks for a probe now (the network changed). */
  probeSoon(): void {
    this.#nextProbe = this.#clock.monotonic();
  }

  /** Forgets everything (a new network): the next portal gets a fresh window. */
  reset(): void {
    this.#state = "clear";
    this.#location = undefined;
    this.#windowEnd = 0;
    this.#nextProbe = this.#clock.monotonic();
  }

  /** Feeds one probe result; returns the decisions it causes. */
  onProbe(result: CaptiveProbeResult): CaptiveDecision[] {
    const now = this.#clock.monotonic();
    const out = this.tick();
    if (result.kind === "captive") {
      if (result.location) this.#location = result.location;
      if (this.#state === "clear") {
        const windowMin = this.#settings.captivePortalWindowMin;
        this.#state = "portal";
        this.#since = now;
        this.#windowEnd = now + windowMin * 60_000;
        out.push({
          type: "portal_detected",
          until: this.#windowEnd,
          windowMin,
          location: result.location,
          detail: result.detail,
        });
      }
    } else if (result.kind === "clear" && this.#state !== "clear") {
      out.push({ type: "portal_cleared", heldMs: now - this.#since });
      this.#state = "clear";
      this.#location = undefined;
      this.#windowEnd = 0;
    }
    this.#nextProbe = now + (this.#state === "clear" ? this.#idleProbeMs : this.#portalProbeMs);
    return out;
  }

  /** Checks the window against the clock; returns window_expired once when it ends. */
  tick(): CaptiveDecision[] {
    if (this.#state === "portal" && this.#clock.monotonic() >= this.#windowEnd) {
      this.#state = "expired";
      return [{ type: "window_expired", action: this.#settings.captivePortalExpiry }];
    }
    return [];
  }
}
