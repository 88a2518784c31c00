/**
 * The digital-experience score: 0–100 per probe result, judged against a
 * baseline learned for that probe, so a site that is always slow is "Good"
 * at its usual speed and only a change for the worse costs points.
 *
 * Formula (also in the README):
 * - baseline of a probe = its last BASELINE_SIZE successful results that
 *   scored Good themselves, looked for among the last 2 × BASELINE_SIZE (so a
 *   slowdown does not become "normal" within a few results, yet a lasting
 *   change is learned once the old results age out); for the
 *   total time and for each hop: median m and spread s = 1.4826 × MAD (the
 *   median absolute deviation, scaled to a standard deviation for normal
 *   data), with s at least max(MIN_SPREAD_MS, 10 % of m) so that a very
 *   steady probe does not turn a few milliseconds into a catastrophe;
 * - z = (total − m) / s;
 * - score = round(100 × (1 − (z − 1) / 8)), clamped to 0..100: within one
 *   spread of normal is 100, z ≈ 3.7 is the Good/Okay line (66), z ≈ 6.4 the
 *   Okay/Poor line (33), z ≥ 9 is 0;
 * - a failed probe (no answer, HTTP status ≥ 400) scores 0;
 * - before MIN_BASELINE results exist, the baseline is absolute: total ≤ 1 s
 *   scores 100, ≥ 5 s scores 0, linear between;
 * - Good ≥ 66, Okay 34–65, Poor ≤ 33; a device's score is the mean of its
 *   probes' latest scores.
 *
 * Which hop grew: each result splits its time into hops (device → edge,
 * edge → internet, the server, the transfer; see `hopsOf`), and the hop
 * with the largest z against its own baseline is the one named.
 */

/** The phases a web probe measures (ms, from socket events). */
export interface Phases {
  dns: number;
  connect: number;
  tls: number;
  /** From sending the request to the first response byte. */
  ttfb: number;
  total: number;
}

/** One probe result as the score sees it. */
export interface ProbeSample {
  ok: boolean;
  status: number | null;
  phases: Phases | null;
  /** The tunnel's round trip to the edge measured alongside (null: direct, or unknown). */
  edgeRttMs: number | null;
  /** The score this result got (history only: results that were not Good stay out of the baseline). */
  score?: number;
}

/** The hops a result's time is split into. */
export type ZdxHop = "device_to_edge" | "edge_to_internet" | "server" | "transfer" | "dns";

/** Results kept per probe for the baseline. */
export const BASELINE_SIZE = 30;
/** Results needed before the learned baseline is used. */
export const MIN_BASELINE = 5;
/** Smallest spread (ms). */
export const MIN_SPREAD_MS = 5;

/** Score bands. */
export type Band = "good" | "okay" | "poor";

/** Good ≥ 66, Okay 34–65, Poor ≤ 33. */
export function band(score: number): Band {
  return score >= 66 ? "good" : score >= 34 ? "okay" : "poor";
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median and spread (1.4826 × MAD, floored) of a list. */
export function baselineOf(xs: readonly number[]): { median: number; spread: number } {
  const m = median(xs);
  const mad = median(xs.map((x) => Math.abs(x - m)));
  return { median: m, spread: Math.max(MIN_SPREAD_MS, 0.1 * m, 1.4826 * mad) };
}

/**
 * A result's time split into hops. Through the tunnel, the TCP connect is
 * one round trip to the server, of which the tunnel's round trip is the
 * device → edge part and the rest the edge → internet part; direct, the
 * whole connect counts as edge_to_internet's stand-in (the path). The
 * server's part is the TTFB beyond one round trip; transfer is what follows.
 */
export function hopsOf(s: ProbeSample): Record<ZdxHop, number> | null {
  const p = s.phases;
  if (!p) return null;
  const edge = s.edgeRttMs !== null ? Math.min(s.edgeRttMs, p.connect) : 0;
  return {
    dns: p.dns,
    device_to_edge: edge,
    edge_to_internet: Math.max(0, p.connect - edge),
    server: Math.max(0, p.ttfb - p.connect),
    transfer: Math.max(0, p.total - p.dns - p.connect - p.tls - p.ttfb),
  };
}

/** What a score says about one result. */
export interface Scored {
  score: number;
  band: Band;
  /** z of the total against the baseline (null before the baseline is learned, or failed). */
  z: number | null;
  /** The hop whose time grew most (z), when the result is worse than normal. */
  worstHop: ZdxHop | null;
  worstHopZ: number | null;
}

/** Scores `s` against earlier successful results `history` of the same probe (oldest first). */
export function scoreSample(s: ProbeSample, history: readonly ProbeSample[]): Scored {
  if (!s.ok || !s.phases || (s.status !== null && s.status >= 400)) {
    return { score: 0, band: "poor", z: null, worstHop: null, worstHopZ: null };
  }
  const recent = history.filter((h) => h.ok && h.phases).slice(-2 * BASELINE_SIZE);
  const normal = recent.filter((h) => h.score === undefined || h.score >= 66);
  const good = (normal.length >= MIN_BASELINE ? normal : recent).slice(-BASELINE_SIZE);
  if (good.length < MIN_BASELINE) {
    const score = clamp(Math.round(100 * (1 - (s.phases.total - 1000) / 4000)));
    return { score, band: band(score), z: null, worstHop: null, worstHopZ: null };
  }
  const base = baselineOf(good.map((h) => h.phases!.total));
  const z = (s.phases.total - base.median) / base.spread;
  const score = clamp(Math.round(100 * (1 - (z - 1) / 8)));
  let worstHop: ZdxHop | null = null;
  let worstHopZ: number | null = null;
  const mine = hopsOf(s)!;
  if (z > 1) {
    for (const hop of Object.keys(mine) as ZdxHop[]) {
      const b = baselineOf(good.map((h) => hopsOf(h)![hop]));
      const hz = (mine[hop] - b.median) / b.spread;
      if (worstHopZ === null || hz > worstHopZ) {
        worstHop = hop;
        worstHopZ = Math.round(hz * 10) / 10;
      }
    }
  }
  return { score, band: band(score), z: Math.round(z * 10) / 10, worstHop, worstHopZ };
}

/** A device's score: the mean of its probes' latest scores (null without any). */
export function deviceScore(latest: readonly number[]): number | null {
  if (!latest.length) return null;
  return Math.round(latest.reduce((a, b) => a + b, 0) / latest.length);
}

function clamp(x: number): number {
  return Math.max(0, Math.min(100, x));
}
