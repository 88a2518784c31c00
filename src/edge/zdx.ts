/**
 * The edge's half of digital experience: connectors send their probe
 * results in batches; the edge scores each against that device's and
 * probe's own stored history (the same formula as the connector,
 * src/zdx/score.ts, so both agree on what "normal" is), keeps them, raises
 * an alert when a score drops well below its baseline — naming the hop
 * whose time grew — and aggregates the fleet per app, per device and per
 * edge for the console.
 */
import type { DeviceRecord } from "../store/mod.ts";
import type { ZdxRecord } from "../store/repos/zdx.ts";
import { type Band, band, deviceScore, hopsOf, scoreSample, type ZdxHop } from "../zdx/score.ts";
import type { EdgeContext } from "./context.ts";
import type { ZdxReportItem } from "../zdx/runner.ts";
import { type CloudPath, runMtr } from "../zdx/cloud_path.ts";
import { logger } from "../log.ts";

const log = logger("edge.zdx");

export type { ZdxReportItem } from "../zdx/runner.ts";

/** z at or above which a drop is "well below the baseline" and alerts. */
export const ALERT_Z = 3;
/**
 * A drop alerts once it holds for this many results in a row: one slow
 * result is noise, and the result taken while a change set in (connect
 * before it, the response after) blames the wrong hop. The hop named is
 * the latest result's.
 */
export const ALERT_RUN = 2;
/** At most one alert per device and probe in this many ms. */
export const ALERT_QUIET_MS = 10 * 60_000;

const lastAlert = new WeakMap<EdgeContext, Map<string, number>>();

/** How often the edge measures its own leg to a probe's host. */
export const PATH_EVERY_MS = 5 * 60_000;
/** Hosts whose path the edge keeps. */
export const PATH_HOSTS = 50;

/** The edge's own leg (edge → the probe's host), measured with mtr. */
export interface EdgePath extends CloudPath {
  host: string;
  at: number;
}

interface PathState {
  paths: Map<string, EdgePath>;
  /** Hosts waiting for a measurement, and whether one runs. */
  queue: string[];
  /** The measurement run in progress, if any. */
  running: Promise<void> | null;
  measure: (host: string) => Promise<CloudPath>;
}

const pathStates = new WeakMap<EdgeContext, PathState>();

function pathState(ctx: EdgeContext): PathState {
  let st = pathStates.get(ctx);
  if (!st) {
    st = { paths: new Map(), queue: [], running: null, measure: (h) => runMtr(h) };
    pathStates.set(ctx, st);
  }
  return st;
}

/** Replaces how the edge measures a path (tests). */
export function setPathMeasure(ctx: EdgeContext, fn: (host: string) => Promise<CloudPath>): void {
  pathState(ctx).measure = fn;
}

/**
 * Queues the edge's own measurement of the path to each host it has not
 * measured for PATH_EVERY_MS; one mtr at a time, in the background, so a
 * batch is answered at once.
 */
function measureEdgeLegs(ctx: EdgeContext, urls: readonly string[]): Promise<void> {
  const st = pathState(ctx);
  const now = ctx.clock.now();
  // Only the policy's own probe URLs: a device must not point the edge's mtr elsewhere.
  const allowed = policyProbeUrls(ctx);
  for (const u of new Set(urls)) {
    if (!allowed.has(u)) continue;
    let host: string;
    try {
      host = new URL(u).hostname.replace(/^\[|\]$/g, "");
    } catch {
      continue;
    }
    const seen = st.paths.get(host);
    if (seen && now - seen.at < PATH_EVERY_MS) continue;
    if (st.queue.includes(host) || (!seen && st.paths.size >= PATH_HOSTS)) continue;
    st.queue.push(host);
  }
  if (st.running) return st.running;
  if (!st.queue.length) return Promise.resolve();
  const run = st.running = (async () => {
    try {
      while (st.queue.length) {
        const host = st.queue.shift()!;
        try {
          const p = await st.measure(host);
          st.paths.set(host, { ...p, host, at: ctx.clock.now() });
        } catch (e) {
          log.debug("Cannot measure the edge's path", { host, error: (e as Error).message });
        }
      }
    } finally {
      st.running = null;
    }
  })();
  return run;
}

/** The URLs of every probe in the app profiles. */
function policyProbeUrls(ctx: EdgeContext): Set<string> {
  const out = new Set<string>();
  for (const p of ctx.policy.list("app-profiles") as { zdxProbes?: { url: string }[] }[]) {
    for (const z of p.zdxProbes ?? []) out.add(z.url);
  }
  return out;
}

/** Measures the edge's legs now (tests wait on it); ingestZdx starts the same in the background. */
export function measureEdgeLegsNow(ctx: EdgeContext, urls: readonly string[]): Promise<void> {
  return measureEdgeLegs(ctx, urls);
}

