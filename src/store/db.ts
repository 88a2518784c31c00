/**
 * The SQLite connection: the one place in the program that imports
 * `node:sqlite` (DESIGN.md §2, §6).
 *
 * Durability choice: WAL with `synchronous=NORMAL`. In WAL mode a commit is
 * appended to the -wal file before COMMIT returns; NORMAL only skips the
 * fsync at commit, so a killed *process* (SIGKILL, crash, OOM) loses nothing
 * that was acknowledged: the bytes are in the kernel's page cache and the
 * next open replays the WAL. Only a power loss or kernel panic can drop the
 * last few commits, and even then the database stays consistent (it rolls back
 * to an earlier commit, never to a half-written one). We acknowledge an
 * enrolment only after COMMIT returns, so "no acknowledged enrolment lost
 * after SIGKILL" holds with NORMAL; FULL would cost an fsync per enrolment
 * for protection against power loss only, and a device that lost its
 * enrolment to a power cut simply enrols again. Set `synchronous: "full"` to
 * trade throughput for that case.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { PortcullisError } from "../errors.ts";
import { type Migration, MIGRATIONS } from "./migrations.ts";
import type { RunResult, SqlDatabase, SqlValue } from "./sql.ts";
import { pendingMigrations, recordMigration } from "./migrate.ts";

export type { RunResult, SqlDatabase, SqlValue } from "./sql.ts";

/** Options for `Database.open`. */
export interface OpenOptions {
  /** Durability of commits; see the module comment. Default "normal". */
  synchronous?: "normal" | "full";
  /** How long a writer waits for a lock held by another connection (ms). */
  busyTimeoutMs?: number;
  /** Migrations to apply; defaults to every known migration. */
  migrations?: readonly Migration[];
}

/** Raised when the database cannot be opened or migrated. */
export class StoreError extends PortcullisError {
  constructor(message: string, options?: ErrorOptions) {
    super("store_error", message, 500, options);
  }
}

/** A SQLite connection with cached prepared statements and nested transactions. */
export class Database implements SqlDatabase {
  readonly dialect = "sqlite";
  readonly path: string;
  #db: DatabaseSync;
  #stmts = new Map<string, StatementSync>();
  #depth = 0;

  private constructor(path: string, db: DatabaseSync) {
    this.path = path;
    this.#db = db;
  }

  /** Opens (creating if needed) the database at `path` (":memory:" for tests) and migrates it. */
  static open(path: string, opts: OpenOptions = {}): Database {
    let raw: DatabaseSync;
    try {
      raw = new DatabaseSync(path);
    } catch (err) {
      throw new StoreError(`Cannot open database "${path}": ${(err as Error).message}`, {
        cause: err,
      });
    }
    const db = new Database(path, raw);
    try {
      if (path !== ":memory:") db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${opts.synchronous === "full" ? "FULL" : "NORMAL"}`);
      db.exec("PRAGMA foreign_keys = ON");
      db.exec(`PRAGMA busy_timeout = ${Math.trunc(opts.busyTimeoutMs ?? 5000)}`);
      db.migrate(opts.migrations ?? MIGRATIONS);
    } catch (err) {
      raw.close();
      if (err instanceof StoreError) throw err;
      throw new StoreError(`Cannot prepare database "${path}": ${(err as Error).message}`, {
        cause: err,
      });
    }
    return db;
  }

  /** Current schema version (0 for an empty database). */
  schemaVersion(): number {
    const row = this.get<{ v: number | null }>("SELECT MAX(version) AS v FROM schema_version");
    return row?.v ?? 0;
  }

  /** Applies every migration newer than the stored version, all in one transaction. */
  migrate(migrations: readonly Migration[]): void {
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    );
    const pending = pendingMigrations(this, migrations);
    if (pending.length === 0) return;
    this.transaction(() => {
      for (const m of pending) {
        this.#db.exec(m.sql);
        recordMigration(this, m);
      }
    });
  }

  /** Returns the cached prepared statement for `sql`. */
  statement(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  /** Runs a statement; returns the number of changed rows. */
  run(sql: string, ...params: SqlValue[]): RunResult {
    return { changes: Number(this.statement(sql).run(...params).changes) };
  }

  /** Runs an INSERT and returns the new row's `id` (through RETURNING, as on PostgreSQL). */
  insert(sql: string, ...params: SqlValue[]): number {
    const row = this.get<{ id: number | bigint }>(`${sql} RETURNING id`, ...params);
    if (!row) throw new StoreError("INSERT returned no row");
    return Number(row.id);
  }

  /** Returns the first row or undefined. */
  get<T>(sql: string, ...params: SqlValue[]): T | undefined {
    return this.statement(sql).get(...params) as T | undefined;
  }

  /** Returns every row. */
  all<T>(sql: string, ...params: SqlValue[]): T[] {
    return this.statement(sql).all(...params) as T[];
  }

  /** Executes one or more statements without parameters. */
  exec(sql: string): void {
    this.#db.exec(sql);
  }

  /**
   * Runs `fn` inside a transaction: commits when it returns, rolls back when
   * it throws. Nested calls become savepoints. `fn` must be synchronous: an
   * await inside would let other requests interleave with an open
   * transaction, so a returned promise is refused.
   */
  transaction<T>(fn: () => T): T {
    const level = this.#depth;
    const sp = `sp${level}`;
    this.#db.exec(level === 0 ? "BEGIN IMMEDIATE" : `SAVEPOINT ${sp}`);
    this.#depth = level + 1;
    try {
      const result = fn();
      if (result instanceof Promise) {
        throw new StoreError("Cannot run an asynchronous function inside a transaction");
      }
      this.#db.exec(level === 0 ? "COMMIT" : `RELEASE ${sp}`);
      return result;
    } catch (err) {
      if (level === 0) {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      } else {
        this.#db.exec(`ROLLBACK TO ${sp}; RELEASE ${sp}`);
      }
      throw err;
    } finally {
      this.#depth = level;
    }
  }

  /** True while a transaction is open. */
  get inTransaction(): boolean {
    return this.#db.isTransaction;
  }

  /** Closes the connection (statements are dropped). */
  close(): void {
    this.#stmts.clear();
    if (this.#db.isOpen) this.#db.close();
  }
}
