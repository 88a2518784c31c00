/**
 * Where enforcement learns a device's posture: per profile, passed or not,
 * why, when it was evaluated and until when it holds. Enforcement calls
 * `profiles` when it decides a device's flow and re-decides that device's
 * flows when `onChange` fires for it.
 *
 * `ReportPostureSource` implements it over what the edge has today: the
 * connector's own evaluation in its latest posture report (each result
 * names its profile; a profile passes when all of its results passed). The
 * posture work of issue 11 replaces it with the edge's own evaluation of
 * signed reports behind this same interface.
 */
import type { PostureState } from "../../policy/access.ts";
import type { Store } from "../../store/mod.ts";
import { DeviceSignal } from "../signal.ts";

/** Posture input for enforcement. */
export interface PostureSource {
  /** Current results by profile name for a device (empty when it never reported). */
  profiles(deviceId: string): ReadonlyMap<string, PostureState>;
  /** Calls `cb(deviceId)` whenever a device's results change; returns an unsubscribe. */
  onChange(cb: (deviceId: string) => void): () => void;
  /** Told by the device API that it stored a new report for `deviceId`. */
  reported?(deviceId: string): void;
}

/** How long a connector-evaluated report counts (default: 15 minutes, three report periods). */
export const REPORT_VALIDITY_MS = 15 * 60_000;

interface ReportBody {
  results?: { profile: string; check: string; passed: boolean; expected: string; actual: string }[];
}

/** Results from a stored posture report body. */
export function profilesFromReport(
  body: unknown,
  receivedAt: number,
  validityMs = REPORT_VALIDITY_MS,
): Map<string, PostureState> {
  const out = new Map<string, PostureState>();
  const results = (body as ReportBody | null)?.results ?? [];
  for (const r of results) {
    const prev = out.get(r.profile);
    const failed = r.passed ? null : `${r.check} is "${r.actual}", expected "${r.expected}"`;
    if (!prev) {
      out.set(r.profile, {
        passed: r.passed,
        reason: failed ?? "every check passed",
        evaluatedAt: receivedAt,
        expiresAt: receivedAt + validityMs,
      });
    } else if (prev.passed && failed) {
      out.set(r.profile, { ...prev, passed: false, reason: failed });
    }
  }
  return out;
}

/**
 * Posture from the latest stored report of each device. `reported(deviceId)`
 * is called by the device API after it stored a report, which fires
 * onChange for that device.
 */
export class ReportPostureSource implements PostureSource {
  #signal = new DeviceSignal();
  #cache = new Map<string, { id: number; map: Map<string, PostureState> }>();

  constructor(private store: Store, private validityMs = REPORT_VALIDITY_MS) {}

  /** Results of the device's newest report. */
  profiles(deviceId: string): ReadonlyMap<string, PostureState> {
    const latest = this.store.posture.latest(deviceId);
    if (!latest) return new Map();
    const hit = this.#cache.get(deviceId);
    if (hit && hit.id === latest.id) return hit.map;
    const map = profilesFromReport(latest.body, latest.receivedAt, this.validityMs);
    this.#cache.set(deviceId, { id: latest.id, map });
    return map;
  }

  /** Tells subscribers that a device has a new report. */
  reported(deviceId: string): void {
    this.#cache.delete(deviceId);
    this.#signal.emit(deviceId);
  }

  /** Subscribes to changes. */
  onChange(cb: (deviceId: string) => void): () => void {
    return this.#signal.on(cb);
  }
}
