import type { SqlDatabase } from "../sql.ts";
import {
  num,
  numOrNull,
  pruneToNewest,
  type Row,
  RowInserter,
  str,
  strOrNull,
  whereOf,
} from "./row.ts";

/** One web request (or uninspected TLS connection) the proxy decided. */
export interface WebLogRecord {
  id: number;
  /** Wall-clock ms. */
  at: number;
  deviceId: string | null;
  deviceName: string | null;
  user: string | null;
  src: string;
  mode: "explicit" | "connect" | "transparent" | "inspected";
  method: string | null;
  scheme: "http" | "https";
  host: string;
  port: number;
  /** Without the query string; null when not seen (TLS not inspected). */
  path: string | null;
  categories: string[];
  action: "allow" | "block" | "caution" | "allow_log";
  rule: string | null;
  reason: string;
  status: number | null;
  bytesUp: number;
  bytesDown: number;
}

/** Filters of `WebLogRepo.list`; all optional, combined with AND. */
export interface WebLogFilter {
  /** Substring of the host. */
  host?: string;
  user?: string;
  deviceId?: string;
  action?: WebLogRecord["action"];
  rule?: string;
  since?: number;
  beforeId?: number;
  limit?: number;
}

function toRecord(r: Row): WebLogRecord {
  return {
    id: num(r.id),
    at: num(r.at),
    deviceId: strOrNull(r.device_id),
    deviceName: strOrNull(r.device_name),
    user: strOrNull(r.user_name),
    src: str(r.src),
    mode: str(r.mode) as WebLogRecord["mode"],
    method: strOrNull(r.method),
    scheme: str(r.scheme) === "https" ? "https" : "http",
    host: str(r.host),
    port: num(r.port),
    path: strOrNull(r.path),
    categories: JSON.parse(str(r.categories)),
    action: str(r.action) as WebLogRecord["action"],
    rule: strOrNull(r.rule),
    reason: str(r.reason),
    status: numOrNull(r.status),
    bytesUp: num(r.bytes_up),
    bytesDown: num(r.bytes_down),
  };
}

const INSERTER = new RowInserter<Omit<WebLogRecord, "id">>("web_log", [
  ["at", (e) => e.at],
  ["device_id", (e) => e.deviceId],
  ["device_name", (e) => e.deviceName],
  ["user_name", (e) => e.user],
  ["src", (e) => e.src],
  ["mode", (e) => e.mode],
  ["method", (e) => e.method],
  ["scheme", (e) => e.scheme],
  ["host", (e) => e.host],
  ["port", (e) => e.port],
  ["path", (e) => e.path],
  ["categories", (e) => JSON.stringify(e.categories)],
  ["action", (e) => e.action],
  ["rule", (e) => e.rule],
  ["reason", (e) => e.reason],
  ["status", (e) => e.status],
  ["bytes_up", (e) => e.bytesUp],
  ["bytes_down", (e) => e.bytesDown],
]);

/** Rows one INSERT of `append` carries. */
export const ROWS_PER_INSERT = INSERTER.perStatement;

/** The proxy's web log. */
export class WebLogRepo {
  constructor(private db: SqlDatabase) {}

  /** Appends one entry; returns its id. */
  insert(e: Omit<WebLogRecord, "id">): number {
    return INSERTER.insert(this.db, e);
  }

  /** Appends a batch (call inside a transaction): the proxy logs every request. */
  append(es: readonly Omit<WebLogRecord, "id">[]): void {
    INSERTER.append(this.db, es);
  }

  /** Matching entries, newest first. */
  list(f: WebLogFilter = {}): WebLogRecord[] {
    const { where, args } = whereOf([
      // instr, not LIKE: a "%" or "_" typed into the search is a character, not a wildcard.
      ["instr(host, ?) > 0", f.host?.toLowerCase()],
      ["user_name = ? COLLATE NOCASE", f.user],
      ["device_id = ?", f.deviceId],
      ["action = ?", f.action],
      ["rule = ?", f.rule],
      ["at >= ?", f.since],
      ["id < ?", f.beforeId],
    ]);
    return this.db.all<Row>(
      `SELECT * FROM web_log ${where} ORDER BY id DESC LIMIT ?`,
      ...args,
      f.limit ?? 100,
    ).map(toRecord);
  }

  /** Keeps at most `keep` newest rows; returns rows removed. */
  prune(keep: number): number {
    return pruneToNewest(this.db, "web_log", keep);
  }
}
