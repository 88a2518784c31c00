/**
 * Login rate limiting: failed attempts are counted per username and per
 * source IP in a sliding window; either key over its limit blocks further
 * attempts until the window has passed. Kept in memory on purpose: a restart
 * resets it, which costs an attacker a restart they cannot trigger.
 */
import type { Clock } from "../clock.ts";

/** Limits for the login rate limiter. */
export interface RateLimits {
  /** Failures allowed per username within the window. */
  perUser: number;
  /** Failures allowed per source IP within the window. */
  perIp: number;
  /** Window length in ms. */
  windowMs: number;
  /** Password checks allowed in flight at once per username and per IP (default 2). */
  maxInFlight?: number;
  /** Keys kept before the oldest are evicted (default 100,000). */
  maxKeys?: number;
}

/** A login attempt counted as a failure until it is settled. */
export interface LoginReservation {
  /** Forgives the reserved failure and clears the per-user counter. */
  succeed(): void;
  /** Keeps the reserved failure and frees the in-flight slot. */
  fail(): void;
}

/** The outcome of LoginRateLimiter.reserve. */
export type ReserveResult =
  | { ok: true; reservation: LoginReservation }
  | { ok: false; reason: "rate_limited" | "in_flight"; retryAfterMs: number };

/** Defaults: 5 per user, 20 per IP, in 15 minutes. */
export const DEFAULT_RATE_LIMITS: RateLimits = { perUser: 5, perIp: 20, windowMs: 15 * 60_000 };

/** Counts failed logins per user and per IP with an injected clock. */
export class LoginRateLimiter {
  #failures = new Map<string, number[]>();
  #inFlight = new Map<string, number>();
  constructor(private clock: Clock, private limits: RateLimits = DEFAULT_RATE_LIMITS) {}

  #keys(username: string, ip: string): [string, number][] {
    return [[`u:${username.toLowerCase()}`, this.limits.perUser], [`ip:${ip}`, this.limits.perIp]];
  }

  #recent(key: string): number[] {
    const cutoff = this.clock.monotonic() - this.limits.windowMs;
    const list = (this.#failures.get(key) ?? []).filter((t) => t > cutoff);
    if (list.length) this.#failures.set(key, list);
    else this.#failures.delete(key);
    return list;
  }

  /** Stores a key's list as the most recently used, evicting the oldest keys over the cap. */
  #store(key: string, list: number[]): void {
    this.#failures.delete(key);
    this.#failures.set(key, list);
    // Bound memory under a spray of distinct usernames without forgetting the
    // counters of the keys under attack (a wipe would reset them).
    const max = this.limits.maxKeys ?? 100_000;
    for (const oldest of this.#failures.keys()) {
      if (this.#failures.size <= max) break;
      this.#failures.delete(oldest);
    }
  }

  /** Returns ms to wait before another attempt is allowed (0 when allowed). */
  retryAfterMs(username: string, ip: string): number {
    let wait = 0;
    for (const [key, limit] of this.#keys(username, ip)) {
      const list = this.#recent(key);
      if (list.length >= limit) {
        wait = Math.max(
          wait,
          list[list.length - limit] + this.limits.windowMs - this.clock.monotonic(),
        );
      }
    }
    return Math.max(0, Math.ceil(wait));
  }

  /**
   * Reserves an attempt before the (slow) password check: it is counted as a
   * failure at once, so concurrent attempts cannot all pass the budget check,
   * and at most `maxInFlight` checks run per username and per IP.
   */
  reserve(username: string, ip: string): ReserveResult {
    const wait = this.retryAfterMs(username, ip);
    if (wait > 0) return { ok: false, reason: "rate_limited", retryAfterMs: wait };
    const keys = this.#keys(username, ip).map(([k]) => k);
    const maxInFlight = this.limits.maxInFlight ?? 2;
    if (keys.some((k) => (this.#inFlight.get(k) ?? 0) >= maxInFlight)) {
      return { ok: false, reason: "in_flight", retryAfterMs: 1000 };
    }
    const now = this.clock.monotonic();
    for (const k of keys) {
      this.#inFlight.set(k, (this.#inFlight.get(k) ?? 0) + 1);
      const list = this.#recent(k);
      list.push(now);
      this.#store(k, list);
    }
    let settled = false;
    const release = () => {
      for (const k of keys) {
        const n = (this.#inFlight.get(k) ?? 1) - 1;
        if (n > 0) this.#inFlight.set(k, n);
        else this.#inFlight.delete(k);
      }
    };
    return {
      ok: true,
      reservation: {
        succeed: () => {
          if (settled) return;
          settled = true;
          release();
          const ipList = this.#failures.get(keys[1]);
          const i = ipList?.lastIndexOf(now) ?? -1;
          if (ipList && i >= 0) ipList.splice(i, 1);
          if (ipList && !ipList.length) this.#failures.delete(keys[1]);
          this.succeed(username);
        },
        fail: () => {
          if (settled) return;
          settled = true;
          release();
        },
      },
    };
  }

  /** Records a failed attempt. */
  fail(username: string, ip: string): void {
    const now = this.clock.monotonic();
    for (const [key] of this.#keys(username, ip)) {
      const list = this.#recent(key);
      list.push(now);
      this.#store(key, list);
    }
  }

  /** Clears the per-user counter after a successful login. */
  succeed(username: string): void {
    this.#failures.delete(`u:${username.toLowerCase()}`);
  }

  /** Number of keys held (for tests and metrics). */
  get size(): number {
    return this.#failures.size;
  }
}
