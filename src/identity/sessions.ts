/**
 * Console sessions. The cookie holds a random id; the database holds only its
 * SHA-256, so a leaked database cannot be replayed as a session. Each session
 * has an absolute expiry and an idle timeout, and its own CSRF token that
 * unsafe requests must echo in a header (a cross-site form cannot read it).
 */
import type { Clock } from "../clock.ts";
import type { SessionRecord, Store, UserRecord } from "../store/mod.ts";
import { constantTimeEqual, randomToken, sha256Hex } from "./secrets.ts";

/** Session lifetimes. */
export interface SessionOptions {
  /** Absolute lifetime (ms). */
  ttlMs: number;
  /** Idle timeout (ms). */
  idleMs: number;
}

/** Defaults: 12 hours absolute, 30 minutes idle. */
export const DEFAULT_SESSION_OPTIONS: SessionOptions = {
  ttlMs: 12 * 3600_000,
  idleMs: 30 * 60_000,
};

/** A live session with its user. */
export interface ActiveSession {
  session: SessionRecord;
  user: UserRecord;
}

/** Creates, resolves and ends console sessions. */
export class SessionManager {
  constructor(
    private store: Store,
    private clock: Clock,
    readonly options: SessionOptions = DEFAULT_SESSION_OPTIONS,
  ) {}

  /** Starts a session; returns the cookie value (shown once) and the CSRF token. */
  create(userId: string, sourceIp: string): { id: string; csrfToken: string } {
    const id = randomToken(32);
    const csrfToken = randomToken(24);
    const now = this.clock.now();
    this.store.sessions.insert({
      idHash: sha256Hex(id),
      userId,
      csrfToken,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + this.options.ttlMs,
      sourceIp,
    });
    return { id, csrfToken };
  }

  /**
   * Resolves a cookie value to a live session, refreshing its idle timer
   * unless `touch` is false (re-checks by open streams must not keep an idle
   * session alive); undefined if gone.
   */
  resolve(id: string, opts: { touch?: boolean } = {}): ActiveSession | undefined {
    if (!id || id.length > 128) return undefined;
    const hash = sha256Hex(id);
    const session = this.store.sessions.byHash(hash);
    if (!session) return undefined;
    const now = this.clock.now();
    if (session.expiresAt <= now || session.lastSeenAt + this.options.idleMs <= now) {
      this.store.sessions.delete(hash);
      return undefined;
    }
    const user = this.store.users.byId(session.userId);
    if (!user) return undefined;
    if (opts.touch === false) return { session, user };
    this.store.sessions.touch(hash, now);
    return { session: { ...session, lastSeenAt: now }, user };
  }

  /** Checks the CSRF token presented with an unsafe request. */
  checkCsrf(session: SessionRecord, presented: string | undefined): boolean {
    return presented !== undefined && constantTimeEqual(presented, session.csrfToken);
  }

  /** Ends a session. */
  destroy(id: string): void {
    this.store.sessions.delete(sha256Hex(id));
  }

  /** Deletes expired and idle sessions; returns how many. */
  sweep(): number {
    return this.store.sessions.deleteStale(this.clock.now(), this.options.idleMs);
  }
}
