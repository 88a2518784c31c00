import type { SqlDatabase, SqlValue } from "../sql.ts";
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

const INSERTER = new RowInserter("web_log", [
  "at",
  "device_id",
  "device_name",
  "user_name",
  "src",
  "mode",
  "method",
  "scheme",
  "host",
  "port",
  "path",
  "categories",
  "action",
  "rule",
  "reason",
  "status",
  "bytes_up",
  "bytes_down",
]);

/** Rows one INSERT of `append` carries. */
export const ROWS_PER_INSERT = INSERTER.perStatement;

/** An entry's columns in INSERT's order. */
function values(e: Omit<WebLogRecord, "id">): SqlValue[] {
  return [
    e.at,
    e.deviceId,
    e.deviceName,
    e.user,
    e.src,
    e.mode,
    e.method,
    e.scheme,
    e.host,
    e.port,
    e.path,
    JSON.stringify(e.categories),
    e.action,
    e.rule,
    e.reason,
    e.status,
    e.bytesUp,
    e.bytesDown,
  ];
}

/** The proxy's web log. */
export class WebLogRepo {
  constructor(private db: SqlDatabase) {}

  /** Appends one entry; returns its id. */
  insert(e: Omit<WebLogRecord, "id">): number {
    return INSERTER.insert(this.db, values(e));
  }

  /** Appends a batch (call inside a transaction): the proxy logs every request. */
  append(es: readonly Omit<WebLogRecord, "id">[]): void {
    INSERTER.append(this.db, es, values);
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
