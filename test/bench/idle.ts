/**
 * Measurement (not a test): what an idle lab costs. Brings the lab up (or
 * uses the running one), lets it settle, then over a window of idle time
 * reads each process's CPU time from /proc/<pid>/stat (utime + stime, all
 * threads) and counts, with nftables counters in the edge's namespace, the
 * DNS queries reaching the edge and the tunnel datagrams it receives. Prints
 * CPU % of one core per process and the rates, then takes the lab down
 * unless it was already up.
 *
 * Usage (the lab uses fixed names, so take its lock):
 *   flock /tmp/pcl-lab.lock deno run -A test/bench/idle.ts [seconds=300] [settle=20]
 */
import { labDown, labUp } from "../../src/lab/mod.ts";
import { NS, PORTS } from "../../src/lab/topology.ts";

const seconds = Number(Deno.args[0] ?? 300);
const settle = Number(Deno.args[1] ?? 20);
const DIR = "./data/lab";
const TABLE = "pcl_idle_count";

async function sh(cmd: string[], check = true): Promise<string> {
  const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  const out = new TextDecoder().decode(r.stdout);
  if (check && r.code !== 0) {
    throw new Error(`${cmd.join(" ")}: ${new TextDecoder().decode(r.stderr).trim()}`);
  }
  return out;
}

/** utime + stime of a process in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // The command name may hold spaces: fields start after the last ")".
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // fields 14 and 15 of proc(5)
}

const clkTck = Number((await sh(["getconf", "CLK_TCK"])).trim()) || 100;

async function counters(): Promise<{ dns: number; tunnel: number }> {
  const j = JSON.parse(
    await sh(["ip", "netns", "exec", NS.edge, "nft", "-j", "list", "table", "inet", TABLE]),
  );
  const out = { dns: 0, tunnel: 0 };
  for (const item of j.nftables) {
    const rule = item.rule;
    if (!rule) continue;
    const counter = rule.expr.find((e: Record<string, unknown>) => "counter" in e)?.counter;
    if (!counter) continue;
    if (rule.comment === "dns") out.dns = counter.packets;
    if (rule.comment === "tunnel") out.tunnel = counter.packets;
  }
  return out;
}

const wasUp = await Deno.stat(`${DIR}/state.json`).then(() => true, () => false);
await labUp({ dir: DIR, print: (l) => console.error(l) });
try {
  const state = JSON.parse(await Deno.readTextFile(`${DIR}/state.json`));
  const pids: Record<string, number> = state.pids;
  const rules = `table inet ${TABLE} {
  chain input {
    type filter hook input priority -300; policy accept;
    udp dport 53 counter comment "dns"
    udp dport ${PORTS.tunnel} counter comment "tunnel"
  }
}`;
  const nft = new Deno.Command("ip", {
    args: ["netns", "exec", NS.edge, "nft", "-f", "-"],
    stdin: "piped",
    stderr: "piped",
  }).spawn();
  const w = nft.stdin.getWriter();
  await w.write(new TextEncoder().encode(rules));
  await w.close();
  if (!(await nft.status).success) throw new Error("Cannot add the nftables counters");
  try {
    console.error(`Settling for ${settle} s, then measuring ${seconds} s of idle time...`);
    await new Promise((r) => setTimeout(r, settle * 1000));
    const names = ["edge", "ws", "gw"] as const;
    const t0 = performance.now();
    const c0 = await counters();
    const before = Object.fromEntries(names.map((n) => [n, cpuTicks(pids[n])]));
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const after = Object.fromEntries(names.map((n) => [n, cpuTicks(pids[n])]));
    const c1 = await counters();
    const elapsed = (performance.now() - t0) / 1000;
    const result: Record<string, unknown> = { seconds: Math.round(elapsed) };
    for (const n of names) {
      const cpu = (after[n] - before[n]) / clkTck;
      result[`${n}CpuPercent`] = Math.round((cpu / elapsed) * 1000) / 10;
    }
    result.dnsQueriesPerSecAtEdge = Math.round(((c1.dns - c0.dns) / elapsed) * 100) / 100;
    result.tunnelDatagramsPerSecAtEdge = Math.round(((c1.tunnel - c0.tunnel) / elapsed) * 100) /
      100;
    console.log(JSON.stringify(result));
  } finally {
    await sh(["ip", "netns", "exec", NS.edge, "nft", "delete", "table", "inet", TABLE], false);
  }
} finally {
  if (!wasUp) await labDown({ dir: DIR, print: (l) => console.error(l) });
}
