/**
 * Sends the connector's digital-experience results to the edge in batches:
 * results queue here (bounded: the oldest go first when the edge has been
 * away long), and every `everyMs` up to BATCH results are posted; a failed
 * post puts them back for the next round. The edge scores them against the
 * device's history and aggregates the fleet (src/edge/zdx.ts).
 */
import { systemTimers, type TimerId, type Timers } from "../clock.ts";
import { logger } from "../log.ts";
import type { ZdxReportItem, ZdxResult } from "../zdx/runner.ts";
import type { EdgeApi } from "./edge_api.ts";

const log = logger("connector.zdx");

/** Results per POST. */
export const BATCH = 200;
/** Results queued at most. */
export const QUEUE_LIMIT = 2000;

/** Batches results to the edge. */
export class ZdxUploader {
  #queue: ZdxReportItem[] = [];
  #timer: TimerId | null = null;
  #timers: Timers;
  #sending = false;
  #stopped = false;

  constructor(
    private api: () => EdgeApi | null,
    private everyMs = 30_000,
    timers: Timers = systemTimers,
  ) {
    this.#timers = timers;
  }

  /** Queues one result. */
  push(r: ZdxResult): void {
    this.#queue.push({
      probe: r.probe,
      url: r.url,
      at: r.at,
      ok: r.ok,
      status: r.status,
      phases: r.phases,
      edgeRttMs: r.edgeRttMs,
    });
    if (this.#queue.length > QUEUE_LIMIT) this.#queue.splice(0, this.#queue.length - QUEUE_LIMIT);
  }

  /** Results waiting. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Starts the periodic flush. */
  start(): void {
    const tick = () => {
      this.#timer = this.#timers.setTimeout(async () => {
        await this.flush();
        if (!this.#stopped) tick();
      }, this.everyMs);
    };
    tick();
  }

  /** Posts one batch now; false when there was nothing to send or it failed. */
  async flush(): Promise<boolean> {
    const api = this.api();
    if (this.#sending || !this.#queue.length || !api?.reportZdx) return false;
    this.#sending = true;
    const batch = this.#queue.splice(0, BATCH);
    try {
      await api.reportZdx(batch);
      return true;
    } catch (e) {
      this.#queue.unshift(...batch);
      if (this.#queue.length > QUEUE_LIMIT) this.#queue.splice(0, this.#queue.length - QUEUE_LIMIT);
      log.debug("Cannot send digital-experience results yet", { error: (e as Error).message });
      return false;
    } finally {
      this.#sending = false;
    }
  }

  /** Stops the timer. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) this.#timers.clearTimeout(this.#timer);
  }
}
