/**
 * The store on PostgreSQL: the same synchronous `SqlDatabase` the
 * repositories use on SQLite, so several edges can share one database with
 * the same repositories, migrations and transactions.
 *
 * Each call posts the statement to the worker (worker.ts) and waits on a
 * shared flag for the answer. The wait blocks this thread for one round
 * trip to the server, which is what SQLite's synchronous calls do for a
 * disk write; put the database next to the edges (a LAN or a Unix socket),
 * not across a WAN.
 *
 * Transactions serialise writers across every edge with a transaction-scoped
 * advisory lock taken right after BEGIN: a read followed by a write inside
 * one transaction (the lowest free address, a single-use key's first claim)
 * sees no other edge's write in between, as with SQLite's BEGIN IMMEDIATE,
 * and nothing is held past COMMIT or a dropped connection.
 */
import { deserialize } from "node:v8";
import { StoreError } from "../db.ts";
import type { Migration } from "../migrations.ts";
import { pendingMigrations, recordMigration } from "../migrate.ts";
import type { RunResult, SqlDatabase, SqlValue } from "../sql.ts";
import { type BridgeReply, type BridgeRequest, FLAG, LENGTH } from "./protocol.ts";
import { PREAMBLE, translateMigration, translateStatement } from "./translate.ts";

/** The advisory lock every transaction takes (an arbitrary constant: "PCLS"). */
const WRITER_LOCK = 0x50434c53;

/** Options for `PgDatabase.open`. */
export interface PgOpenOptions {
  /** Migrations to apply. */
  migrations: readonly Migration[];
  /** Shown in pg_stat_activity. Default "portcullis". */
  application?: string;
  /** Longest a single statement may run on the server (ms). Default 30 s. */
  statementTimeoutMs?: number;
  /** Longest to wait for the server at open (s). Default 10. */
  connectTimeoutS?: number;
}

/** Raised for a failed statement; `sqlState` is PostgreSQL's error code. */
export class PgStoreError extends StoreError {
  constructor(message: string, readonly sqlState: string) {
    super(message);
  }
}

/** A database URL with its password hidden, for logs and `path`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "postgres://(unparsable)";
  }
}

/** A synchronous PostgreSQL connection (through a worker). */
export class PgDatabase implements SqlDatabase {
  readonly dialect = "postgres";
  readonly path: string;
  #worker: Worker;
  #ctrl: Int32Array;
  #data: SharedArrayBuffer;
  #waitMs: number;
  #texts = new Map<string, string>();
  #depth = 0;
  #closed = false;

  private constructor(
    url: string,
    worker: Worker,
    ctrl: SharedArrayBuffer,
    data: SharedArrayBuffer,
    waitMs: number,
  ) {
    this.path = redactUrl(url);
    this.#worker = worker;
    this.#ctrl = new Int32Array(ctrl);
    this.#data = data;
    this.#waitMs = waitMs;
  }

