/**
 * Cloud-path probe: hop-by-hop latency and loss to a target with `mtr
 * --json` (Debian's mtr-tiny), so a slow path names the hop where the time
 * is added. The parser is pure and strict about what it takes from mtr's
 * report; the runner bounds mtr's run time.
 */

/** One hop of a path. */
export interface PathHop {
  /** 1-based hop number. */
  hop: number;
  /** Address of the hop ("???" when it did not answer). */
  host: string;
  lossPct: number;
  sent: number;
  avgMs: number;
  bestMs: number;
  worstMs: number;
}

/** A measured path. */
export interface CloudPath {
  target: string;
  hops: PathHop[];
  /** The hop whose average grew most over the one before it (null with no answering hop). */
  slowest: { hop: number; host: string; addedMs: number } | null;
}

const num = (v: unknown, what: string): number => {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new Error(`Cannot read the mtr report: ${what} is not a number`);
  }
  return v;
};

/** Parses `mtr --json` output; throws naming what is wrong. */
export function parseMtrJson(text: string): CloudPath {
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error("Cannot read the mtr report: not JSON");
  }
  const report = doc?.report;
  const hubs = report?.hubs;
  if (!report || !Array.isArray(hubs) || typeof report.mtr?.dst !== "string") {
    throw new Error("Cannot read the mtr report: no report.hubs or report.mtr.dst");
  }
  const hops: PathHop[] = hubs.slice(0, 64).map((h: any, i: number) => ({
    hop: typeof h?.count === "number" ? h.count : i + 1,
    host: typeof h?.host === "string" ? h.host.slice(0, 255) : "???",
    lossPct: num(h?.["Loss%"], `hop ${i + 1} Loss%`),
    sent: num(h?.Snt, `hop ${i + 1} Snt`),
    avgMs: num(h?.Avg, `hop ${i + 1} Avg`),
    bestMs: num(h?.Best, `hop ${i + 1} Best`),
    worstMs: num(h?.Wrst, `hop ${i + 1} Wrst`),
  }));
  return { target: report.mtr.dst.slice(0, 255), hops, slowest: slowestHop(hops) };
}

/** The answering hop that adds the most time over the previous answering hop. */
export function slowestHop(hops: readonly PathHop[]): CloudPath["slowest"] {
  let prev = 0;
  let best: CloudPath["slowest"] = null;
  for (const h of hops) {
    if (h.host === "???" || h.lossPct >= 100) continue;
    const added = Math.max(0, h.avgMs - prev);
    if (!best || added > best.addedMs) {
      best = { hop: h.hop, host: h.host, addedMs: Math.round(added * 10) / 10 };
    }
    prev = h.avgMs;
  }
  return best;
}

/** Options of one mtr run. */
export interface MtrOptions {
  /** Probes per hop (default 3). */
  count?: number;
  /** Seconds between probes (default 0.2; mtr allows < 1 s to root only). */
  intervalSec?: number;
  /** Kill mtr after this long (default 10 s). */
  timeoutMs?: number;
  /** Seconds to wait for late answers after the last probe (default 1; mtr's own is 5). */
  gracetimeSec?: number;
  /** Source interface (e.g. the tunnel, to measure through it). */
  iface?: string;
}

/** Runs `mtr --json -n` to `target`; throws when mtr fails or its report cannot be read. */
export async function runMtr(target: string, o: MtrOptions = {}): Promise<CloudPath> {
  if (!/^[A-Za-z0-9.:-]{1,253}$/.test(target)) {
    throw new Error(`Invalid mtr target "${target.slice(0, 80)}"`);
  }
  // --gracetime: mtr waits 5 s for late answers by default, longer than a doctor run should.
  const args = [
    "--json",
    "-n",
    "-c",
    String(o.count ?? 3),
    "-i",
    String(o.intervalSec ?? 0.2),
    "--gracetime",
    String(o.gracetimeSec ?? 1),
  ];
  if (o.iface) args.push("-I", o.iface);
  const p = new Deno.Command("mtr", { args: [...args, target], stdout: "piped", stderr: "piped" })
    .spawn();
  const timer = setTimeout(() => {
    try {
      p.kill("SIGKILL");
    } catch { /* ended */ }
  }, o.timeoutMs ?? 10_000);
  try {
    const out = await p.output();
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim().slice(0, 200);
      throw new Error(`mtr to ${target} failed (${out.code}): ${err || "killed"}`);
    }
    return parseMtrJson(new TextDecoder().decode(out.stdout));
  } finally {
    clearTimeout(timer);
  }
}
