/**
 * The store an edge test fixture runs on. By default a fresh in-memory
 * SQLite database. With PORTCULLIS_TEST_STORE=postgres (the test command's
 * second pass, test/run.ts), a fresh database on a real PostgreSQL server
 * instead, so every feature test also runs on a fleet's shared store: that
 * pass found ZDX history failing and the web log lost on PostgreSQL, which
 * no repository test had covered.
 *
 * The server is this test module's own (deno test gives each module its own
 * global state), started on first use and stopped when the module unloads,
 * even after a failure. The unload handler cannot await, so it stops the
 * server with SIGQUIT (PostgreSQL's immediate shutdown) and waits for it to
 * exit before removing its directory.
 */
import { openStore, type Store } from "../../src/store/mod.ts";
import type { Sealer } from "../../src/store/repos/mod.ts";
import { type PgCluster, startPgCluster } from "../../src/store/pg/cluster.ts";
import { alive } from "../e2e/procs.ts";

/** The environment variable that selects the backend, and its PostgreSQL value. */
export const TEST_STORE_ENV = "PORTCULLIS_TEST_STORE";

let cluster: Promise<PgCluster> | null = null;
/** The server's directory, once it runs. */
let dir: string | null = null;
let opened: Store[] = [];
let databases = 0;

/** True when this run's fixtures use PostgreSQL. */
export function onPostgres(): boolean {
  return Deno.env.get(TEST_STORE_ENV) === "postgres";
}

/** A fresh, migrated store on the backend this run tests. */
export async function testStore(opts: { sealer?: Sealer } = {}): Promise<Store> {
  if (!onPostgres()) return openStore(":memory:", opts);
  if (!cluster) {
    cluster = startPgCluster("pcl-pg-fixture-");
    globalThis.addEventListener("unload", stopNow);
  }
  const c = await cluster;
  dir = c.dir;
  const url = await c.createDatabase(`fixture${++databases}`);
  const s = openStore(url, opts);
  opened.push(s);
  return s;
}

/** Closes the stores and kills the server synchronously (see the module comment). */
function stopNow(): void {
  for (const s of opened) {
    // Best effort: a store a test already closed says so.
    s.close().catch(() => {});
  }
  opened = [];
  if (!dir) return;
  let pid = 0;
  try {
    pid = Number(Deno.readTextFileSync(`${dir}/data/postmaster.pid`).split("\n")[0]);
  } catch {
    // not running
  }
  if (pid > 0) {
    try {
      Deno.kill(pid, "SIGQUIT");
      const wait = new Int32Array(new SharedArrayBuffer(4));
      const deadline = Date.now() + 10_000;
      // Until the postmaster has exited, at most 10 s.
      while (Date.now() < deadline && alive(pid)) Atomics.wait(wait, 0, 0, 10);
    } catch {
      // already gone
    }
  }
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch {
    // left for the OS's temporary directory cleanup
  }
}
