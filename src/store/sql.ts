/**
 * What the repositories need from a database, whichever it is: the embedded
 * SQLite file (db.ts, the default) or a PostgreSQL server shared by several
 * edges (pg/database.ts). Both are synchronous on purpose: a repository call
 * and a transaction are one uninterrupted step of the event loop, so no
 * other request can interleave with an open transaction, the property every
 * exactly-once rule of the edge (address leases, single-use keys, replay
 * caches) relies on.
 *
 * SQL handed to either is the common dialect: `?` placeholders,
 * `ON CONFLICT … DO NOTHING`, `RETURNING`, `COALESCE`, `COLLATE NOCASE`,
 * `CAST(? AS TEXT) IS NULL` for an optional filter, no rowid and no
 * SQLite-only functions. The PostgreSQL side rewrites placeholders (and
 * `instr`) only; migrations are translated as a whole (pg/translate.ts).
 */

/** A value either database accepts as a bound parameter. */
export type SqlValue = null | number | bigint | string | Uint8Array;

/** The outcome of a statement that returns no rows. */
export interface RunResult {
  /** Rows inserted, updated or deleted. */
  changes: number;
}

/** A synchronous connection to the edge's database. */
export interface SqlDatabase {
  /** Which database this is; only migrations and diagnostics look. */
  readonly dialect: "sqlite" | "postgres";
  /** The file, ":memory:", or the server's address without its password. */
  readonly path: string;
  /** Runs a statement. */
  run(sql: string, ...params: SqlValue[]): RunResult;
  /** Runs an INSERT into a table with an integer `id` and returns the new row's id. */
  insert(sql: string, ...params: SqlValue[]): number;
  /** Returns the first row or undefined. */
  get<T>(sql: string, ...params: SqlValue[]): T | undefined;
  /** Returns every row. */
  all<T>(sql: string, ...params: SqlValue[]): T[];
  /** Executes statements without parameters. */
  exec(sql: string): void;
  /**
   * Runs `fn` in a transaction: commits when it returns, rolls back when it
   * throws; nested calls become savepoints. Writers are serialised (SQLite's
   * BEGIN IMMEDIATE, an advisory lock on PostgreSQL), so a read followed by
   * a write inside `fn` sees no other writer in between, on any edge.
   */
  transaction<T>(fn: () => T): T;
  /** True while a transaction is open. */
  readonly inTransaction: boolean;
  /** Current schema version (0 for an empty database). */
  schemaVersion(): number;
  /** Closes the connection. */
  close(): void;
}
