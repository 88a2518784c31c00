import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str } from "./row.ts";
import type { Sealer } from "./users.ts";

/** What the sign-in flows keep between requests (see migration 10). */
export type SignInStateKind = "oidc" | "saml" | "grant" | "saml_request" | "saml_assertion";

const CLEAR: Sealer = { seal: (s) => s, open: (s) => s };

/**
 * Sign-in state that must outlive the process: pending flows, one-time
 * grants, SAML request and assertion IDs. Every row lapses; bodies are
 * sealed with the store's sealer (they hold PKCE verifiers and nonces).
 * node:sqlite is synchronous, so each method is atomic for this process.
 */
export class SignInStateRepo {
  constructor(private db: SqlDatabase, private sealer: Sealer = CLEAR) {}

  /**
   * Stores `body` under (kind, key) until `expiresAt`, replacing an entry
   * with that key; expired rows go, and past `max` rows of the kind the
   * oldest go too, so a flood of started sign-ins cannot grow the table.
   */
  put(
    kind: SignInStateKind,
    key: string,
    body: string,
    expiresAt: number,
    now: number,
    max: number,
  ): void {
    this.db.run(
      "INSERT INTO signin_state (kind, key, body, created_at, expires_at) VALUES (?, ?, ?, ?, ?) " +
        "ON CONFLICT(kind, key) DO UPDATE SET body = excluded.body, created_at = excluded.created_at, expires_at = excluded.expires_at",
      kind,
      key,
      this.sealer.seal(body),
      now,
      expiresAt,
    );
    this.#bound(kind, now, max);
  }

  /**
   * Records (kind, key) until `expiresAt` unless a live entry holds it:
   * true when it was recorded now, false when it was there already (a
   * replay). An expired entry counts as absent and is replaced.
   */
  putOnce(
    kind: SignInStateKind,
    key: string,
    expiresAt: number,
    now: number,
    max: number,
  ): boolean {
    const r = this.db.run(
      "INSERT INTO signin_state (kind, key, body, created_at, expires_at) VALUES (?, ?, '', ?, ?) " +
        "ON CONFLICT(kind, key) DO UPDATE SET created_at = excluded.created_at, expires_at = excluded.expires_at " +
        "WHERE signin_state.expires_at <= ?",
      kind,
      key,
      now,
      expiresAt,
      now,
    );
    if (r.changes === 1) this.#bound(kind, now, max);
    return r.changes === 1;
  }

  /** The live body under (kind, key), or undefined. */
  get(kind: SignInStateKind, key: string, now: number): string | undefined {
    const r = this.db.get<Row>(
      "SELECT body FROM signin_state WHERE kind = ? AND key = ? AND expires_at > ?",
      kind,
      key,
      now,
    );
    return r ? this.sealer.open(str(r.body)) : undefined;
  }

  /** Removes (kind, key) and returns its body when it was live (one use). */
  take(kind: SignInStateKind, key: string, now: number): string | undefined {
    const body = this.get(kind, key, now);
    this.db.run("DELETE FROM signin_state WHERE kind = ? AND key = ?", kind, key);
    return body;
  }

  /** Rows of a kind, expired ones included until purged. */
  count(kind: SignInStateKind): number {
    return num(
      this.db.get<Row>("SELECT COUNT(*) AS n FROM signin_state WHERE kind = ?", kind)!.n,
    );
  }

  /** Deletes every lapsed row; returns how many. */
  purge(now: number): number {
    return this.db.run("DELETE FROM signin_state WHERE expires_at <= ?", now).changes;
  }

  #bound(kind: SignInStateKind, now: number, max: number): void {
    const n = this.count(kind);
    if (n <= max) return;
    this.db.run("DELETE FROM signin_state WHERE kind = ? AND expires_at <= ?", kind, now);
    const left = this.count(kind);
    if (left <= max) return;
    this.db.run(
      "DELETE FROM signin_state WHERE kind = ? AND key IN (SELECT key FROM signin_state WHERE kind = ? ORDER BY created_at, key LIMIT ?)",
      kind,
      kind,
      left - max,
    );
  }
}
