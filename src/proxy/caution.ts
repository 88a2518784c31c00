/**
 * The caution interstitial's memory: one-time Continue tokens (bound to the
 * device, host and rule they were shown for, good for 10 minutes) and the
 * acknowledgements they turn into (good for CAUTION_TTL_MS). Bounded: past
 * 10,000 outstanding tokens the expired ones go, then all of them.
 */
import type { Clock } from "../clock.ts";
import type { AccessSubject } from "../policy/access.ts";

/** Path of the caution interstitial's Continue link (on the site's own host). */
export const CONTINUE_PATH = "/.portcullis/continue";

/** How long a caution acknowledgement lasts (1 h). */
export const CAUTION_TTL_MS = 3_600_000;

const TOKEN_TTL_MS = 600_000;
const MAX_TOKENS = 10_000;

/** What redeeming a Continue link gives. */
export type Redeemed =
  | { ok: false }
  | { ok: true; rule: string | null; location: string };

/** Tokens and acknowledgements of caution pages. */
export class CautionBook {
  readonly #tokens = new Map<string, { key: string; expires: number }>();
  readonly #acks = new Map<string, number>();

  constructor(private clock: Pick<Clock, "now">) {}

  #key(subject: AccessSubject, host: string, rule: string | null): string {
    return `${subject.deviceId}|${host}|${rule ?? ""}`;
  }

  /** True while `subject` has acknowledged the caution of `rule` on `host`. */
  acked(subject: AccessSubject, host: string, rule: string | null): boolean {
    const until = this.#acks.get(this.#key(subject, host, rule));
    return until !== undefined && until > this.clock.now();
  }

  /** A fresh one-time token for the Continue link. */
  token(subject: AccessSubject, host: string, rule: string | null): string {
    const now = this.clock.now();
    if (this.#tokens.size > MAX_TOKENS) {
      for (const [k, r] of this.#tokens) if (r.expires < now) this.#tokens.delete(k);
      if (this.#tokens.size > MAX_TOKENS) this.#tokens.clear();
    }
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const token = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    this.#tokens.set(token, { key: this.#key(subject, host, rule), expires: now + TOKEN_TTL_MS });
    return token;
  }

  /**
   * Redeems the Continue link's query (`t=<token>&to=<path>`) for `subject`
   * on `host`: acknowledges, and says where to go (a path on the same site
   * only, so the link cannot send anyone elsewhere).
   */
  redeem(query: string, subject: AccessSubject, host: string): Redeemed {
    const q = new URLSearchParams(query);
    const token = q.get("t") ?? "";
    const to = q.get("to") ?? "/";
    const rec = this.#tokens.get(token);
    const now = this.clock.now();
    if (!rec || rec.expires < now || !rec.key.startsWith(`${subject.deviceId}|${host}|`)) {
      return { ok: false };
    }
    this.#tokens.delete(token);
    this.#acks.set(rec.key, now + CAUTION_TTL_MS);
    const safe = to.startsWith("/") && !to.startsWith("//") && !/[\r\n\\]/.test(to);
    return {
      ok: true,
      rule: rec.key.split("|").slice(2).join("|") || null,
      location: safe ? to : "/",
    };
  }
}
