/**
 * Where enforcement learns a device's posture: per profile, passed or not,
 * why, when it was evaluated and until when it holds. Enforcement calls
 * `profiles` when it decides a device's flow and re-decides that device's
 * flows when `onChange` fires for it.
 *
 * `EdgePostureSource` is the edge's own judgement: it never trusts a
 * connector's verdict. It takes the raw facts of the device's latest
 * verified, signed report (src/edge/posture_reports.ts accepts those) and
 * evaluates the posture profiles itself, keeping expected vs actual for
 * every check (stored in posture_results, migration 4). It evaluates again
 * on every report, on every profile change, and every `reevaluateMinutes`
 * of a profile (`tick`), and tells subscribers whenever a device's outcome
 * changed, so a failed check revokes the flows it gated on their next
 * packet. A report older than a profile's validity expires the result,
 * which enforcement treats as failed.
 */
import type { Clock } from "../../clock.ts";
import type { PostureState } from "../../policy/access.ts";
import { judgeProfiles, type ProfileStanding } from "../../policy/posture.ts";
import { PostureProfile } from "../../policy/types.ts";
import { factsFromWire, PostureReportPayload } from "../../posture/report.ts";
import type { Store } from "../../store/mod.ts";
import { logger } from "../../log.ts";
import { DeviceSignal } from "../signal.ts";

const log = logger("edge.posture");

/** Posture input for enforcement. */
export interface PostureSource {
  /** Current results by profile name for a device (empty when it never reported). */
  profiles(deviceId: string): ReadonlyMap<string, PostureState>;
  /** Calls `cb(deviceId)` whenever a device's results change; returns an unsubscribe. */
  onChange(cb: (deviceId: string) => void): () => void;
  /** Told by the device API that it stored a new report for `deviceId`. */
  reported?(deviceId: string): void;
  /** Told by the policy service that the posture profiles changed. */
  profilesChanged?(): void;
  /** Called every second by enforcement: evaluates again what is due. */
  tick?(): void;
}

interface Entry {
  reportId: number;
  map: Map<string, ProfileStanding>;
  /** The soonest `reevaluateAt` of its profiles. */
  reevaluateAt: number;
}

/** The outcome part of a standing: what, if it changed, re-decides flows. */
function outcomeKey(map: ReadonlyMap<string, ProfileStanding>): string {
  return JSON.stringify([...map].map(([n, s]) => [n, s.passed, s.reason, s.results]));
}

/** The posture profiles in the store (those that no longer parse are skipped, and logged). */
export function storedProfiles(store: Store): PostureProfile[] {
  const out: PostureProfile[] = [];
  for (const body of store.policy.list("posture_profile")) {
    const p = PostureProfile.safeParse(body);
    if (p.success) out.push(p.data);
    else {log.warn("Skipped a stored posture profile that does not parse", {
        error: p.error.message,
      });}
  }
  return out;
}

/** The edge's evaluation of each device's latest signed report. */
export class EdgePostureSource implements PostureSource {
  #signal = new DeviceSignal();
  #cache = new Map<string, Entry>();
  #profiles: PostureProfile[] | null = null;

  constructor(private store: Store, private clock: Clock) {}

  /** Results of the edge's evaluation of the device's newest report. */
  profiles(deviceId: string): ReadonlyMap<string, ProfileStanding> {
    const latest = this.store.posture.latest(deviceId);
    if (!latest) return new Map();
    const hit = this.#cache.get(deviceId);
    if (hit && hit.reportId === latest.id) return hit.map;
    return this.#evaluate(deviceId).map;
  }

  /** A device stored a new report: evaluate it now and tell subscribers. */
  reported(deviceId: string): void {
    this.#evaluate(deviceId);
    this.#signal.emit(deviceId);
  }

  /** The profiles changed: every device is judged again; those whose outcome changed are told. */
  profilesChanged(): void {
    this.#profiles = null;
    // One transaction for the stored results of every device (nested ones become savepoints).
    this.store.transaction(() => {
      for (const id of this.store.posture.reportingDevices()) this.#again(id);
    });
  }

  /** Evaluates again every device whose profiles' re-evaluation time has come. */
  tick(): void {
    const now = this.clock.now();
    for (const [id, e] of [...this.#cache]) if (e.reevaluateAt <= now) this.#again(id);
  }

  /** Subscribes to changes. */
  onChange(cb: (deviceId: string) => void): () => void {
    return this.#signal.on(cb);
  }

  #again(deviceId: string): void {
    const before = this.#cache.get(deviceId);
    const after = this.#evaluate(deviceId);
    if (!before || outcomeKey(before.map) !== outcomeKey(after.map)) this.#signal.emit(deviceId);
  }

  #evaluate(deviceId: string): Entry {
    const latest = this.store.posture.latest(deviceId);
    const now = this.clock.now();
    if (!latest) {
      const gone: Entry = { reportId: -1, map: new Map(), reevaluateAt: Infinity };
      this.#cache.delete(deviceId);
      return gone;
    }
    const parsed = PostureReportPayload.safeParse(latest.body);
    const profiles = this.#profiles ??= storedProfiles(this.store);
    let map: Map<string, ProfileStanding>;
    if (parsed.success) {
      map = judgeProfiles(
        profiles,
        factsFromWire(parsed.data.facts),
        Date.parse(parsed.data.collectedAt),
        now,
      );
    } else {
      // A report stored before reports were signed: no facts the edge can judge.
      map = judgeProfiles(profiles, {}, latest.receivedAt, now);
    }
    let reevaluateAt = Infinity;
    for (const s of map.values()) reevaluateAt = Math.min(reevaluateAt, s.reevaluateAt);
    const entry: Entry = { reportId: latest.id, map, reevaluateAt };
    this.#cache.set(deviceId, entry);
    try {
      this.store.transaction(() =>
        this.store.posture.replaceResults(
          deviceId,
          [...map.values()].flatMap((s) =>
            s.results.map((r) => ({ ...r, evaluatedAt: s.evaluatedAt, expiresAt: s.expiresAt }))
          ),
        )
      );
    } catch (err) {
      // The device may have been deleted meanwhile; the cached judgement still stands.
      log.debug("Could not store posture results", { device: deviceId, error: String(err) });
    }
    return entry;
  }
}
