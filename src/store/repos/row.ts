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
const MAX_PARAMS = 900;

/** A column of a RowInserter: its name and how a row gives its value. */
export type InsertColumn<T> = readonly [name: string, value: (row: T) => SqlValue];

/**
 * Appends rows to a log table several per INSERT: one statement per row
 * cost the edge's thread ~21 µs a row on SQLite (a batch of 50: ~5.5), and
 * a round trip per row on PostgreSQL. Each column is named once with its
 * value, so the two cannot fall out of order; the statement for each row
 * count is built once.
 */
export class RowInserter<T> {
  /** Rows one statement carries. */
  readonly perStatement: number;
  readonly #columns: readonly InsertColumn<T>[];
  readonly #head: string;
  readonly #row: string;
  readonly #sql = new Map<number, string>();

  constructor(table: string, columns: readonly InsertColumn<T>[]) {
    this.#columns = columns;
    this.perStatement = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
    this.#head = `INSERT INTO ${table} (${columns.map(([name]) => name).join(", ")}) VALUES`;
    this.#row = `(${columns.map(() => "?").join(", ")})`;
  }

  /** Inserts one row; returns its id. */
  insert(db: SqlDatabase, row: T): number {
    return db.insert(this.#sqlOf(1), ...this.#values(row));
  }

  /** Inserts rows (call inside a transaction), `perStatement` to a statement. */
  append(db: SqlDatabase, rows: readonly T[]): void {
    for (let i = 0; i < rows.length; i += this.perStatement) {
      const chunk = rows.slice(i, i + this.perStatement);
      db.run(this.#sqlOf(chunk.length), ...chunk.flatMap((r) => this.#values(r)));
    }
  }

  #values(row: T): SqlValue[] {
    return this.#columns.map(([, value]) => value(row));
  }

  /** The INSERT of `n` rows. */
  #sqlOf(n: number): string {
    let sql = this.#sql.get(n);
    if (!sql) this.#sql.set(n, sql = `${this.#head} ${Array(n).fill(this.#row).join(", ")}`);
    return sql;
  }
}
