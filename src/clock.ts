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
