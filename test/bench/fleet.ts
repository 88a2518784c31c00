/**
 * Benchmark (not a test): the fleet's control plane on its two store
 * backends, in the same run, measured the same way.
 *
 *   deno task bench:fleet [enrolments=1000] [concurrency=16] [devices=1000] [changes=3]
 *
 * Each edge is a real edge in its own process (test/fleet/edge_main.ts:
 * `startEdge` with the HTTPS API, no data plane); every device is the
 * connector's own API client (src/http/edge_client.ts EdgeClient: its own
 * TLS connection trusting only the edge CA).
 *
 * 1. Enrolment: `enrolments` devices enrol with `concurrency` at a time on
 *    an edge with its SQLite file, on an edge on a throwaway PostgreSQL
 *    (src/store/pg/cluster.ts), and on two edges sharing another database of
 *    that server (half the clients on each). Enrolments/s, p50 and p99 of
 *    the enrol call as the connector sees it, and PostgreSQL / SQLite.
 * 2. Policy fan-out: `devices` of those devices hold the policy stream open
 *    (GET /api/v1/policy/stream, one socket each, as the connector follows
 *    it) on the SQLite edge, on the PostgreSQL edge, and split over the two
 *    PostgreSQL edges with the change made on the first. The admin makes
 *    `changes` policy changes (PUT /api/v1/admin/policy/client-to-client,
 *    which changes every device's bundle). For each device: the time from
 *    sending the admin's call, and from its return, to the device's stream
 *    announcing the new version; beside it the admin call's own time and the
 *    CPU the edges and the PostgreSQL server spent per change. (The edge
 *    builds every device's bundle before it answers the admin, so the time
 *    from the return alone would hide the fan-out.)
 *
 * On a shared machine run it under `flock /tmp/pcl-lab.lock nice -n 19`; one
 * run takes about two minutes on two cores. Fails (exit 1) only when a device
 * never receives a change within 30 s or an enrolment fails.
 * `FLEET_BENCH_CPU_PROF=<dir>` runs the edges with --cpu-prof into <dir>.
 */
import { EdgeClient } from "../../src/http/edge_client.ts";
import { fingerprintHash } from "../../src/connector/identity.ts";
import { pgBinDir, type PgCluster, startPgCluster } from "../../src/store/pg/cluster.ts";
import { setLogSinks } from "../../src/log.ts";
import {
  type EdgeProcess,
  joinFleet,
  spawnEdge as spawnEdgeProcess,
} from "../fleet/edge_process.ts";

setLogSinks([]);
const enrolments = Number(Deno.args[0] ?? 1000);
const concurrency = Number(Deno.args[1] ?? 16);
const deviceCount = Number(Deno.args[2] ?? 1000);
const changes = Number(Deno.args[3] ?? 3);
/** Longest a device may take to hear of a change before the run fails. */
const DELIVERY_TIMEOUT_MS = 30_000;
/** Streams opened at once while connecting the fleet (a connect storm is not what we measure). */
const CONNECT_BATCH = 50;
const profDir = Deno.env.get("FLEET_BENCH_CPU_PROF");

if (deviceCount > enrolments) throw new Error("devices must not exceed enrolments");

// ---------------------------------------------------------------- helpers

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

const key32 = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

/** CPU seconds of a process so far, every thread (the scheduler's own account). */
function cpuSeconds(pid: number): number {
  let ns = 0;
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/schedstat`).split(" ")[0]);
    } catch { /* the thread just ended */ }
  }
  return ns / 1e9;
}

/** CPU seconds of a PostgreSQL server so far: the postmaster and its backends. */
function pgCpuSeconds(c: PgCluster | null): number {
  if (!c) return 0;
  let postmaster: number;
  try {
    postmaster = Number(Deno.readTextFileSync(`${c.dir}/data/postmaster.pid`).split("\n")[0]);
  } catch {
    return 0;
  }
  let total = 0;
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const pid = Number(e.name);
    try {
      // Field 4 of /proc/<pid>/stat (after the parenthesised name) is the parent.
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (pid === postmaster || ppid === postmaster) total += cpuSeconds(pid);
    } catch { /* it just ended */ }
  }
  return total;
}

/** This process's soft limit on open files. */
function openFileLimit(): number {
  const m = /Max open files\s+(\d+|unlimited)/.exec(Deno.readTextFileSync("/proc/self/limits"));
  return !m || m[1] === "unlimited" ? Infinity : Number(m[1]);
}

type Edge = EdgeProcess;

const running = new Set<Edge>();

/** Starts an edge that cleanup() stops. */
async function spawnEdge(dir: string, name: string, database?: string): Promise<Edge> {
  const e = await spawnEdgeProcess(dir, name, { database, cpuProfDir: profDir });
  running.add(e);
  return {
    ...e,
    stop() {
      running.delete(e);
      return e.stop();
    },
  };
}

/** An enrolled device: what the connector keeps to talk to the edge afterwards. */
interface Device {
  credential: string;
  fpHash: string;
}

function client(edge: Edge, device?: Device): EdgeClient {
  return new EdgeClient({
    apiUrl: `https://127.0.0.1:${edge.info.api}`,
    caPem: edge.info.caPem,
    credential: device?.credential ?? null,
    fingerprintHash: device?.fpHash ?? null,
    timeoutMs: 60_000,
  });
}

