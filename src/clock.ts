/**
 * Time as a seam: every timer-driven module takes a Clock so tests can drive
 * time by hand instead of sleeping.
 */

/** Source of time for protocol timers, sessions and logs. */
export interface Clock {
  /** Monotonic milliseconds (never jumps back; unrelated to wall time). */
  monotonic(): number;
  /** Wall-clock milliseconds since the Unix epoch. */
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = {
  monotonic: () => performance.now(),
  now: () => Date.now(),
};

/**
 * A clock whose monotonic time can be held still for a synchronous stretch
 * of work: the data plane's round, in which the WireGuard device and the
 * access enforcer's flow table read the time for every packet. Measured on
 * the edge, those reads (performance.now() goes through an op) were 7% of
 * its CPU on a 10 MB download; held, a round reads the time once. Outside a
 * round it reads `base`. Packets of one round share a timestamp, which is
 * what they would get from a batch read anyway; a round lasts milliseconds
 * and the timers reading it count seconds.
 */
export class RoundClock implements Clock {
  #held = -1;
  constructor(readonly base: Clock = systemClock) {}
  /** The held time during a round, else the base clock's. */
  monotonic(): number {
    return this.#held >= 0 ? this.#held : this.base.monotonic();
  }
  /** Wall time, never held. */
  now(): number {
    return this.base.now();
  }
  /** Holds monotonic time at the base clock's current value; returns it. */
  hold(): number {
    return (this.#held = this.base.monotonic());
  }
  /** Lets monotonic time run again. */
  release(): void {
    this.#held = -1;
  }
}

/** A clock that only moves when told to; for deterministic tests. */
export class ManualClock implements Clock {
  #mono: number;
  #wall: number;
  constructor(startWall = Date.UTC(2026, 0, 1), startMono = 1_000_000) {
    this.#wall = startWall;
    this.#mono = startMono;
  }
  /** Returns the current monotonic time in ms. */
  monotonic(): number {
    return this.#mono;
  }
  /** Returns the current wall time in ms. */
  now(): number {
    return this.#wall;
  }
  /** Moves both clocks forward by `ms`. */
  advance(ms: number): void {
    this.#mono += ms;
    this.#wall += ms;
  }
  /** Sets the wall clock alone (models a clock step or skew). */
  setWall(ms: number): void {
    this.#wall = ms;
  }
}

/** A timer's handle, as returned by `Timers.setTimeout` (opaque: only its Timers reads it). */
export type TimerId = unknown;

/** Timers as a seam: modules that wait take one, so tests fire them by moving a clock. */
export interface Timers {
  /** Calls `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerId;
  /** Cancels a timer that has not fired (unknown ids are ignored). */
  clearTimeout(id: TimerId): void;
}

/** The real timers. */
export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
};

/**
 * Timers that fire only when `advance` moves their ManualClock past them, in
 * due order; for deterministic tests of periodic work. Between firings,
 * `advance` lets pending promise callbacks run, so async work a timer starts
 * (a fake request, a follow-up timer) settles before the next one fires.
 */
export class ManualTimers implements Timers {
  readonly clock: ManualClock;
  #next = 1;
  #pending = new Map<number, { at: number; seq: number; fn: () => void }>();

  constructor(clock: ManualClock = new ManualClock()) {
    this.clock = clock;
  }

  /** Schedules `fn` at the clock's monotonic time plus `ms` (at least 0). */
  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.#next++;
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    this.#pending.set(id, { at: this.clock.monotonic() + delay, seq: id, fn });
    return id;
  }

  /** Cancels a pending timer. */
  clearTimeout(id: TimerId): void {
    if (typeof id === "number") this.#pending.delete(id);
  }

  /** How many timers are waiting. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Milliseconds until the next timer is due, or null when none is waiting. */
  nextIn(): number | null {
    let min: number | null = null;
    for (const t of this.#pending.values()) {
      if (min === null || t.at < min) min = t.at;
    }
    return min === null ? null : Math.max(0, min - this.clock.monotonic());
  }

  /** Moves the clock forward by `ms`, firing every timer that comes due on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.clock.monotonic() + ms;
    await settle();
    while (true) {
      let due: [number, { at: number; seq: number; fn: () => void }] | null = null;
      for (const e of this.#pending) {
        if (e[1].at > end) continue;
        if (!due || e[1].at < due[1].at || (e[1].at === due[1].at && e[1].seq < due[1].seq)) {
          due = e;
        }
      }
      if (!due) break;
      this.#pending.delete(due[0]);
      if (due[1].at > this.clock.monotonic()) {
        this.clock.advance(due[1].at - this.clock.monotonic());
      }
      due[1].fn();
      await settle();
    }
    if (end > this.clock.monotonic()) this.clock.advance(end - this.clock.monotonic());
  }
}

/** Lets queued promise callbacks (and what they chain) run: a few macrotask turns. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setTimeout(r, 0));
}
