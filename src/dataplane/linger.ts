/**
 * When the pump should keep waiting synchronously after traffic instead of
 * parking (see "Latency" in pump.ts): pure policy over the times at which
 * rounds moved packets, so it is tested with tables and a fake clock.
 *
 * After any burst it lingers `baseMs`. When the last four pauses between
 * bursts were all shorter than `maxMs` (a ping every 50 ms, a voice stream),
 * traffic is periodic and it lingers until the next burst is due — the
 * longest of those pauses, plus a quarter — so the next packet never has to
 * wake the pump through the event loop. A pause under a millisecond is the
 * answer to what was just sent, not the next burst, and does not count.
 */

/** Default: linger this long after every burst. */
export const LINGER_MS = 2;
/** Default: the longest linger, and the longest pause that still counts as periodic traffic. */
export const LINGER_MAX_MS = 100;

/** Tracks bursts and says how long to linger. */
export class Linger {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #gaps = new Float64Array(4).fill(Infinity);
  #at = 0;
  #lastBusy = -Infinity;

  /** Lingers `baseMs` after a burst, up to `maxMs` while traffic is periodic (both in ms). */
  constructor(baseMs = LINGER_MS, maxMs = LINGER_MAX_MS) {
    this.#baseMs = Math.max(0, baseMs);
    this.#maxMs = Math.max(this.#baseMs, maxMs);
  }

  /** A round moved packets at monotonic time `now` (ms). */
  busy(now: number): void {
    const gap = now - this.#lastBusy;
    if (gap > 1) this.#gaps[this.#at++ & 3] = gap;
    this.#lastBusy = now;
  }

  /** Milliseconds left to linger at `now`; 0 or less: park. */
  remaining(now: number): number {
    const g = this.#gaps;
    const longest = Math.max(g[0], g[1], g[2], g[3]);
    const window = longest >= this.#maxMs
      ? this.#baseMs
      : Math.max(this.#baseMs, Math.min(this.#maxMs, longest * 1.25));
    return window - (now - this.#lastBusy);
  }
}
