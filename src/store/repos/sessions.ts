import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str } from "./row.ts";

/** A console session; only the hash of its id is stored. */
export interface SessionRecord {
  idHash: string;
  userId: string;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  sourceIp: string;
}

function toSession(r: Row): SessionRecord {
  return {
    idHash: str(r.id_hash),
    userId: str(r.user_id),
    csrfToken: str(r.csrf_token),
    createdAt: num(r.created_at),
    lastSeenAt: num(r.last_seen_at),
    expiresAt: num(r.expires_at),
    sourceIp: str(r.source_ip),
  };
}

/** Console sessions. */
export class SessionsRepo {
  constructor(private db: SqlDatabase) {}
  /** Inserts a session. */
  insert(s: SessionRecord): void {
    this.db.run(
      "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, source_ip) VALUES (?, ?, ?, ?, ?, ?, ?)",
      s.idHash,
      s.userId,
      s.csrfToken,
      s.createdAt,
      s.lastSeenAt,
      s.expiresAt,
      s.sourceIp,
    );
  }
  /** Finds a session by the hash of its id. */
  byHash(idHash: string): SessionRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM sessions WHERE id_hash = ?", idHash);
    return r && toSession(r);
  }
  /** Updates the last-seen time. */
  touch(idHash: string, at: number): void {
    this.db.run("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", at, idHash);
  }
  /** Deletes one session. */
  delete(idHash: string): void {
    this.db.run("DELETE FROM sessions WHERE id_hash = ?", idHash);
  }
  /** Deletes sessions past their absolute expiry or idle for `idleMs`. */
  deleteStale(now: number, idleMs: number): number {
    return this.db.run(
      "DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?",
      now,
      now - idleMs,
    ).changes;
  }
  /** Number of sessions. */
  count(): number {
    return num(this.db.get<Row>("SELECT COUNT(*) AS n FROM sessions")!.n);
  }
}
