/**
 * Periodic background work (policy poll, heartbeat, posture): one run every
 * `ms` after the previous one ended, so a slow edge never stacks calls, until
 * the signal aborts. A failed run is logged and the next one still comes.
 */
import { systemTimers, type TimerId, type Timers } from "../../clock.ts";
import { logger } from "../../log.ts";

const log = logger("connector.engine");

/** Options of `every`. */
export interface EveryOptions {
  /** First run within 1 s instead of after a full period. */
  soon?: boolean;
  timers?: Timers;
}

/** Runs `fn` every `ms` until `signal` aborts. */
export function every(
  signal: AbortSignal,
  ms: number,
  fn: () => Promise<void>,
  o: EveryOptions = {},
): void {
  const timers = o.timers ?? systemTimers;
  let t: TimerId | null = null;
  const tick = async () => {
    if (signal.aborted) return;
    try {
      await fn();
    } catch (err) {
      log.debug("Periodic task failed", { error: (err as Error).message });
    }
    if (!signal.aborted) t = timers.setTimeout(tick, ms);
  };
  t = timers.setTimeout(tick, o.soon ? Math.min(ms, 1000) : ms);
  signal.addEventListener("abort", () => t !== null && timers.clearTimeout(t), { once: true });
}