// ------------------------------------------------------------- enrolment

interface EnrolResult {
  label: string;
  perSec: number;
  p50: number;
  p99: number;
  errors: number;
  firstError: string | null;
  devices: Device[];
}

/** One device enrols as the connector does: its own client (TLS connection), one enrol call. */
async function enrolOne(edge: Edge, i: number): Promise<Device> {
  const fingerprint = {
    machineId: crypto.randomUUID().replaceAll("-", ""),
    macs: ["02:00:00:00:00:01"],
  };
  const c = client(edge);
  try {
    const res = await c.enroll({
      key: edge.info.key,
      hostname: `bench-${i}`,
      os: "linux",
      osVersion: "Debian 13",
      connectorVersion: "0.1.0",
      fingerprint,
      wgPublicKey: key32(),
      signingPublicKey: key32(),
    });
    return { credential: res.credential, fpHash: await fingerprintHash(fingerprint) };
  } finally {
    c.close();
  }
}

/** `total` enrolments, `concurrency` at a time, the clients spread evenly over `edges`. */
async function enrolMany(label: string, edges: Edge[], total: number): Promise<EnrolResult> {
  // Warm-up (not counted): JIT, first TLS handshakes, prepared statements.
  await Promise.all(edges.flatMap((e) => Array.from({ length: 4 }, (_, i) => enrolOne(e, -i))));
  const latencies: number[] = [];
  const devices: Device[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let next = 0;
  const worker = async (w: number) => {
    const edge = edges[w % edges.length];
    while (next < total) {
      const i = next++;
      const t = performance.now();
      try {
        devices.push(await enrolOne(edge, i));
        latencies.push(performance.now() - t);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const seconds = (performance.now() - t0) / 1000;
  return {
    label,
    perSec: latencies.length / seconds,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    errors,
    firstError,
    devices,
  };
}

// -------------------------------------------------------------- fan-out

interface Follower {
  edgeIndex: number;
  version: string | null;
  /** performance.now() when the current change reached it, or null. */
  got: number | null;
  errors: number;
}

interface FanOutResult {
  label: string;
  devices: number;
  /** Per edge index: ms from sending the admin call to each delivery, all changes. */
  sinceSend: number[][];
  /** The same from the admin call's return (negative: delivered before the admin's answer). */
  sinceReturn: number[][];
  adminMs: number[];
  /** CPU of every edge process per change, ms. */
  cpuMs: number[];
  /** CPU of the PostgreSQL server per change, ms. */
  pgCpuMs: number[];
  reconnects: number;
  missing: number;
}

/**
 * Opens the policy stream of `devices` (device i on edge i mod edges), makes
 * `changes` policy changes on `edges[0]` and times each device's delivery.
 */
async function fanOut(
  label: string,
  edges: Edge[],
  devices: Device[],
  pg: PgCluster | null,
): Promise<FanOutResult> {
  const abort = new AbortController();
  const followers: Follower[] = devices.map((_, i) => ({
    edgeIndex: i % edges.length,
    version: null,
    got: null,
    errors: 0,
  }));
  const clients: EdgeClient[] = [];
  let wake: () => void = () => {};
  const runs: Promise<void>[] = [];
  const result: FanOutResult = {
    label,
    devices: devices.length,
    sinceSend: edges.map(() => []),
    sinceReturn: edges.map(() => []),
    adminMs: [],
    cpuMs: [],
    pgCpuMs: [],
    reconnects: 0,
    missing: 0,
  };
  // Counted as they come, so a check costs nothing per announcement.
  let opened = 0;
  let delivered = 0;
  /** Waits until `done()` holds, re-checked on every announcement; false on timeout. */
  const until = (done: () => boolean, ms: number) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        wake = () => {};
        resolve(done());
      }, ms);
      wake = () => {
        if (!done()) return;
        clearTimeout(timer);
        wake = () => {};
        resolve(true);
      };
      wake();
    });
  try {
    for (let start = 0; start < devices.length; start += CONNECT_BATCH) {
      for (let i = start; i < Math.min(devices.length, start + CONNECT_BATCH); i++) {
        const f = followers[i];
        const c = client(edges[f.edgeIndex], devices[i]);
        clients.push(c);
        runs.push(
          c.followPolicy({
            signal: abort.signal,
            onVersion: (v) => {
              const now = performance.now();
              if (f.version === null) opened++;
              else if (v !== f.version && f.got === null) {
                f.got = now;
                delivered++;
              }
              f.version = v;
              wake();
            },
            onError: () => f.errors++,
          }).catch(() => {}),
        );
      }
      const want = Math.min(devices.length, start + CONNECT_BATCH);
      if (!await until(() => opened >= want, DELIVERY_TIMEOUT_MS)) {
        throw new Error(`${label}: policy streams did not all open within 30 s`);
      }
    }
    const admin = edges[0];
    let enabled = false;
    for (let round = 0; round < changes; round++) {
      for (const f of followers) f.got = null;
      delivered = 0;
      enabled = !enabled;
      const cpu0 = edges.reduce((s, e) => s + cpuSeconds(e.info.pid), 0);
      const pg0 = pgCpuSeconds(pg);
      const t0 = performance.now();
      const res = await fetch(
        `http://127.0.0.1:${admin.info.console}/api/v1/admin/policy/client-to-client`,
        {
          method: "PUT",
          headers: {
            authorization: `Bearer ${admin.info.token}`,
            "content-type": "application/json",
          },
          body: JSON.stringify({ enabled }),
        },
      );
      const t1 = performance.now();
      if (res.status !== 200) throw new Error(`Policy change: ${res.status} ${await res.text()}`);
      await res.body?.cancel();
      result.adminMs.push(t1 - t0);
      const all = await until(() => delivered === followers.length, DELIVERY_TIMEOUT_MS);
      result.cpuMs.push(
        (edges.reduce((s, e) => s + cpuSeconds(e.info.pid), 0) - cpu0) * 1000,
      );
      result.pgCpuMs.push((pgCpuSeconds(pg) - pg0) * 1000);
      for (const f of followers) {
        if (f.got === null) result.missing++;
        else {
          result.sinceSend[f.edgeIndex].push(f.got - t0);
          result.sinceReturn[f.edgeIndex].push(f.got - t1);
        }
      }
      if (!all) break;
    }
  } finally {
    result.reconnects = followers.reduce((s, f) => s + f.errors, 0);
    abort.abort();
    await Promise.all(runs);
    for (const c of clients) c.close();
  }
  return result;
}

