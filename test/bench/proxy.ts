/**
 * Benchmark (not a test): what the edge's inspecting web proxy costs.
 *
 *   deno task bench:proxy [seconds=5] [rounds=3]   (root; under flock /tmp/pcl-lab.lock)
 *
 * A real edge and connector in network namespaces (test/e2e/web_lab.ts);
 * two load generators on the workstation, through the tunnel, to the same
 * origin on two paths in alternating rounds of the same run:
 *
 * - inspected: HTTPS to port 443, redirected into the proxy, TLS terminated
 *   with a leaf from the inspection CA, URL policy on the path, re-encrypted
 *   to the origin (verified);
 * - plain NAT: HTTPS to port 8443 of the same origin, which the redirect
 *   leaves alone, so the edge only routes and masquerades it.
 *
 * The clients: ApacheBench (`ab -k`: HTTP/1.0 with keep-alive) and wrk
 * (HTTP/1.1 keep-alive, as browsers and API clients speak when they do not
 * speak HTTP/2). They take different paths through the inspector: until
 * 88cab23 only HTTP/1.0 keep-alive requests had small bodies read whole, and
 * ab alone hid that an HTTP/1.1 client got a third of the requests/s.
 *
 * For small objects (1 KiB) and 10 MB downloads: requests/s and p99 latency
 * of each, and the ratio inspected / plain (medians of the rounds); then
 * the CPU time each side spent per request on each path (the processes in
 * the edge's, the workstation's and the internet's namespaces, from
 * /proc/PID/stat; the load generator itself is not counted), which says where a path's cost
 * is when throughput alone cannot (the rounds are latency-bound, and the
 * machine is shared). Then the cost of issuing one leaf certificate (P-256,
 * @peculiar/x509), in process.
 *
 * The origin (test/e2e/tools/web_origin.ts) runs without Nagle, as real web
 * servers do: with it, every keep-alive response on both paths waited 40 ms
 * for ab's delayed ACK, which hid what the proxy costs behind the origin.
 * With ab's HTTP/1.0, inspected 10 MB responses come close-delimited (one
 * TLS handshake each, see src/proxy/inspector.ts); with wrk they do not.
 */
import { canUseNetns, NetnsLab, sh } from "../e2e/netns.ts";
import { inNs, startWebLab } from "../e2e/web_lab.ts";
import { InspectionCa } from "../../src/proxy/inspection_ca.ts";

const seconds = Number(Deno.args[0] ?? 5);
const rounds = Number(Deno.args[1] ?? 3);

interface LoadResult {
  rps: number;
  p99: number;
  failed: number;
  /** ab's breakdown of failures ("Connect: 0, Receive: 0, Length: 3, Exceptions: 0"). */
  why: string;
  /** Responses that were not 2xx. */
  non2xx: number;
  /** CPU µs per request in each namespace of `cpuOf` (edge, workstation, internet). */
  cpuUs: number[];
}

