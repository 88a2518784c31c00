import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str, strOrNull } from "./row.ts";

/** An audit log entry. */
export interface AuditRecord {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  detail: Record<string, unknown>;
}

/** The append-only audit log. */
export class AuditRepo {
  constructor(private db: SqlDatabase) {}
  /** Appends an entry. */
  insert(e: Omit<AuditRecord, "id">): void {
    this.db.run(
      "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
      e.at,
      e.actor,
      e.action,
      e.target,
      JSON.stringify(e.detail),
    );
  }
  /** The newest `limit` entries before `beforeId`, newest first. */
  list(opts: { beforeId?: number; limit?: number; action?: string } = {}): AuditRecord[] {
    return this.db.all<Row>(
      "SELECT * FROM audit_log WHERE id < ? AND (CAST(? AS TEXT) IS NULL OR action = ?) ORDER BY id DESC LIMIT ?",
      opts.beforeId ?? Number.MAX_SAFE_INTEGER,
      opts.action ?? null,
      opts.action ?? null,
      opts.limit ?? 100,
    ).map((r) => ({
      id: num(r.id),
      at: num(r.at),
      actor: str(r.actor),
      action: str(r.action),
      target: strOrNull(r.target),
      detail: JSON.parse(str(r.detail)),
    }));
  }
  /** Number of entries (optionally for one action). */
  count(action?: string): number {
    return num(
      this.db.get<Row>(
        "SELECT COUNT(*) AS n FROM audit_log WHERE (CAST(? AS TEXT) IS NULL OR action = ?)",
        action ?? null,
        action ?? null,
      )!.n,
    );
  }
}
