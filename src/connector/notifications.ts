/**
 * Connector notifications: every engine transition and notable event is
 * stored (so the console shows history after a restart) and pushed to live
 * subscribers (so the console shows it as it happens).
 */
import type {
  ConnectorState,
  Notification,
  NotificationSeverity,
} from "../store/connector_state.ts";

/** Stores notifications and fans them out to live subscribers. */
export class NotificationHub {
  #store: ConnectorState;
  #now: () => number;
  #subs = new Set<(n: Notification) => void>();

  constructor(store: ConnectorState, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  /** Records and publishes one notification. */
  raise(
    type: string,
    severity: NotificationSeverity,
    message: string,
    data: Record<string, unknown> = {},
  ): Notification {
    const n = this.#store.addNotification({ ts: this.#now(), type, severity, message, data });
    for (const fn of this.#subs) {
      try {
        fn(n);
      } catch {
        // a broken subscriber must not stop the engine
      }
    }
    return n;
  }

  /** Registers a callback for new notifications; returns an unsubscribe function. */
  listen(fn: (n: Notification) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  /**
   * Live notifications as an async iterator, optionally filtered by type,
   * until `signal` aborts. Buffers at most 1000 unread ones (oldest dropped).
   */
  async *subscribe(signal: AbortSignal, type?: string): AsyncGenerator<Notification> {
    const queue: Notification[] = [];
    let wake: (() => void) | null = null;
    const off = this.listen((n) => {
      if (type && n.type !== type) return;
      queue.push(n);
      if (queue.length > 1000) queue.shift();
      wake?.();
    });
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      while (!signal.aborted) {
        if (queue.length) {
          yield queue.shift()!;
          continue;
        }
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    } finally {
      off();
      signal.removeEventListener("abort", onAbort);
    }
  }
}
