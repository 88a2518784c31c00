/**
 * The background work of an enrolled device, started when the engine has a
 * client and stopped at logout, on a new network (fresh connections) or when
 * the policy changes its refresh period: the policy stream, the policy poll,
 * the heartbeat and posture reports.
 */
import type { Timers } from "../../clock.ts";
import { logger } from "../../log.ts";
import type { PolicyBundle } from "../../policy/types.ts";
import type { EdgeApi } from "../edge_api.ts";
import type { EngineState } from "../engine_state.ts";
import type { NotificationHub } from "../notifications.ts";
import { sendHeartbeat } from "./heartbeat.ts";
import { every } from "./periodic.ts";
import { followPolicyStream, pollPolicy } from "./policy_sync.ts";
import {
  type CollectPosture,
  describeVerdict,
  reportPeriodMs,
  reportPostureOnce,
} from "./posture_loop.ts";
import type { PostureVerdict } from "../../control/mod.ts";

const log = logger("connector.engine");

/** Periods of the loops; unset ones take the defaults. */
export interface LoopPeriods {
  /** Heartbeat period (default 30 s). */
  heartbeatSec?: number;
  /** Longest time between two posture reports (default 300 s). */
  postureSec?: number;
  /** How often the connector looks for changed posture facts (default 2 s). */
  postureCheckSec?: number;
  /** Overrides the policy's refresh period (tests). */
  policyRefreshSec?: number;
  /** Backoff of the policy stream reconnects (default 1–30 s). */
  streamBackoffMs?: { min: number; max: number };
}

/** What the loops read and whom they tell. */
export interface LoopDeps {
  timers: Timers;
  hub: Pick<NotificationHub, "raise">;
  periods: LoopPeriods;
  collectPosture?: CollectPosture;
  /** The client of the current enrolment. */
  client: () => EdgeApi | null;
  policy: () => PolicyBundle | null;
  state: () => EngineState;
  /** Updates the policy (coalesced). */
  updatePolicy: () => Promise<unknown>;
  /** A call failed in a way the engine must handle (refused credential, unreachable edge). */
  onEdgeError: (err: unknown, action: string) => void;
  /** A heartbeat was answered. */
  onReachable: () => void;
  /** A heartbeat could not reach the edge. */
  onHeartbeatFailed: (message: string) => void;
}

/** Starts and stops the loops as one. */
export class BackgroundLoops {
  readonly #d: LoopDeps;
  #ac: AbortController | null = null;
  #disabledNotified = false;

  constructor(deps: LoopDeps) {
    this.#d = deps;
  }

  /** True while the loops run. */
  get running(): boolean {
    return this.#ac !== null;
  }

  /** Starts the loops over the current client (nothing without one). */
  start(): void {
    const client = this.#d.client();
    if (!client) return;
    const d = this.#d;
    const ac = new AbortController();
    this.#ac = ac;
    followPolicyStream(client, ac.signal, {
      currentVersion: () => d.policy()?.version ?? null,
      update: d.updatePolicy,
      onEdgeError: d.onEdgeError,
      onDeviceDisabled: (m) => this.deviceDisabled(m),
      backoff: d.periods.streamBackoffMs,
    });
    const refreshSec = d.periods.policyRefreshSec ?? d.policy()?.appProfile.policyRefreshSec ?? 60;
    const timers = d.timers;
    every(ac.signal, refreshSec * 1000, () => pollPolicy(d.updatePolicy, d.onEdgeError), {
      timers,
    });
    every(ac.signal, (d.periods.heartbeatSec ?? 30) * 1000, () => this.#heartbeat(), {
      soon: true,
      timers,
    });
    if (d.collectPosture) {
      const collect = d.collectPosture;
      const postureSec = d.periods.postureSec ?? 300;
      const checkMs = Math.min(postureSec, d.periods.postureCheckSec ?? 2) * 1000;
      // Fresh per start: a new connection reports at once. Time is counted in
      // looks (the timers have no clock), which is all the period needs.
      const sent = {
        lastFacts: null as string | null,
        lastSentAt: 0,
        looks: 0,
        lastVerdict: undefined as string | null | undefined,
        // The user hears when the edge's judgement of this device changes.
        onVerdict: (v: PostureVerdict) => {
          d.hub.raise("posture_changed", v.passed ? "info" : "warn", describeVerdict(v), {
            passed: v.passed,
            profiles: v.profiles,
          });
        },
      };
      every(ac.signal, checkMs, async () => {
        const policy = d.policy();
        if (!policy) return;
        const s = Object.assign(sent, {
          now: checkMs * ++sent.looks,
          periodMs: reportPeriodMs(policy, postureSec),
        });
        await reportPostureOnce(d.client(), policy, collect, s);
      }, { soon: true, timers });
    }
  }

  /** Stops every loop. */
  stop(): void {
    this.#ac?.abort();
    this.#ac = null;
  }

  /** Tells the user the device was disabled, once until the edge answers a heartbeat again. */
  deviceDisabled(message: string): void {
    if (this.#disabledNotified) return;
    this.#disabledNotified = true;
    this.#d.hub.raise("device_disabled", "error", message, {});
  }

  async #heartbeat(): Promise<void> {
    const client = this.#d.client();
    if (!client) return;
    const r = await sendHeartbeat(client, this.#d.state());
    switch (r.kind) {
      case "ok":
        this.#disabledNotified = false;
        return this.#d.onReachable();
      case "refused":
        return this.#d.onEdgeError(r.error, "send a heartbeat");
      case "disabled":
        return this.deviceDisabled(r.message);
      case "unreachable":
        log.warn("Heartbeat failed", { error: r.message });
        return this.#d.onHeartbeatFailed(r.message);
    }
  }
}