/** Scores, stores and (when a score drops well below normal) alerts; returns the scores. */
export function ingestZdx(
  ctx: EdgeContext,
  device: DeviceRecord,
  items: readonly ZdxReportItem[],
): { probe: string; at: number; score: number; band: Band; worstHop: ZdxHop | null }[] {
  const now = ctx.clock.now();
  const sorted = [...items].sort((a, b) => a.at - b.at);
  const out: ReturnType<typeof ingestZdx> = [];
  const alerts: { probe: string; score: number; hop: ZdxHop | null; z: number }[] = [];
  const alerting = (z: number | null, score: number) =>
    z !== null && z >= ALERT_Z && band(score) !== "good";
  ctx.store.transaction(() => {
    for (const it of sorted) {
      const stored = ctx.store.zdx.history(device.id, it.probe, 60);
      const history = stored.map((h) => ({
        ok: h.ok,
        status: h.status,
        phases: h.phases,
        edgeRttMs: h.edgeRttMs,
        score: h.score,
      }));
      const s = scoreSample(it, history);
      ctx.store.zdx.insert({
        deviceId: device.id,
        probe: it.probe,
        url: it.url,
        at: it.at,
        ok: it.ok,
        status: it.status,
        phases: it.phases,
        edgeRttMs: it.edgeRttMs,
        score: s.score,
        z: s.z,
        worstHop: s.worstHop,
        receivedAt: now,
      });
      out.push({ probe: it.probe, at: it.at, score: s.score, band: s.band, worstHop: s.worstHop });
      // The results just before this one (stored, this batch's included: they were inserted above).
      const before = stored.slice(-(ALERT_RUN - 1));
      if (
        alerting(s.z, s.score) && before.length === ALERT_RUN - 1 &&
        before.every((h) => alerting(h.z, h.score))
      ) {
        alerts.push({ probe: it.probe, score: s.score, hop: s.worstHop, z: s.z! });
      }
    }
  });
  void measureEdgeLegs(ctx, sorted.map((it) => it.url));
  let quiet = lastAlert.get(ctx);
  if (!quiet) lastAlert.set(ctx, quiet = new Map());
  for (const a of alerts) {
    const key = `${device.id}\u0000${a.probe}`;
    if (now - (quiet.get(key) ?? -Infinity) < ALERT_QUIET_MS) continue;
    quiet.set(key, now);
    ctx.notifier.publish({
      kind: "zdx_degraded",
      deviceId: device.id,
      hostname: device.hostname,
      probe: a.probe,
      score: a.score,
      hop: a.hop ?? "unknown",
      z: a.z,
    });
  }
  return out;
}

/** The fleet's digital experience for the console and the admin API. */
export interface ZdxFleet {
  /** Mean of the devices' scores (null: no results in the window). */
  edgeScore: number | null;
  apps: { probe: string; score: number; devices: number; poor: number }[];
  devices: { deviceId: string; hostname: string; score: number; worstProbe: string }[];
  /** The newest result per device and probe, worst first. */
  latest: (ZdxRecord & { hostname: string; band: Band })[];
  /** Mean time per hop (ms) per hour across the fleet: [hour start, hop → ms]. */
  hops: [number, Record<ZdxHop, number>][];
  /** The edge's own leg to each probe's host (mtr from the edge). */
  paths: EdgePath[];
}

/** Aggregates results since `sinceMs` ago (default 24 h). */
export function zdxFleet(ctx: EdgeContext, sinceMs = 24 * 3600_000): ZdxFleet {
  const since = ctx.clock.now() - sinceMs;
  const latest = ctx.store.zdx.latest(since);
  const byApp = new Map<string, number[]>();
  const byDevice = new Map<string, { hostname: string; scores: [string, number][] }>();
  for (const r of latest) {
    byApp.set(r.probe, [...(byApp.get(r.probe) ?? []), r.score]);
    const d = byDevice.get(r.deviceId) ?? { hostname: r.hostname, scores: [] };
    d.scores.push([r.probe, r.score]);
    byDevice.set(r.deviceId, d);
  }
  const apps = [...byApp].map(([probe, scores]) => ({
    probe,
    score: deviceScore(scores)!,
    devices: scores.length,
    poor: scores.filter((s) => band(s) === "poor").length,
  })).sort((a, b) => a.score - b.score || a.probe.localeCompare(b.probe));
  const devices = [...byDevice].map(([deviceId, d]) => ({
    deviceId,
    hostname: d.hostname,
    score: deviceScore(d.scores.map(([, s]) => s))!,
    worstProbe: [...d.scores].sort((a, b) => a[1] - b[1])[0][0],
  })).sort((a, b) => a.score - b.score || a.hostname.localeCompare(b.hostname));
  return {
    edgeScore: deviceScore(devices.map((d) => d.score)),
    apps,
    devices,
    latest: latest.map((r) => ({ ...r, band: band(r.score) })),
    hops: hourlyHops(ctx.store.zdx.since(since)),
    paths: [...pathState(ctx).paths.values()].sort((a, b) => a.host.localeCompare(b.host)),
  };
}

const HOUR = 3600_000;

function hourlyHops(rows: readonly ZdxRecord[]): [number, Record<ZdxHop, number>][] {
  const acc = new Map<number, { n: number; sum: Record<ZdxHop, number> }>();
  for (const r of rows) {
    const h = hopsOf(r);
    if (!h) continue;
    const key = Math.floor(r.at / HOUR) * HOUR;
    const a = acc.get(key) ?? {
      n: 0,
      sum: { dns: 0, device_to_edge: 0, edge_to_internet: 0, server: 0, transfer: 0 },
    };
    a.n++;
    for (const k of Object.keys(h) as ZdxHop[]) a.sum[k] += h[k];
    acc.set(key, a);
  }
  return [...acc].sort((a, b) => a[0] - b[0]).map(([at, a]) => {
    const mean = {} as Record<ZdxHop, number>;
    for (const k of Object.keys(a.sum) as ZdxHop[]) mean[k] = Math.round(a.sum[k] / a.n * 10) / 10;
    return [at, mean];
  });
}
