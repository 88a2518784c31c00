/**
 * Benchmark (not a test): iperf3 TCP throughput and ping RTT through a
 * Portcullis tunnel and through a wireguard-go tunnel, in the same run and
 * the same two-namespace topology, printed side by side with the ratio, and
 * the CPU each side's tunnel process spent per gigabit moved (the
 * scheduler's run time of every thread, both processes added up, divided by
 * the gigabits iperf3 got across). Portcullis runs twice: with its kernel offloads (the default) and
 * with PORTCULLIS_OFFLOAD=off, the before/after of the offload work.
 *
 *   deno task bench:tunnel [seconds=10] [--no-off]
 *
 * Needs root (namespaces), wireguard-go, wg, iperf3 and ping. Run it under
 * `flock /tmp/pcl-bench.lock` on a shared machine.
 */
import { NetnsLab } from "../e2e/netns.ts";
import {
  ifName,
  keyPair,
  startPortcullis,
  startWireguardGo,
  waitFor,
  wgQuick,
} from "../e2e/wg_harness.ts";

const args = Deno.args.filter((a) => !a.startsWith("--"));
const seconds = Number(args[0] ?? 10);
const withOffRun = !Deno.args.includes("--no-off");

interface Direction {
  mbps: number;
  /** CPU seconds of both tunnel processes per gigabit received. */
  cpuPerGbit: number;
  retransmits: number;
}

interface Result {
  fwd: Direction;
  rev: Direction;
  rttAvgMs: number;
  rttMinMs: number;
}

/**
 * CPU seconds a process has used so far, all its threads: the scheduler's own
 * run-time account (/proc/<pid>/task/<tid>/schedstat, nanoseconds), exact
 * where utime/stime are sampled at the timer tick.
 */
async function cpuSeconds(pid: number): Promise<number> {
  let ns = 0;
  for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
    try {
      ns += Number(
        (await Deno.readTextFile(`/proc/${pid}/task/${t.name}/schedstat`)).split(" ")[0],
      );
    } catch { /* the thread just ended */ }
  }
  return ns / 1e9;
}

async function measure(lab: NetnsLab, a: string, b: string, pids: number[]): Promise<Result> {
  await lab.exec(a, ["ping", "-c", "3", "-i", "0.2", "10.9.0.2"], { check: false });
  const cpu = async () => (await Promise.all(pids.map(cpuSeconds))).reduce((x, y) => x + y, 0);
  const iperf = async (reverse: boolean): Promise<Direction> => {
    const srv = lab.spawn(b, ["iperf3", "-s", "-1"]);
    await waitFor("iperf3 server", async () => {
      const r = await lab.exec(b, ["ss", "-ltn"], { check: false });
      return r.stdout.includes(":5201");
    });
    const args = ["iperf3", "-c", "10.9.0.2", "-t", String(seconds), "-J"];
    if (reverse) args.push("-R");
    const before = await cpu();
    const r = await lab.exec(a, args);
    const used = (await cpu()) - before;
    await srv.status;
    const j = JSON.parse(r.stdout);
    const gbit = j.end.sum_received.bytes * 8 / 1e9;
    return {
      mbps: j.end.sum_received.bits_per_second / 1e6,
      cpuPerGbit: used / gbit,
      retransmits: j.end.sum_sent.retransmits ?? 0,
    };
  };
  const fwd = await iperf(false);
  const rev = await iperf(true);
  const p = await lab.exec(a, ["ping", "-c", "50", "-i", "0.05", "10.9.0.2"]);
  const m = p.stdout.match(/= ([\d.]+)\/([\d.]+)\/([\d.]+)/);
  return {
    fwd,
    rev,
    rttMinMs: m ? Number(m[1]) : NaN,
    rttAvgMs: m ? Number(m[2]) : NaN,
  };
}

async function topology(tag: string) {
  const lab = new NetnsLab(tag);
  const a = await lab.ns("a");
  const b = await lab.ns("b");
  await lab.link(a, "192.0.2.1/24", b, "192.0.2.2/24");
  return { lab, a, b };
}

