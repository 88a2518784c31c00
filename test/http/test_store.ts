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
 * even after a failure (the unload handler cannot await, so it stops the
 * server with the cluster's blocking stop).
 */
import { openStore, type Store } from "../../src/store/mod.ts";
import type { Sealer } from "../../src/store/repos/mod.ts";
import { type PgCluster, startPgCluster } from "../../src/store/pg/cluster.ts";

/** The environment variable that selects the backend, and its PostgreSQL value. */
export const TEST_STORE_ENV = "PORTCULLIS_TEST_STORE";

let cluster: Promise<PgCluster> | null = null;
/** The server, once it runs. */
let running: PgCluster | null = null;
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
  const c = running = await cluster;
  const url = await c.createDatabase(`fixture${++databases}`);
  const s = openStore(url, opts);
  opened.push(s);
  return s;
}

/** Closes the stores and stops the server, without awaiting (see the module comment). */
function stopNow(): void {
  for (const s of opened) {
    // Best effort: a store a test already closed says so.
    s.close().catch(() => {});
  }
  opened = [];
  running?.stopSync();
}
