/**
 * Real edges in their own processes for fleet tests and benchmarks
 * (test/fleet/edge_main.ts: the edge as `portcullis edge` composes it, with
 * the HTTPS API and without the data plane), and joining a second edge to
 * the first one's fleet with the join key, as the README says.
 */
import { startPgCluster } from "../../src/store/pg/cluster.ts";

/** What a started edge prints: its ports, a reusable key, an admin token and its CA. */
export interface EdgeInfo {
  api: number;
  console: number;
  key: string;
  token: string;
  caPem: string;
  pid: number;
}

/** A running edge_main.ts child. */
export interface EdgeProcess {
  name: string;
  info: EdgeInfo;
  /** Stops it (stdin closed: a clean stop; SIGKILL after 10 s). Idempotent. */
  stop(): Promise<void>;
}

/** Options of spawnEdge. */
export interface SpawnOptions {
  /** A postgres:// URL; the SQLite file in `dir` otherwise. */
  database?: string;
  /** Writes a CPU profile `<name>.cpuprofile` into this directory. */
  cpuProfDir?: string;
}

/** Starts an edge on data directory `dir` and waits until it serves. */
export async function spawnEdge(
  dir: string,
  name: string,
  opts: SpawnOptions = {},
): Promise<EdgeProcess> {
  const args = ["run", "-A"];
  if (opts.cpuProfDir) {
    args.push(
      "--cpu-prof",
      `--cpu-prof-dir=${opts.cpuProfDir}`,
      `--cpu-prof-name=${name}.cpuprofile`,
    );
  }
  args.push(new URL("./edge_main.ts", import.meta.url).pathname, dir, name);
  if (opts.database) args.push(opts.database);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) {
      await child.stdin.close().catch(() => {});
      await child.status;
      throw new Error(`Edge "${name}" exited before it was ready`);
    }
    buf += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const info = JSON.parse(buf.split("\n")[0]) as EdgeInfo;
  let stopped: Promise<void> | null = null;
  return {
    name,
    info,
    stop() {
      stopped ??= (async () => {
        // Closing stdin stops it cleanly (profile written); SIGKILL if it hangs.
        await child.stdin.close().catch(() => {});
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
        }, 10_000);
        await child.status;
        clearTimeout(timer);
      })();
      return stopped;
    },
  };
}

/**
 * Prepares data directory `to` to join the fleet of the edge in `from`
 * (before its first start): only the fleet's join key, in the place the
 * edge looks by default (`<dataDir>/fleet.key`); the CA, the sealing key
 * and the inspection CA come from the shared database (README, "Several
 * edges").
 */
export async function joinFleet(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true, mode: 0o700 });
  await Deno.copyFile(`${from}/fleet.key`, `${to}/fleet.key`);
  await Deno.chmod(`${to}/fleet.key`, 0o600);
}

/** Two edges of one fleet on a throwaway PostgreSQL (withTwoEdgeFleet). */
export interface TwoEdgeFleet {
  /** The shared database's URL. */
  url: string;
  /** The edges' data directories are `<root>/a` and `<root>/b`. */
  root: string;
  a: EdgeProcess;
  b: EdgeProcess;
}

/**
 * Runs `fn` with edges "a" and "b" on one new PostgreSQL: "a" starts first
 * (it makes the CA and the admin in the shared store), "b" joins with the
 * join key. The server's log goes to stderr when `fn` fails; edges, server
 * and directories are removed afterwards either way.
 */
export async function withTwoEdgeFleet(
  prefix: string,
  fn: (f: TwoEdgeFleet) => Promise<void>,
): Promise<void> {
  const cluster = await startPgCluster(prefix);
  const root = await Deno.makeTempDir({ prefix });
  const edges: EdgeProcess[] = [];
  try {
    const url = cluster.url();
    edges.push(await spawnEdge(`${root}/a`, "a", { database: url }));
    await joinFleet(`${root}/a`, `${root}/b`);
    edges.push(await spawnEdge(`${root}/b`, "b", { database: url }));
    await fn({ url, root, a: edges[0], b: edges[1] });
  } catch (err) {
    console.error(cluster.log().slice(-3000));
    throw err;
  } finally {
    for (const e of edges) await e.stop();
    await cluster.stop();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}