  /** Connects to `url` (postgres://…, `?host=/dir` for a Unix socket) and migrates. */
  static open(url: string, opts: PgOpenOptions): PgDatabase {
    const ctrl = new SharedArrayBuffer(8);
    const data = new SharedArrayBuffer(64 * 1024, { maxByteLength: 512 * 1024 * 1024 });
    const statementTimeoutMs = opts.statementTimeoutMs ?? 30_000;
    const connectTimeoutS = opts.connectTimeoutS ?? 10;
    const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    const db = new PgDatabase(
      url,
      worker,
      ctrl,
      data,
      Math.max(statementTimeoutMs, connectTimeoutS * 1000) + 15_000,
    );
    try {
      db.#call({
        op: "open",
        url,
        ctrl,
        data,
        application: opts.application ?? "portcullis",
        connectTimeoutS,
        statementTimeoutMs,
      });
      db.#migrate(opts.migrations);
    } catch (err) {
      db.close();
      if (err instanceof PgStoreError) {
        throw new StoreError(`Cannot open database "${db.path}": ${err.message}`, { cause: err });
      }
      throw err;
    }
    return db;
  }

  /** Posts one request and blocks until the worker has answered. */
  #call(req: BridgeRequest): { rows: Record<string, unknown>[]; count: number } {
    if (this.#closed) throw new StoreError(`Database "${this.path}" is closed`);
    Atomics.store(this.#ctrl, FLAG, 0);
    this.#worker.postMessage(req);
    if (Atomics.wait(this.#ctrl, FLAG, 0, this.#waitMs) === "timed-out") {
      this.#kill();
      throw new StoreError(`Database "${this.path}" did not answer within ${this.#waitMs} ms`);
    }
    const len = Atomics.load(this.#ctrl, LENGTH);
    const reply = deserialize(new Uint8Array(this.#data, 0, len).slice()) as BridgeReply;
    if (!reply.ok) throw new PgStoreError(reply.message, reply.code);
    return reply;
  }

  #text(sql: string): string {
    let t = this.#texts.get(sql);
    if (t === undefined) {
      t = translateStatement(sql);
      if (this.#texts.size > 2000) this.#texts.clear();
      this.#texts.set(sql, t);
    }
    return t;
  }

  #query(sql: string, params: SqlValue[]) {
    return this.#call({ op: "query", sql: this.#text(sql), params, simple: false });
  }

  run(sql: string, ...params: SqlValue[]): RunResult {
    return { changes: this.#query(sql, params).count };
  }

  insert(sql: string, ...params: SqlValue[]): number {
    const row = this.#query(`${sql} RETURNING id`, params).rows[0];
    if (!row) throw new StoreError("INSERT returned no row");
    return Number(row.id);
  }

  get<T>(sql: string, ...params: SqlValue[]): T | undefined {
    return this.#query(sql, params).rows[0] as T | undefined;
  }

  all<T>(sql: string, ...params: SqlValue[]): T[] {
    return this.#query(sql, params).rows as T[];
  }

  exec(sql: string): void {
    this.#call({ op: "query", sql, params: [], simple: true });
  }

  transaction<T>(fn: () => T): T {
    const level = this.#depth;
    const sp = `sp${level}`;
    this.exec(
      level === 0 ? `BEGIN; SELECT pg_advisory_xact_lock(${WRITER_LOCK})` : `SAVEPOINT ${sp}`,
    );
    this.#depth = level + 1;
    try {
      const result = fn();
      if (result instanceof Promise) {
        throw new StoreError("Cannot run an asynchronous function inside a transaction");
      }
      this.exec(level === 0 ? "COMMIT" : `RELEASE SAVEPOINT ${sp}`);
      return result;
    } catch (err) {
      if (!this.#closed) {
        this.exec(
          level === 0 ? "ROLLBACK" : `ROLLBACK TO SAVEPOINT ${sp}; RELEASE SAVEPOINT ${sp}`,
        );
      }
      throw err;
    } finally {
      this.#depth = level;
    }
  }

  get inTransaction(): boolean {
    return this.#depth > 0;
  }

  schemaVersion(): number {
    const row = this.get<{ v: number | null }>("SELECT MAX(version) AS v FROM schema_version");
    return Number(row?.v ?? 0);
  }

  /** Applies missing migrations in one transaction; edges starting together take turns. */
  #migrate(migrations: readonly Migration[]): void {
    this.transaction(() => {
      this.exec(PREAMBLE);
      this.exec(
        "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
      );
      for (const m of pendingMigrations(this, migrations)) {
        this.exec(m.pg ?? translateMigration(m.sql));
        recordMigration(this, m);
      }
    });
  }

  #kill(): void {
    this.#closed = true;
    this.#worker.terminate();
  }

  close(): void {
    if (this.#closed) return;
    try {
      this.#call({ op: "close" });
    } catch {
      // Closing is best effort: the worker goes either way.
    }
    this.#kill();
  }
}