async function portcullis(offload: string): Promise<Result> {
  const { lab, a, b } = await topology("bp");
  try {
    const ka = keyPair(), kb = keyPair();
    const env = { PORTCULLIS_LOG_LEVEL: "info", PORTCULLIS_OFFLOAD: offload };
    const pb = await startPortcullis(
      lab,
      b,
      ifName("b"),
      wgQuick({
        key: kb,
        address: "10.9.0.2/24",
        listenPort: 51820,
        peer: { pub: ka.pub, allowedIps: "10.9.0.1/32" },
      }),
      env,
    );
    const pa = await startPortcullis(
      lab,
      a,
      ifName("a"),
      wgQuick({
        key: ka,
        address: "10.9.0.1/24",
        peer: { pub: kb.pub, allowedIps: "10.9.0.2/32", endpoint: "192.0.2.2:51820" },
      }),
      env,
    );
    return await measure(lab, a, b, [pa.proc.pid, pb.proc.pid]);
  } finally {
    await lab[Symbol.asyncDispose]();
  }
}

async function wireguardGo(): Promise<Result> {
  const { lab, a, b } = await topology("bg");
  try {
    const ka = keyPair(), kb = keyPair();
    const gb = await startWireguardGo(lab, b, ifName("b"), {
      key: kb,
      listenPort: 51820,
      address: "10.9.0.2/24",
      peer: { pub: ka.pub, allowedIps: "10.9.0.1/32" },
    });
    const ga = await startWireguardGo(lab, a, ifName("a"), {
      key: ka,
      listenPort: 51821,
      address: "10.9.0.1/24",
      peer: { pub: kb.pub, allowedIps: "10.9.0.2/32", endpoint: "192.0.2.2:51820" },
    });
    return await measure(lab, a, b, [ga.pid, gb.pid]);
  } finally {
    await lab[Symbol.asyncDispose]();
  }
}

if (Deno.uid() !== 0) {
  console.error("bench:tunnel needs root (network namespaces).");
  Deno.exit(2);
}
const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
console.log(
  `Tunnel benchmark: iperf3 TCP ${seconds} s each way, 50 pings; two namespaces on veth; ` +
    `load average ${load}.`,
);
const go = await wireguardGo();
const pc = await portcullis("on");
const off = withOffRun ? await portcullis("off") : null;

const cols = off
  ? ["Portcullis", "wireguard-go", "ratio", "no offload"]
  : ["Portcullis", "wireguard-go", "ratio"];
const W = [14, 14, 8, 14];
console.log(`${"".padEnd(30)} ${cols.map((c, i) => c.padStart(W[i])).join(" ")}`);
const row = (name: string, p: number, g: number, o: number | null, higherBetter = true) => {
  const ratio = higherBetter ? p / g : g / p;
  const cells = [p.toFixed(2), g.toFixed(2), ratio.toFixed(2)].map((c, i) => c.padStart(W[i]));
  if (o !== null) cells.push(o.toFixed(2).padStart(W[3]));
  console.log(`${name.padEnd(30)} ${cells.join(" ")}`);
  return ratio;
};
const r1 = row("TCP a→b Mbit/s (received)", pc.fwd.mbps, go.fwd.mbps, off?.fwd.mbps ?? null);
const r2 = row("TCP b→a Mbit/s (received)", pc.rev.mbps, go.rev.mbps, off?.rev.mbps ?? null);
row("ping RTT avg ms", pc.rttAvgMs, go.rttAvgMs, off?.rttAvgMs ?? null, false);
row("ping RTT min ms", pc.rttMinMs, go.rttMinMs, off?.rttMinMs ?? null, false);
row(
  "CPU s per Gbit a→b (both ends)",
  pc.fwd.cpuPerGbit,
  go.fwd.cpuPerGbit,
  off?.fwd.cpuPerGbit ?? null,
  false,
);
row(
  "CPU s per Gbit b→a (both ends)",
  pc.rev.cpuPerGbit,
  go.rev.cpuPerGbit,
  off?.rev.cpuPerGbit ?? null,
  false,
);
// Retransmits are counts (packets the tunnel lost under load), not a ratio.
const rtx = (r: Result) => `${r.fwd.retransmits} / ${r.rev.retransmits}`;
const rtxCells = [rtx(pc).padStart(W[0]), rtx(go).padStart(W[1]), "".padStart(W[2])];
if (off) rtxCells.push(rtx(off).padStart(W[3]));
console.log(`${"TCP retransmits a→b / b→a".padEnd(30)} ${rtxCells.join(" ")}`);
console.log(`throughput ratio (mean of both directions): ${((r1 + r2) / 2).toFixed(2)}`);
if (off) {
  const gain = ((pc.fwd.mbps / off.fwd.mbps) + (pc.rev.mbps / off.rev.mbps)) / 2;
  console.log(`offloads on / off (mean of both directions): ${gain.toFixed(2)}`);
}
