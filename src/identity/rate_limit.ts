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
}

/** Defaults: 5 per user, 20 per IP, in 15 minutes. */
export const DEFAULT_RATE_LIMITS: RateLimits = { perUser: 5, perIp: 20, windowMs: 15 * 60_000 };

/** Counts failed logins per user and per IP with an injected clock. */
export class LoginRateLimiter {
  #failures = new Map<string, number[]>();
  constructor(private clock: Clock, private limits: RateLimits = DEFAULT_RATE_LIMITS) {}

  #recent(key: string): number[] {
    const cutoff = this.clock.monotonic() - this.limits.windowMs;
    const list = (this.#failures.get(key) ?? []).filter((t) => t > cutoff);
    if (list.length) this.#failures.set(key, list);
    else this.#failures.delete(key);
    return list;
  }

  /** Returns ms to wait before another attempt is allowed (0 when allowed). */
  retryAfterMs(username: string, ip: string): number {
    let wait = 0;
    for (
      const [key, limit] of [[`u:${username.toLowerCase()}`, this.limits.perUser], [
        `ip:${ip}`,
        this.limits.perIp,
      ]] as const
    ) {
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

  /** Records a failed attempt. */
  fail(username: string, ip: string): void {
    const now = this.clock.monotonic();
    for (const key of [`u:${username.toLowerCase()}`, `ip:${ip}`]) {
      const list = this.#recent(key);
      list.push(now);
      this.#failures.set(key, list);
    }
    // Bound memory under a spray of distinct usernames.
    if (this.#failures.size > 100_000) this.#failures.clear();
  }

  /** Clears the per-user counter after a successful login. */
  succeed(username: string): void {
    this.#failures.delete(`u:${username.toLowerCase()}`);
  }
}
