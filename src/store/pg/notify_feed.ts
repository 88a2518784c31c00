/**
 * The change feed between edges sharing one PostgreSQL database, over
 * LISTEN/NOTIFY: the server pushes each message to every listening edge the
 * moment it commits, with no table and no polling.
 *
 * Publishing is `SELECT pg_notify(channel, payload)` on the store's own
 * connection (the synchronous SqlDatabase), so inside a transaction the
 * message is queued with the change it announces and delivered on COMMIT,
 * never after a ROLLBACK — PostgreSQL's semantics, which is why publishing
 * does not go through the listen connection. Within one transaction,
 * identical messages on one channel are folded into one (also PostgreSQL's).
 *
 * Receiving runs on a second, dedicated connection held by porsager's
 * `sql.listen` on the main thread, not in the query worker: notifications
 * are asynchronous events, the listeners that handle them live on the main
 * thread and re-read the store there, and the worker's one connection must
 * stay free for the synchronous bridge (a LISTEN there could only be read
 * between two queries). While the main thread waits on a query, the
 * notifications wait in the socket; nothing is lost.
 *
 * When the listen connection drops (the server restarted, the backend was
 * terminated, the network failed), porsager reconnects and LISTENs again on
 * every channel. NOTIFY does not keep messages for an absent listener, so
 * once a channel is live again (and once it is first live: what was
 * published between `listen` and the LISTEN taking effect was not heard
 * either) the feed tells `onReconnect` listeners, which re-read the state
 * they follow.
 */
import type postgres from "postgres";
import { logger } from "../../log.ts";
import { type ChangeFeed, checkMessage, Listeners } from "../feed.ts";
import type { SqlDatabase } from "../sql.ts";
import { openClient } from "./client.ts";

const log = logger("store.feed");

/** Options of a PgNotifyFeed. */
export interface PgNotifyFeedOptions {
  /** Shown in pg_stat_activity for the listen connection. Default "portcullis feed". */
  application?: string;
  /** Longest to wait for the server per connection attempt (s). Default 10. */
  connectTimeoutS?: number;
}

/** A channel this feed listens on. */
interface Channel {
  /** Its LISTEN has taken effect at least once (a drop is not observable here). */
  live: boolean;
  /**
   * Removes porsager's listener (once its first LISTEN answered). After a
   * reconnect porsager holds a new listener and this handle no longer
   * unlistens; `dropped` then keeps the channel's messages from delivery.
   */
  unlisten: (() => Promise<unknown>) | null;
  /** No listener of ours is left. */
  dropped: boolean;
}

/** A ChangeFeed over PostgreSQL's LISTEN/NOTIFY. */
export class PgNotifyFeed implements ChangeFeed {
  #db: SqlDatabase;
  #sql: postgres.Sql;
  #l = new Listeners();
  #channels = new Map<string, Channel>();
  #waiters = new Set<() => void>();
  #reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;

  /** Publishes through `db` and listens on a connection of its own to `url`. */
  constructor(db: SqlDatabase, url: string, opts: PgNotifyFeedOptions = {}) {
    this.#db = db;
    this.#sql = openClient(url, {
      application: opts.application ?? "portcullis feed",
      connectTimeoutS: opts.connectTimeoutS ?? 10,
    });
  }

  publish(channel: string, payload: string): void {
    checkMessage(channel, payload);
    if (this.#closed) return;
    this.#db.get("SELECT pg_notify(?, ?) AS sent", channel, payload);
  }

  listen(channel: string, fn: (payload: string) => void): () => void {
    checkMessage(channel, "");
    if (this.#closed) return () => {};
    const { remove, first } = this.#l.add(channel, fn);
    if (first) this.#listen(channel);
    return () => {
      if (remove()) this.#unlisten(channel);
    };
  }

  onReconnect(fn: () => void): () => void {
    return this.#l.addReconnect(fn);
  }

  ready(timeoutMs = 10_000): Promise<void> {
    if (this.#allLive()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(done);
        reject(new Error(`The change feed is not listening after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(done);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    this.#l.clear();
    this.#channels.clear();
    // Also ends porsager's listen connection.
    await this.#sql.end({ timeout: 1 }).catch(() => {});
  }

  #listen(name: string): void {
    const ch: Channel = { live: false, unlisten: null, dropped: false };
    this.#channels.set(name, ch);
    this.#sql.listen(
      name,
      (payload) => {
        if (!this.#closed && !ch.dropped) this.#l.deliver(name, payload);
      },
      // Called on the first LISTEN and again on every re-LISTEN after a reconnect.
      () => this.#onLive(name, ch),
    ).then(
      ({ unlisten }) => {
        ch.unlisten = unlisten;
        if (ch.dropped || this.#closed) void unlisten().catch(() => {});
      },
      (e) => {
        // porsager keeps trying (every re-connection LISTENs again); #onLive reports success.
        if (!this.#closed) {
          log.warn("Cannot listen on the change feed yet", { channel: name, error: String(e) });
        }
      },
    );
  }

  #unlisten(name: string): void {
    const ch = this.#channels.get(name);
    if (!ch) return;
    ch.dropped = true;
    this.#channels.delete(name);
    if (ch.unlisten) void ch.unlisten().catch(() => {});
  }

  #onLive(name: string, ch: Channel): void {
    if (this.#closed || ch.dropped) return;
    if (ch.live) log.info("Change feed listening again", { channel: name });
    ch.live = true;
    // Channels listened together go live together: one report once all are.
    if (!this.#allLive()) return;
    for (const w of [...this.#waiters]) w();
    // Re-LISTENs after one reconnect come in a burst: tell listeners once.
    if (this.#reconnectTimer === null) {
      this.#reconnectTimer = setTimeout(() => {
        this.#reconnectTimer = null;
        if (!this.#closed) this.#l.reconnected();
      }, 0);
    }
  }

  #allLive(): boolean {
    for (const ch of this.#channels.values()) if (!ch.live) return false;
    return true;
  }
}
