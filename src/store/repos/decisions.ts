import type { SqlDatabase, SqlValue } from "../sql.ts";
import { num, pruneToNewest, type Row, RowInserter, str, strOrNull } from "./row.ts";

/** One access decision as stored. */
export interface DecisionRecord {
  id: number;
  /** Wall-clock ms. */
  at: number;
  deviceId: string;
  deviceName: string;
  user: string | null;
  src: string;
  dst: string;
  port: number;
  protocol: string;
  /** The destination name it was matched by, if any. */
  name: string | null;
  verdict: "allow" | "deny";
  rule: string | null;
  segments: string[];
  reason: string;
}

/** Filters of `DecisionsRepo.list`; all optional, combined with AND. */
export interface DecisionFilter {
  deviceId?: string;
  user?: string;
  verdict?: "allow" | "deny";
  rule?: string;
  /** Destination address, or the name it was known by (exact, case-insensitive for names). */
  dst?: string;
  /** At or after (ms). */
  since?: number;
  /** Before (ms). */
  until?: number;
  /** Rows with a smaller id (paging, newest first). */
  beforeId?: number;
  limit?: number;
}

function toDecision(r: Row): DecisionRecord {
  return {
    id: num(r.id),
    at: num(r.at),
    deviceId: str(r.device_id),
    deviceName: str(r.device_name),
    user: strOrNull(r.user_name),
    src: str(r.src),
    dst: str(r.dst),
    port: num(r.port),
    protocol: str(r.protocol),
    name: strOrNull(r.dst_name),
    verdict: r.verdict === "allow" ? "allow" : "deny",
    rule: strOrNull(r.rule),
    segments: JSON.parse(str(r.segments)),
    reason: str(r.reason),
  };
}

const INSERTER = new RowInserter<Omit<DecisionRecord, "id">>("access_decisions", [
  ["at", (d) => d.at],
  ["device_id", (d) => d.deviceId],
  ["device_name", (d) => d.deviceName],
  ["user_name", (d) => d.user],
  ["src", (d) => d.src],
  ["dst", (d) => d.dst],
  ["port", (d) => d.port],
  ["protocol", (d) => d.protocol],
  ["dst_name", (d) => d.name],
  ["verdict", (d) => d.verdict],
  ["rule", (d) => d.rule],
  ["segments", (d) => JSON.stringify(d.segments)],
  ["reason", (d) => d.reason],
]);

/** Rows one INSERT of `append` carries. */
export const DECISIONS_PER_INSERT = INSERTER.perStatement;

/** The access decision log. */
export class DecisionsRepo {
  constructor(private db: SqlDatabase) {}

  /** Appends one decision; returns its id. */
  insert(d: Omit<DecisionRecord, "id">): number {
    return INSERTER.insert(this.db, d);
  }

  /** Appends a batch (call inside a transaction). */
  append(ds: readonly Omit<DecisionRecord, "id">[]): void {
    INSERTER.append(this.db, ds);
  }

  /** Matching decisions, newest first. */
  list(f: DecisionFilter = {}): DecisionRecord[] {
    const where: string[] = [];
    const args: SqlValue[] = [];
    const add = (sql: string, v: SqlValue | undefined) => {
      if (v === undefined) return;
      where.push(sql);
      args.push(v);
    };
    add("device_id = ?", f.deviceId);
    add("user_name = ?", f.user);
    add("verdict = ?", f.verdict);
    add("rule = ?", f.rule);
    if (f.dst !== undefined) {
      where.push("(dst = ? OR lower(dst_name) = lower(?))");
      args.push(f.dst, f.dst);
    }
    add("at >= ?", f.since);
    add("at < ?", f.until);
    add("id < ?", f.beforeId);
    args.push(f.limit ?? 100);
    return this.db.all<Row>(
      `SELECT * FROM access_decisions ${
        where.length ? `WHERE ${where.join(" AND ")}` : ""
      } ORDER BY id DESC LIMIT ?`,
      ...args,
    ).map(toDecision);
  }

  /** Keeps at most `keep` newest rows and none older than `olderThan` (ms); returns rows removed. */
  prune(keep: number, olderThan: number): number {
    let n = pruneToNewest(this.db, "access_decisions", keep);
    n += this.db.run("DELETE FROM access_decisions WHERE at < ?", olderThan).changes;
    return n;
  }

  /** Number of stored decisions. */
  count(): number {
    return num(this.db.get<Row>("SELECT COUNT(*) AS n FROM access_decisions")!.n);
  }
}
