import type { SqlDatabase } from "../sql.ts";
import { num, numOrNull, type Row, str } from "./row.ts";

/** A stored notification. */
export interface NotificationRecord {
  id: number;
  kind: string;
  severity: "info" | "warning" | "critical";
  message: string;
  data: Record<string, unknown>;
  createdAt: number;
  readAt: number | null;
}

function toNotification(r: Row): NotificationRecord {
  return {
    id: num(r.id),
    kind: str(r.kind),
    severity: str(r.severity) as NotificationRecord["severity"],
    message: str(r.message),
    data: JSON.parse(str(r.data)),
    createdAt: num(r.created_at),
    readAt: numOrNull(r.read_at),
  };
}

/** Notifications for administrators. */
export class NotificationsRepo {
  constructor(private db: SqlDatabase) {}
  /** Stores a notification; returns its id. */
  insert(n: Omit<NotificationRecord, "id" | "readAt">): number {
    return this.db.insert(
      "INSERT INTO notifications (kind, severity, message, data, created_at) VALUES (?, ?, ?, ?, ?)",
      n.kind,
      n.severity,
      n.message,
      JSON.stringify(n.data),
      n.createdAt,
    );
  }
  /** One notification. */
  byId(id: number): NotificationRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM notifications WHERE id = ?", id);
    return r && toNotification(r);
  }
  /** Notifications newer than `afterId`, oldest first, at most `limit`. */
  list(opts: { afterId?: number; limit?: number; kind?: string } = {}): NotificationRecord[] {
    return this.db.all<Row>(
      "SELECT * FROM notifications WHERE id > ? AND (CAST(? AS TEXT) IS NULL OR kind = ?) ORDER BY id DESC LIMIT ?",
      opts.afterId ?? 0,
      opts.kind ?? null,
      opts.kind ?? null,
      opts.limit ?? 100,
    ).map(toNotification).reverse();
  }
  /** Marks one read; returns whether it existed. */
  markRead(id: number, at: number): boolean {
    return this.db.run(
      "UPDATE notifications SET read_at = COALESCE(read_at, ?) WHERE id = ?",
      at,
      id,
    ).changes === 1;
  }
  /** Number of notifications (optionally of one kind). */
  count(kind?: string): number {
    return num(
      this.db.get<Row>(
        "SELECT COUNT(*) AS n FROM notifications WHERE (CAST(? AS TEXT) IS NULL OR kind = ?)",
        kind ?? null,
        kind ?? null,
      )!.n,
    );
  }
}
