/**
 * The change feed between edges sharing one database, carried by the
 * database itself: `publish` writes a row to `feed_log` (inside the caller's
 * transaction when there is one, so the message goes out only if the change
 * it announces commits), and every edge reads the rows after the last one
 * it saw, four times a second. Writers take turns under the store's write
 * lock (BEGIN IMMEDIATE on SQLite, the advisory lock on PostgreSQL), so ids
 * become visible in order and "after the last one seen" misses nothing.
 * Rows older than five minutes are pruned.
 *
 * This works on any backend with no extra connection; LISTEN/NOTIFY can
 * replace the polling later behind the same ChangeFeed interface.
 */
import { logger } from "../log.ts";
import { type ChangeFeed, checkMessage, Listeners } from "./feed.ts";
import type { SqlDatabase } from "./sql.ts";

const log = logger("store.feed");

/** Options of a StoreLogFeed. */
export interface StoreLogFeedOptions {
  /** Milliseconds between two reads of new rows (default 250). */
  pollMs?: number;
  /** Rows older than this are pruned (default 5 min). */
  keepMs?: number;
  now?: () => number;
}

/** A ChangeFeed over the `feed_log` table (migration 12). */
export class StoreLogFeed implements ChangeFeed {
  #db: SqlDatabase;
  #l = new Listeners();
  #last: number;
  #timer: ReturnType<typeof setInterval> | null = null;
  #closed = false;
  #now: () => number;
  #keepMs: number;
  #pollMs: number;
  #lastPrune = 0;
  #failing = false;

  constructor(db: SqlDatabase, opts: StoreLogFeedOptions = {}) {
    this.#db = db;
    this.#now = opts.now ?? Date.now;
    this.#keepMs = opts.keepMs ?? 300_000;
    this.#pollMs = opts.pollMs ?? 250;
    // Only what is published from now on.
    this.#last = Number(db.get<{ m: number | null }>("SELECT MAX(id) AS m FROM feed_log")?.m ?? 0);
  }

  publish(channel: string, payload: string): void {
    checkMessage(channel, payload);
    if (this.#closed) return;
    this.#db.transaction(() => {
      this.#db.insert(
        "INSERT INTO feed_log (channel, payload, at) VALUES (?, ?, ?)",
        channel,
        payload,
        this.#now(),
      );
    });
  }

  listen(channel: string, fn: (payload: string) => void): () => void {
    checkMessage(channel, "");
    const { remove } = this.#l.add(channel, fn);
    this.#ensurePolling();
    return () => void remove();
  }

  onReconnect(fn: () => void): () => void {
    return this.#l.addReconnect(fn);
  }

  /** Reads and delivers the rows written since the last read (the poll does this on its own). */
  poll(): number {
    if (this.#closed) return 0;
    let rows: { id: number; channel: string; payload: string }[];
    try {
      rows = this.#db.all<{ id: number; channel: string; payload: string }>(
        "SELECT id, channel, payload FROM feed_log WHERE id > ? ORDER BY id LIMIT 1000",
        this.#last,
      );
    } catch (e) {
      // The database was away: messages may have been missed, listeners re-read.
      if (!this.#failing) log.warn("Cannot read the change feed", { error: (e as Error).message });
      this.#failing = true;
      return 0;
    }
    if (this.#failing) {
      this.#failing = false;
      this.#l.reconnected();
    }
    for (const r of rows) {
      this.#last = Math.max(this.#last, Number(r.id));
      this.#l.deliver(String(r.channel), String(r.payload));
    }
    this.#prune();
    return rows.length;
  }

  close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#l.clear();
    return Promise.resolve();
  }

  #ensurePolling(): void {
    if (this.#timer !== null || this.#closed) return;
    this.#timer = setInterval(() => this.poll(), this.#pollMs);
    // A feed alone must not keep a process alive that has nothing else to do.
    Deno.unrefTimer(this.#timer);
  }

  #prune(): void {
    const now = this.#now();
    if (now - this.#lastPrune < 60_000) return;
    this.#lastPrune = now;
    try {
      this.#db.run("DELETE FROM feed_log WHERE at < ?", now - this.#keepMs);
    } catch (e) {
      log.warn("Cannot prune the change feed", { error: (e as Error).message });
    }
  }
}