/** CPU time (ms, user + system) used so far by the processes in namespace `ns`. */
async function nsCpuMs(ns: string): Promise<number> {
  const pids = (await sh(["ip", "netns", "pids", ns], { check: false })).stdout.split(/\s+/)
    .filter(Boolean);
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    } catch {
      // exited meanwhile
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** Runs `cmd` in `ns` and reads its result with `parse`, adding the namespaces' CPU per request. */
async function measured(
  ns: string,
  cmd: string[],
  parse: (out: string) => Omit<LoadResult, "cpuUs"> & { done: number },
): Promise<LoadResult> {
  const before = await Promise.all(cpuOf.map(nsCpuMs));
  const r = await inNs(ns, cmd);
  const after = await Promise.all(cpuOf.map(nsCpuMs));
  if (Deno.env.get("BENCH_VERBOSE")) console.log(r.stdout);
  const { done, ...res } = parse(r.stdout);
  if (!Number.isFinite(res.rps) || !Number.isFinite(done)) {
    throw new Error(`${cmd[0]} failed: ${r.stdout.slice(-400)} ${r.stderr.slice(-400)}`);
  }
  const cpuUs = after.map((a, i) => ((a - before[i]) * 1000) / done);
  return { ...res, cpuUs };
}

/** ApacheBench: HTTP/1.0 with keep-alive. */
function ab(ns: string, args: string[]): Promise<LoadResult> {
  return measured(ns, ["ab", "-q", "-k", "-r", "-s", "30", ...args], (out) => ({
    rps: Number(/Requests per second:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p99: Number(/\s99%\s+(\d+)/.exec(out)?.[1] ?? NaN),
    failed: Number(/Failed requests:\s+(\d+)/.exec(out)?.[1] ?? NaN),
    why: /Failed requests:\s+\d+\s*\n\s*\(([^)]*)\)/.exec(out)?.[1] ?? "",
    non2xx: Number(/Non-2xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
    done: Number(/Complete requests:\s+(\d+)/.exec(out)?.[1] ?? NaN),
  }));
}

/** wrk: HTTP/1.1 keep-alive, one thread. */
function wrk(ns: string, args: string[]): Promise<LoadResult> {
  return measured(ns, ["wrk", "--latency", "-t", "1", "--timeout", "30s", ...args], (out) => {
    const p = /\s99%\s+([\d.]+)(us|ms|s)\b/.exec(out);
    const scale = { us: 0.001, ms: 1, s: 1000 } as const;
    const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    return {
      rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
      p99: p ? Math.round(Number(p[1]) * scale[p[2] as keyof typeof scale]) : NaN,
      failed: errs ? errs.slice(1).reduce((n, x) => n + Number(x), 0) : 0,
      why: errs ? errs[0] : "",
      non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
      done: Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN),
    };
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

if (!canUseNetns) {
  console.error("bench:proxy needs root and network namespaces");
  Deno.exit(1);
}
await using lab = new NetnsLab("bpx");
const dir = await Deno.makeTempDir({ prefix: "pcbpx" });
lab.defer(() => Deno.remove(dir, { recursive: true }));
const { ns: { ws, edge, inet }, api } = await startWebLab(lab, dir);
const cpuOf = [edge, ws, inet];
await api("/api/v1/admin/web/inspection", "PUT", { enabled: true });
// A realistic policy in front: a few rules the requests walk past.
await api("/api/v1/admin/web/url-rules", "PUT", {
  items: [
    { name: "No gambling", categories: ["gambling"], action: "block" },
    { name: "No social", categories: ["social_media"], action: "block" },
    { name: "No admin", hosts: ["good.example.test"], paths: ["/admin"], action: "block" },
  ],
});

const cases = [
  { name: "1 KiB objects", query: "size=1024", conns: 8 },
  { name: "10 MB downloads", query: "size=10485760", conns: 2 },
];
const clients = [
  {
    name: "ab -k (HTTP/1.0)",
    run: (url: string, conns: number) =>
      ab(ws, ["-c", String(conns), "-t", String(seconds), "-n", "1000000", url]),
  },
  {
    name: "wrk (HTTP/1.1)",
    run: (url: string, conns: number) => wrk(ws, ["-c", String(conns), "-d", `${seconds}s`, url]),
  },
];
console.log(
  `bench:proxy — ${rounds} rounds of ${seconds} s each, alternating; from the workstation through the tunnel`,
);
for (const c of cases) {
  for (const client of clients) {
    const inspected: LoadResult[] = [], plain: LoadResult[] = [];
    // Warm-up: leaf issued, connections pooled.
    await ab(ws, ["-n", "20", "-c", "2", `https://good.example.test/?${c.query}`]);
    for (let i = 0; i < rounds; i++) {
      inspected.push(await client.run(`https://good.example.test/?${c.query}`, c.conns));
      plain.push(await client.run(`https://good.example.test:8443/?${c.query}`, c.conns));
    }
    const ri = median(inspected.map((r) => r.rps)), rp = median(plain.map((r) => r.rps));
    const pi = median(inspected.map((r) => r.p99)), pp = median(plain.map((r) => r.p99));
    const all = [...inspected, ...plain];
    const fail = all.reduce((n, r) => n + r.failed, 0);
    console.log(
      `${c.name}, ${client.name}: inspected ${ri.toFixed(1)} req/s (p99 ${pi} ms), plain NAT ${
        rp.toFixed(1)
      } req/s (p99 ${pp} ms)` +
        ` → ratio ${(ri / rp).toFixed(2)}×; failed requests ${fail}` +
        (fail ? ` (${all.map((r) => r.why).filter(Boolean).join("; ")})` : "") +
        `; non-2xx ${all.reduce((n, r) => n + r.non2xx, 0)}`,
    );
    console.log(
      `  rounds: inspected ${inspected.map((r) => r.rps.toFixed(0)).join(", ")}; plain ${
        plain.map((r) => r.rps.toFixed(0)).join(", ")
      }`,
    );
    const per = (rs: LoadResult[], i: number) => median(rs.map((r) => r.cpuUs[i]));
    const fmt = (us: number) =>
      us >= 10_000 ? `${(us / 1000).toFixed(1)} ms` : `${us.toFixed(0)} µs`;
    console.log(
      "  CPU per request, inspected / plain: " + ["edge", "connector (workstation)", "origin"]
        .map((name, i) => `${name} ${fmt(per(inspected, i))} / ${fmt(per(plain, i))}`).join("; "),
    );
  }
}

const ca = await InspectionCa.ephemeral();
for (let i = 0; i < 20; i++) await ca.issue(`warm${i}.example`);
const n = 300;
const t0 = performance.now();
for (let i = 0; i < n; i++) await ca.issue(`host${i}.example.test`);
const per = (performance.now() - t0) / n;
console.log(
  `leaf certificate issuance (P-256, @peculiar/x509): ${per.toFixed(2)} ms each (${
    (1000 / per).toFixed(0)
  }/s); a cached leaf costs a map lookup`,
);
