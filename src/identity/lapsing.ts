/**
 * A bounded map whose entries lapse: what the sign-in flows keep between
 * two requests (pending states, one-time grants, device polls). When full,
 * the oldest entries go first, so memory stays bounded whatever callers do.
 */
import type { Clock } from "../clock.ts";

/** A bounded map whose entries lapse: the oldest go first when it is full. */
export class Lapsing<V extends { expiresAt: number }> {
  #m = new Map<string, V>();
  constructor(private clock: Clock, private max: number) {}
  set(k: string, v: V): void {
    const now = this.clock.now();
    for (const [key, val] of this.#m) {
      if (val.expiresAt > now && this.#m.size < this.max) break;
      this.#m.delete(key);
    }
    this.#m.set(k, v);
  }
  /** The entry, if present and live. */
  get(k: string): V | undefined {
    const v = this.#m.get(k);
    if (v && v.expiresAt <= this.clock.now()) {
      this.#m.delete(k);
      return undefined;
    }
    return v;
  }
  /** Removes and returns a live entry (one use). */
  take(k: string): V | undefined {
    const v = this.get(k);
    this.#m.delete(k);
    return v;
  }
  values(): IterableIterator<V> {
    return this.#m.values();
  }
}
