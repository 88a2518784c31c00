/**
 * The captive-portal window: while a portal holds the device, protection is
 * paused for at most the profile's window (1–60 min); when it ends the engine
 * is told, and the profile says whether to enforce again or fail open.
 */
import { systemTimers, type TimerId, type Timers } from "../../clock.ts";

/** One window timer; starting it again replaces the running one. */
export class CaptiveTimer {
  readonly #timers: Timers;
  #id: TimerId | null = null;

  constructor(timers: Timers = systemTimers) {
    this.#timers = timers;
  }

  /** True while a window is running. */
  get running(): boolean {
    return this.#id !== null;
  }

  /** Starts a window of `minutes`; `onExpire` runs when it ends uncancelled. */
  start(minutes: number, onExpire: () => void): void {
    this.cancel();
    this.#id = this.#timers.setTimeout(() => {
      this.#id = null;
      onExpire();
    }, minutes * 60_000);
  }

  /** Stops the window without telling anyone. */
  cancel(): void {
    if (this.#id !== null) this.#timers.clearTimeout(this.#id);
    this.#id = null;
  }
}
