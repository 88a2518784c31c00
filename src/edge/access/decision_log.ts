/**
 * Writes access decisions to the store without putting SQLite on the packet
 * path: the enforcer hands each decision to `add` (a push to an array), and
 * a timer writes the batch in one transaction. The enforcer already logs a
 * flow once (and again only when its outcome changes); on top of that a
 * global budget per second keeps a scanning device from flooding the disk —
 * what exceeds it is counted, and the count is written as one summary row.
 * Retention: the newest `keepRows` rows, none older than `keepMs`.
 */
import type { Clock } from "../../clock.ts";
import { logger } from "../../log.ts";
import type { DecisionRecord, Store } from "../../store/mod.ts";
import type { FlowDecision } from "./enforcer.ts";

const log = logger("edge.decisions");

/**
 * Flushes between prunes. A write holds the edge's thread, which moves every
 * tunnel packet. Pruning every 100th flush (50 s) deleted up to 25,000 rows
 * at once from a full log: 25–40 ms at the 1–1.7 µs a row measured deleting
 * from the web log. Every 4th deletes at most 1,000, and costs no more in all.
 */
const PRUNE_EVERY_FLUSHES = 4;

/** Options of the decision log. */
export interface DecisionLogOptions {
  /** Decisions written per second at most (default 500). */
  perSecond?: number;
  /** Rows kept (default 100,000). */
  keepRows?: number;
  /** Age kept (default 30 days). */
  keepMs?: number;
  /** Flush period (default 500 ms). */
  flushMs?: number;
}

/** Buffers decisions and writes them in batches. */
export class DecisionLog {
  #queue: FlowDecision[] = [];
  #windowStart = 0;
  #inWindow = 0;
  #suppressed = 0;
  #timer: ReturnType<typeof setInterval> | null = null;
  #flushes = 0;
  readonly #perSecond: number;
  readonly #keepRows: number;
  readonly #keepMs: number;
  /** Decisions written, and dropped over budget. */
  readonly stats = { written: 0, suppressed: 0 };

  constructor(private store: Store, private clock: Clock, private opts: DecisionLogOptions = {}) {
    this.#perSecond = opts.perSecond ?? 500;
    this.#keepRows = opts.keepRows ?? 100_000;
    this.#keepMs = opts.keepMs ?? 30 * 86_400_000;
  }

  /** Queues one decision (called from the data path: cheap, never throws). */
  add(d: FlowDecision): void {
    const now = this.clock.monotonic();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (++this.#inWindow > this.#perSecond) {
      this.#suppressed++;
      this.stats.suppressed++;
      return;
    }
    this.#queue.push(d);
  }

  /** Starts the periodic flush. */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.flush(), this.opts.flushMs ?? 500);
  }

  /** Writes what is queued (and prunes now and then); safe to call any time. */
  flush(): void {
    const batch = this.#queue;
    const suppressed = this.#suppressed;
    if (batch.length === 0 && suppressed === 0) return;
    this.#queue = [];
    this.#suppressed = 0;
    try {
      this.store.transaction(() => {
        const rows: Omit<DecisionRecord, "id">[] = batch.map((d) => ({
          at: d.at,
          deviceId: d.deviceId,
          deviceName: d.deviceName,
          user: d.user,
          src: d.src,
          dst: d.dst,
          port: d.port,
          protocol: d.protocol,
          name: d.name,
          verdict: d.allowed ? "allow" : "deny",
          rule: d.rule,
          segments: d.segments,
          reason: d.reason,
        }));
        if (suppressed > 0) {
          const last = batch.at(-1);
          rows.push({
            at: this.clock.now(),
            deviceId: "",
            deviceName: "",
            user: null,
            src: "",
            dst: "",
            port: 0,
            protocol: "",
            name: null,
            verdict: "deny",
            rule: null,
            segments: [],
            reason:
              `${suppressed} decisions were not logged: more than ${this.#perSecond} per second${
                last ? ` (last logged: ${last.deviceName} → ${last.dst})` : ""
              }`,
          });
        }
        this.store.decisions.append(rows);
        if (++this.#flushes % PRUNE_EVERY_FLUSHES === 1) {
          this.store.decisions.prune(this.#keepRows, this.clock.now() - this.#keepMs);
        }
      });
      this.stats.written += batch.length;
    } catch (e) {
      log.error("Cannot write access decisions", { count: batch.length, error: String(e) });
    }
  }

  /** Stops the timer and writes what is left. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.flush();
  }
}