// ------------------------------------------------------------------ run

const limit = openFileLimit();
if (limit < deviceCount + 256) {
  console.error(
    `Open-file limit ${limit} is too low for ${deviceCount} device connections; run "ulimit -n ${
      deviceCount * 2 + 512
    }" first`,
  );
  Deno.exit(2);
}
if (pgBinDir() === null) {
  console.error("PostgreSQL's server is not installed (apt-get install postgresql)");
  Deno.exit(2);
}

const root = await Deno.makeTempDir({ prefix: "pcl-fleet-bench-" });
let cluster: PgCluster | null = null;
let failed = false;
const began = performance.now();
const enrolled: EnrolResult[] = [];
const fanned: FanOutResult[] = [];
let cleaning: Promise<void> | null = null;
/** Stops every edge and the server and deletes the directories, once. */
const cleanup = () =>
  cleaning ??= (async () => {
    for (const e of [...running]) await e.stop();
    await cluster?.stop();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  })();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, () => {
    console.error(`${sig}: stopping the edges and PostgreSQL`);
    cleanup().finally(() => Deno.exit(130));
  });
}
try {
  cluster = await startPgCluster("pcl-fleet-bench-pg-");
  const shared = await cluster.createDatabase("fleet2");

  const scenarios: { label: string; edges: () => Promise<Edge[]> }[] = [
    { label: "SQLite, 1 edge", edges: async () => [await spawnEdge(`${root}/sqlite`, "sqlite")] },
    {
      label: "PostgreSQL, 1 edge",
      edges: async () => [await spawnEdge(`${root}/pg`, "pg", cluster!.url())],
    },
    {
      label: "PostgreSQL, 2 edges",
      edges: async () => {
        // One after the other: the first start makes the CA and admin in the shared store.
        const a = await spawnEdge(`${root}/pg-a`, "pg-a", shared);
        await joinFleet(`${root}/pg-a`, `${root}/pg-b`);
        return [a, await spawnEdge(`${root}/pg-b`, "pg-b", shared)];
      },
    },
  ];
  for (const s of scenarios) {
    const edges = await s.edges();
    try {
      console.error(`${s.label}: ${enrolments} enrolments…`);
      const e = await enrolMany(s.label, edges, enrolments);
      enrolled.push(e);
      if (e.errors) {
        failed = true;
        console.error(`${s.label}: ${e.errors} enrolments failed, first: ${e.firstError}`);
      }
      if (e.devices.length < deviceCount) throw new Error(`${s.label}: too few devices enrolled`);
      console.error(`${s.label}: ${deviceCount} policy streams, ${changes} changes…`);
      const f = await fanOut(
        s.label,
        edges,
        e.devices.slice(0, deviceCount),
        s.label.startsWith("PostgreSQL") ? cluster : null,
      );
      fanned.push(f);
      if (f.missing) {
        failed = true;
        console.error(`${s.label}: ${f.missing} deliveries never arrived within 30 s`);
      }
    } finally {
      for (const e of edges) await e.stop();
    }
  }
} catch (err) {
  failed = true;
  // After a signal the edges are going away under the run: nothing to report.
  if (!cleaning) {
    console.error(`Benchmark failed: ${(err as Error).stack ?? err}`);
    if (cluster) console.error(cluster.log().slice(-2000));
  }
} finally {
  await cleanup();
}

