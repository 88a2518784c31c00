/**
 * The change feed: how one edge tells the others sharing its database that
 * something changed ("device X enrolled", "policy revision 7", "notification
 * 42 was stored"). The database stays the truth; a feed message only says
 * where to look, so a receiver re-reads the rows it names.
 *
 * Two implementations: `LocalFeed` (one process, the SQLite default: an
 * SQLite file belongs to exactly one edge process, so every listener is in
 * this process) and `PgNotifyFeed` over LISTEN/NOTIFY (pg/notify_feed.ts),
 * where a message published by one edge reaches every edge, the publisher
 * included, and one published inside a transaction goes out only if it
 * commits. Delivery is at most once and asynchronous; a listener that must
 * not miss changes re-reads state when the feed says messages may have been
 * missed (`onReconnect`).
 */
import { logger } from "../log.ts";

const log = logger("store.feed");

/** Channel names are short identifiers (PostgreSQL channel rules). */
const CHANNEL = /^[a-z][a-z0-9_]{0,62}$/;

/** A publish/subscribe channel over the store. */
export interface ChangeFeed {
  /**
   * Sends `payload` (< 8,000 bytes of UTF-8) to every listener of `channel`,
   * in every process; inside a transaction, only once it commits.
   */
  publish(channel: string, payload: string): void;
  /** Calls `fn` for every message on `channel`; returns its removal. */
  listen(channel: string, fn: (payload: string) => void): () => void;
  /**
   * Calls `fn` whenever messages may have been missed: after the feed lost
   * and regained its connection, and once a newly listened channel is live
   * (what was published before that was not heard).
   */
  onReconnect(fn: () => void): () => void;
  /** Resolves once every channel listened so far is live (rejects after `timeoutMs`). */
  ready(timeoutMs?: number): Promise<void>;
  /** Stops delivering. */
  close(): Promise<void>;
}

/**
 * Largest payload NOTIFY carries, in bytes of the server encoding (UTF-8):
 * PostgreSQL refuses one of 8,000 bytes or more ("payload string too long").
 */
export const MAX_PAYLOAD = 7_999;

/**
 * Throws for a channel name or payload NOTIFY could not carry, on every
 * backend alike, so a message that works on SQLite cannot fail on PostgreSQL.
 */
export function checkMessage(channel: string, payload: string): void {
  if (!CHANNEL.test(channel)) throw new Error(`Invalid feed channel "${channel}"`);
  const bytes = new TextEncoder().encode(payload).length;
  if (bytes > MAX_PAYLOAD) {
    throw new Error(
      `Feed payload on "${channel}" is ${bytes} bytes, over the ${MAX_PAYLOAD} NOTIFY carries`,
    );
  }
  // PostgreSQL text cannot hold a NUL character.
  if (payload.includes("\0")) throw new Error(`Feed payload on "${channel}" contains a NUL`);
}

/** Listener bookkeeping shared by both feeds. */
export class Listeners {
  #subs = new Map<string, Set<(payload: string) => void>>();
  #reconnect = new Set<() => void>();

  /** Adds a listener; returns its removal and whether it was the channel's first. */
  add(channel: string, fn: (payload: string) => void): { remove: () => boolean; first: boolean } {
    let set = this.#subs.get(channel);
    const first = !set;
    if (!set) this.#subs.set(channel, set = new Set());
    set.add(fn);
    return {
      first,
      remove: () => {
        set!.delete(fn);
        if (set!.size > 0) return false;
        this.#subs.delete(channel);
        return true;
      },
    };
  }

  /** Channels with at least one listener. */
  channels(): string[] {
    return [...this.#subs.keys()];
  }

  /** Delivers one message; a throwing listener is logged, the others still run. */
  deliver(channel: string, payload: string): void {
    for (const fn of this.#subs.get(channel) ?? []) {
      try {
        fn(payload);
      } catch (e) {
        log.error("Feed listener failed", { channel, error: String(e) });
      }
    }
  }

  /** Adds a reconnect listener. */
  addReconnect(fn: () => void): () => void {
    this.#reconnect.add(fn);
    return () => this.#reconnect.delete(fn);
  }

  /** Tells reconnect listeners that messages may have been missed. */
  reconnected(): void {
    for (const fn of this.#reconnect) {
      try {
        fn();
      } catch (e) {
        log.error("Feed reconnect listener failed", { error: String(e) });
      }
    }
  }

  /** Drops every listener. */
  clear(): void {
    this.#subs.clear();
    this.#reconnect.clear();
  }
}

/** The one-process feed: delivery on a microtask, like the PostgreSQL feed's asynchrony. */
export class LocalFeed implements ChangeFeed {
  #l = new Listeners();
  #closed = false;

  publish(channel: string, payload: string): void {
    checkMessage(channel, payload);
    if (this.#closed) return;
    queueMicrotask(() => {
      if (!this.#closed) this.#l.deliver(channel, payload);
    });
  }

  listen(channel: string, fn: (payload: string) => void): () => void {
    checkMessage(channel, "");
    const { remove } = this.#l.add(channel, fn);
    return () => void remove();
  }

  onReconnect(fn: () => void): () => void {
    return this.#l.addReconnect(fn);
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#l.clear();
    return Promise.resolve();
  }
}
