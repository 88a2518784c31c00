/**
 * Row helpers shared by the repositories: node:sqlite hands back loosely
 * typed values, and these turn them into the record fields' types in one
 * place, so a mapper reads as a list of columns.
 */
import type { SqlValue } from "../db.ts";

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
