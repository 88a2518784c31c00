/**
 * Row helpers shared by the repositories: node:sqlite hands back loosely
 * typed values, and these turn them into the record fields' types in one
 * place, so a mapper reads as a list of columns.
 */
import type { SqlDatabase, SqlValue } from "../sql.ts";

/** One result row as node:sqlite returns it. */
export type Row = Record<string, SqlValue>;

/** A column that is never NULL, as a number. */
export const num = (v: SqlValue): number => Number(v);
/** A nullable column, as a number or null. */
export const numOrNull = (v: SqlValue): number | null => (v === null ? null : Number(v));
/** A nullable column, as a string or null. */
export const strOrNull = (v: SqlValue): string | null => (v === null ? null : String(v));
/** A column that is never NULL, as a string. */
export const str = (v: SqlValue): string => String(v);

/**
 * A WHERE clause of the conditions whose value is given (undefined: left
 * out), joined with AND, and its arguments in order.
 */
export function whereOf(
  conds: [sql: string, value: SqlValue | undefined][],
): { where: string; args: SqlValue[] } {
  const parts: string[] = [], args: SqlValue[] = [];
  for (const [sql, v] of conds) {
    if (v === undefined) continue;
    parts.push(sql);
    args.push(v);
  }
  return { where: parts.length ? `WHERE ${parts.join(" AND ")}` : "", args };
}

/**
 * Deletes the oldest rows of a log table whose `id` only grows, keeping at
 * most `keep` newest; returns rows removed. One statement against the
 * largest id, not a walk of `keep` index entries to find where to cut (that
 * walk cost the web log ~3 µs a row at 200,000 kept). Ids skipped (a
 * rolled-back PostgreSQL insert) only make it keep fewer.
 */
export function pruneToNewest(db: SqlDatabase, table: string, keep: number): number {
  return db.run(`DELETE FROM ${table} WHERE id <= (SELECT MAX(id) FROM ${table}) - ?`, keep)
    .changes;
}

/** Parameters one statement of RowInserter binds at most (within both databases' limits). */
export const MAX_PARAMS = 900;

/**
 * Appends rows to a log table several per INSERT: one statement per row
 * cost the edge's thread ~21 µs a row on SQLite (a batch of 50: ~5.5), and
 * a round trip per row on PostgreSQL. The statement for each row count is
 * built once.
 */
export class RowInserter {
  /** Rows one statement carries. */
  readonly perStatement: number;
  readonly #head: string;
  readonly #row: string;
  readonly #sql = new Map<number, string>();

  constructor(table: string, readonly columns: readonly string[]) {
    this.perStatement = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
    this.#head = `INSERT INTO ${table} (${columns.join(", ")}) VALUES`;
    this.#row = `(${columns.map(() => "?").join(", ")})`;
  }

  /** The INSERT of `n` rows. */
  sql(n: number): string {
    let sql = this.#sql.get(n);
    if (!sql) this.#sql.set(n, sql = `${this.#head} ${Array(n).fill(this.#row).join(", ")}`);
    return sql;
  }

  /** Inserts one row (its values in `columns` order); returns its id. */
  insert(db: SqlDatabase, values: SqlValue[]): number {
    return db.insert(this.sql(1), ...values);
  }

  /** Inserts rows (call inside a transaction), `perStatement` to a statement. */
  append<T>(db: SqlDatabase, rows: readonly T[], values: (row: T) => SqlValue[]): void {
    for (let i = 0; i < rows.length; i += this.perStatement) {
      const chunk = rows.slice(i, i + this.perStatement);
      db.run(this.sql(chunk.length), ...chunk.flatMap(values));
    }
  }
}
