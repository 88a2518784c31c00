/**
 * Benchmark (not a test): enrolments per second and latency percentiles with
 * 50 concurrent clients against a served edge on loopback (plain HTTP, the
 * edge in its own process), then the edge's resident memory (VmRSS) with
 * 5,000 enrolled devices and their peers loaded, both live and after a
 * restart that reloads them from the database.
 *
 * Usage: deno run -A test/bench/enroll.ts [total=5000] [concurrency=50]
 */
import { spawnEdge } from "../edge/crash_test.ts";

const total = Number(Deno.args[0] ?? 5000);
const concurrency = Number(Deno.args[1] ?? 50);
const key32 = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
}

const dir = await Deno.makeTempDir();
try {
  let { child, info } = await spawnEdge(dir);
  const rssIdle = rssKiB(child.pid);
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  const client = async () => {
    while (next < total) {
      next++;
      const body = JSON.stringify({
        key: info.key,
        hostname: "bench-host",
        os: "linux",
        osVersion: "Debian 13",
        connectorVersion: "0.1.0",
        fingerprint: { machineId: crypto.randomUUID(), macs: ["02:00:00:00:00:01"] },
        wgPublicKey: key32(),
        signingPublicKey: key32(),
      });
      const t = performance.now();
      const res = await fetch(`http://127.0.0.1:${info.port}/api/v1/enroll`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      await res.arrayBuffer();
      latencies.push(performance.now() - t);
      if (res.status !== 200) errors++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, client));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  const rssLoaded = rssKiB(child.pid);
  child.kill("SIGTERM");
  await child.status;

  ({ child, info } = await spawnEdge(dir));
  await new Promise((r) => setTimeout(r, 500));
  const rssRestart = rssKiB(child.pid);
  child.kill("SIGTERM");
  await child.status;

  console.log(JSON.stringify(
    {
      enrolments: total,
      concurrency,
      errors,
      seconds: Number(elapsed.toFixed(2)),
      enrolmentsPerSec: Math.round(total / elapsed),
      latencyMs: {
        p50: Number(pct(0.5).toFixed(1)),
        p90: Number(pct(0.9).toFixed(1)),
        p99: Number(pct(0.99).toFixed(1)),
        max: Number(latencies.at(-1)!.toFixed(1)),
      },
      rssMiB: {
        idleEmpty: Number((rssIdle / 1024).toFixed(1)),
        afterEnrolments: Number((rssLoaded / 1024).toFixed(1)),
        restartWith5000Loaded: Number((rssRestart / 1024).toFixed(1)),
      },
    },
    null,
    2,
  ));
} finally {
  await Deno.remove(dir, { recursive: true });
}