// ---------------------------------------------------------------- report

const f1 = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(1));
const row = (cells: string[], widths: number[]) =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");

if (enrolled.length) {
  console.log(
    `\nEnrolment: ${enrolments} devices, ${concurrency} at a time, each its own TLS connection`,
  );
  const w = [24, 9, 8, 8, 7];
  console.log(row(["backend", "enrol/s", "p50 ms", "p99 ms", "errors"], w));
  for (const e of enrolled) {
    console.log(
      row([e.label, e.perSec.toFixed(0), f1(e.p50), f1(e.p99), String(e.errors)], w),
    );
  }
  const [s, p] = enrolled;
  if (s && p) {
    console.log(
      `PostgreSQL / SQLite: enrol/s ${(p.perSec / s.perSec).toFixed(2)}, p99 ${
        (p.p99 / s.p99).toFixed(2)
      }`,
    );
  }
}
if (fanned.length) {
  console.log(
    `\nPolicy fan-out: ${deviceCount} devices on the policy stream, ${changes} changes, ms from ` +
      "the admin's call to each device's stream announcing the new version",
  );
  const w = [32, 7, 8, 8, 8, 8, 9, 9, 8, 8];
  console.log(row([
    "scenario (devices on)",
    "devices",
    "admin",
    "p50",
    "p99",
    "max",
    "ret p50",
    "ret p99",
    "CPU edge",
    "CPU pg",
  ], w));
  for (const f of fanned) {
    const line = (label: string, send: number[], ret: number[], n: number, first: boolean) =>
      console.log(row([
        label,
        String(n),
        first ? f1(pct(f.adminMs, 50)) : "",
        f1(pct(send, 50)),
        f1(pct(send, 99)),
        f1(Math.max(...send)),
        f1(pct(ret, 50)),
        f1(pct(ret, 99)),
        first ? f1(pct(f.cpuMs, 50)) : "",
        first && f.label.startsWith("PostgreSQL") ? f1(pct(f.pgCpuMs, 50)) : "",
      ], w));
    line(f.label, f.sinceSend.flat(), f.sinceReturn.flat(), f.devices, true);
    if (f.sinceSend.length > 1) {
      f.sinceSend.forEach((xs, i) =>
        line(
          `  on edge ${String.fromCharCode(65 + i)}${i === 0 ? " (changed here)" : ""}`,
          xs,
          f.sinceReturn[i],
          Math.round(xs.length / changes),
          false,
        )
      );
    }
    if (f.reconnects || f.missing) {
      console.log(`  stream reconnects ${f.reconnects}, missing deliveries ${f.missing}`);
    }
  }
  const [s, p] = fanned;
  if (s && p) {
    const ps = s.sinceSend.flat();
    const pp = p.sinceSend.flat();
    console.log(
      `PostgreSQL / SQLite (1 edge): p50 ${(pct(pp, 50) / pct(ps, 50)).toFixed(2)}, p99 ${
        (pct(pp, 99) / pct(ps, 99)).toFixed(2)
      }`,
    );
  }
  console.log(
    "admin: the PUT's own time; ret: from its return (negative = before the admin had the answer);\n" +
      "CPU: ms per change of every edge process / of the PostgreSQL server (medians)",
  );
}
console.log(`\ntotal ${((performance.now() - began) / 1000).toFixed(0)} s`);
Deno.exit(failed ? 1 : 0);
