/**
 * The connector's digital-experience loop: runs each probe the policy names
 * at its interval, scores every result against that probe's own learned
 * baseline (score.ts), and keeps a bounded history per probe (24 h at the
 * shortest interval is far more than a console chart needs, so at most
 * HISTORY_LIMIT results each, oldest dropped first).
 *
 * The probe itself and the tunnel's round trip are injected (a fake beside
 * the real one), so the loop is tested on a manual clock.
 */
import { systemTimers, type TimerId, type Timers } from "../clock.ts";
import type { ZdxProbe } from "../policy/types.ts";
import { type Band, deviceScore, type ProbeSample, scoreSample, type ZdxHop } from "./score.ts";
import type { WebProbeResult, WebProbeTarget } from "./web_probe.ts";
import type { DirectProbeResult } from "./direct_probe.ts";

/** Results kept per probe. */
export const HISTORY_LIMIT = 1440;

/** One result as a connector sends it. */
export interface ZdxReportItem {
  probe: string;
  url: string;
  at: number;
  ok: boolean;
  status: number | null;
  phases: { dns: number; connect: number; tls: number; ttfb: number; total: number } | null;
  edgeRttMs: number | null;
}

/** One scored result. */
export interface ZdxResult extends WebProbeResult {
  probe: string;
  edgeRttMs: number | null;
  score: number;
  band: Band;
  z: number | null;
  worstHop: ZdxHop | null;
  /**
   * The same URL fetched outside the tunnel right after, for comparison
   * (null: no direct probe configured). Shown beside the result, never
   * scored: the score is the experience through the tunnel.
   */
  direct: DirectProbeResult | null;
}

/** What the loop needs. */
export interface ZdxRunnerDeps {
  probe: (t: WebProbeTarget) => Promise<WebProbeResult>;
  /** The direct run for comparison (outside the tunnel); absent: none. */
  direct?: (t: WebProbeTarget) => Promise<DirectProbeResult | null>;
  /** The tunnel's current round trip to the edge (null: not tunnelled or unknown). */
  edgeRtt: () => Promise<number | null>;
  timers?: Timers;
  /** Called with every recorded result (the connector batches them to the edge). */
  onResult?: (r: ZdxResult) => void;
}

/** The status the local API and the console show. */
export interface ZdxStatus {
  deviceScore: number | null;
  probes: {
    name: string;
    url: string;
    intervalSec: number;
    latest: ZdxResult | null;
    /** Scores of the kept history, oldest first: [at, score]. */
    series: [number, number][];
  }[];
}

/** Runs the probes of the policy in force. */
export class ZdxRunner {
  #d: ZdxRunnerDeps;
  #timers: Timers;
  #probes: ZdxProbe[] = [];
  #history = new Map<string, ZdxResult[]>();
  #timersById = new Map<string, TimerId>();
  #running = new Set<string>();
  #stopped = false;

  constructor(deps: ZdxRunnerDeps) {
    this.#d = deps;
    this.#timers = deps.timers ?? systemTimers;
  }

  /** Takes the probes of a new policy: new ones start now, removed ones stop (history kept only for kept names). */
  configure(probes: readonly ZdxProbe[]): void {
    const key = (p: ZdxProbe) => JSON.stringify([p.name, p.url, p.intervalSec, p.timeoutMs]);
    const before = new Map(this.#probes.map((p) => [p.name, key(p)]));
    this.#probes = [...probes];
    for (const [name, id] of this.#timersById) {
      const p = probes.find((x) => x.name === name);
      if (!p || before.get(name) !== key(p)) {
        this.#timers.clearTimeout(id);
        this.#timersById.delete(name);
      }
    }
    for (const name of [...this.#history.keys()]) {
      if (!probes.some((p) => p.name === name)) this.#history.delete(name);
    }
    for (const p of probes) {
      if (!this.#timersById.has(p.name) && !this.#stopped) this.#schedule(p, 0);
    }
  }

  /** Runs one probe now and records its scored result. */
  async runOnce(p: ZdxProbe): Promise<ZdxResult> {
    const [r, rtt] = await Promise.all([
      this.#d.probe({ url: p.url, timeoutMs: p.timeoutMs }),
      this.#d.edgeRtt().catch(() => null),
    ]);
    // After the tunnelled run, not beside it: the two would share the link and skew each other.
    const direct = this.#d.direct
      ? await this.#d.direct({ url: p.url, timeoutMs: p.timeoutMs }).catch(() => null)
      : null;
    const history = this.#history.get(p.name) ?? [];
    const sample: ProbeSample = { ok: r.ok, status: r.status, phases: r.phases, edgeRttMs: rtt };
    const s = scoreSample(sample, history);
    const result: ZdxResult = {
      ...r,
      probe: p.name,
      edgeRttMs: rtt,
      score: s.score,
      band: s.band,
      z: s.z,
      worstHop: s.worstHop,
      direct,
    };
    // A result counts only while its probe is still configured.
    if (this.#probes.some((x) => x.name === p.name)) {
      history.push(result);
      if (history.length > HISTORY_LIMIT) history.splice(0, history.length - HISTORY_LIMIT);
      this.#history.set(p.name, history);
      this.#d.onResult?.(result);
    }
    return result;
  }

  /** Scores and recent history of every configured probe. */
  status(): ZdxStatus {
    const probes = this.#probes.map((p) => {
      const h = this.#history.get(p.name) ?? [];
      return {
        name: p.name,
        url: p.url,
        intervalSec: p.intervalSec,
        latest: h.at(-1) ?? null,
        series: h.map((r) => [r.at, r.score] as [number, number]),
      };
    });
    const latest = probes.flatMap((p) => (p.latest ? [p.latest.score] : []));
    return { deviceScore: deviceScore(latest), probes };
  }

  /** Stops every timer. */
  stop(): void {
    this.#stopped = true;
    for (const id of this.#timersById.values()) this.#timers.clearTimeout(id);
    this.#timersById.clear();
  }

  #schedule(p: ZdxProbe, delayMs: number): void {
    const id = this.#timers.setTimeout(async () => {
      if (this.#stopped || this.#timersById.get(p.name) !== id) return;
      if (!this.#running.has(p.name)) {
        this.#running.add(p.name);
        try {
          await this.runOnce(p);
        } finally {
          this.#running.delete(p.name);
        }
      }
      if (!this.#stopped && this.#timersById.get(p.name) === id) {
        this.#schedule(p, p.intervalSec * 1000);
      }
    }, delayMs);
    this.#timersById.set(p.name, id);
  }
}
