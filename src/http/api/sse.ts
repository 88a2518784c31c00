/**
 * A minimal server-sent-events body: events are written as they come, a
 * keepalive comment every `keepaliveMs` keeps proxies from closing an idle
 * stream, and everything is released when the client goes away.
 */

/** Writes SSE frames to an open stream. */
export interface SseWriter {
  /** Sends one event. */
  send(event: string, data: unknown, id?: string): void;
  /** Sends a last event without the validity check (e.g. "revoked"), then ends the stream. */
  sendFinal(event: string, data: unknown): void;
  /** Ends the stream. */
  close(): void;
  /** True once the stream has ended (either side). */
  readonly closed: boolean;
}

function frame(event: string, data: unknown, id?: string): string {
  const payload = JSON.stringify(data).replace(/\n/g, "\\n");
  return `event: ${event}\n${id ? `id: ${id}\n` : ""}data: ${payload}\n\n`;
}

/** Options of sseStream. */
export interface SseOptions {
  /**
   * Re-checked before every event and keepalive; the stream ends when it
   * answers false, so a stream cannot outlive the session or credential that
   * opened it.
   */
  stillValid?: () => boolean | Promise<boolean>;
  /** Called once when the stream ends for any reason. */
  onClose?: () => void;
  /** Ends the stream when it aborts (e.g. evicted by StreamSlots). */
  signal?: AbortSignal;
}

/**
 * Returns a ReadableStream carrying SSE. `run` is started with the writer and
 * an AbortSignal that fires when the client disconnects or the stream is closed.
 */
export function sseStream(
  keepaliveMs: number,
  run: (w: SseWriter, signal: AbortSignal) => Promise<void> | void,
  opts: SseOptions = {},
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  const abort = new AbortController();
  let timer: ReturnType<typeof setInterval> | undefined;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(timer);
    abort.abort();
    opts.onClose?.();
  };
  // Frames go through one chain so an asynchronous validity check keeps their order.
  let chain: Promise<void> = Promise.resolve();
  const emit = (frame: string, final = false) => {
    if (final) {
      chain = chain.then(() => {
        if (writer.closed) return;
        controller.enqueue(enc.encode(frame));
        writer.close();
      });
      return;
    }
    const check = opts.stillValid;
    if (!check) {
      if (!writer.closed) controller.enqueue(enc.encode(frame));
      return;
    }
    chain = chain.then(async () => {
      if (writer.closed) return;
      let ok = false;
      try {
        ok = await check();
      } catch {
        ok = false;
      }
      if (!ok) writer.close();
      else if (!writer.closed) controller.enqueue(enc.encode(frame));
    });
  };
  const writer: SseWriter = {
    closed: false,
    send(event, data, id) {
      if (this.closed) return;
      emit(frame(event, data, id));
    },
    sendFinal(event, data) {
      if (this.closed) return;
      emit(frame(event, data), true);
    },
    close() {
      if (this.closed) return;
      (this as { closed: boolean }).closed = true;
      end();
      try {
        controller.close();
      } catch { /* already closed */ }
    },
  };
  return new ReadableStream<Uint8Array>({
    start(ctrl) {
      controller = ctrl;
      if (opts.signal?.aborted) return writer.close();
      opts.signal?.addEventListener("abort", () => writer.close(), { once: true });
      controller.enqueue(enc.encode(": connected\n\n"));
      timer = setInterval(() => emit(": keepalive\n\n"), keepaliveMs);
      Promise.resolve().then(() => run(writer, abort.signal)).catch(() => {}).finally(() =>
        chain.then(() => writer.close())
      );
    },
    cancel() {
      (writer as { closed: boolean }).closed = true;
      end();
    },
  });
}

/** Headers of an SSE response. */
export const SSE_HEADERS: Record<string, string> = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-store",
  "X-Accel-Buffering": "no",
};

/** Most streams and long-polls one device credential or admin session may hold open. */
export const MAX_STREAMS_PER_KEY = 4;

/**
 * Counts open streams and long-polls per key (device, session, token). Past
 * the cap the oldest one is closed: one credential cannot pin down unbounded
 * connections and notifier subscriptions, yet a client reconnecting after a
 * network change is never locked out by its own half-open old streams.
 */
export class StreamSlots {
  #open = new Map<string, { evict: () => void }[]>();
  constructor(readonly max: number = MAX_STREAMS_PER_KEY) {}

  /** Takes a slot, closing the key's oldest stream (via its `evict`) when full; returns the release function. */
  acquire(key: string, evict: () => void): () => void {
    const list = this.#open.get(key) ?? [];
    this.#open.set(key, list);
    const entry = { evict };
    list.push(entry);
    while (list.length > this.max) {
      const oldest = list.shift()!;
      try {
        oldest.evict();
      } catch { /* already gone */ }
    }
    return () => {
      const l = this.#open.get(key);
      const i = l ? l.indexOf(entry) : -1;
      if (i < 0) return;
      l!.splice(i, 1);
      if (!l!.length) this.#open.delete(key);
    };
  }

  /** Open streams for a key. */
  count(key: string): number {
    return this.#open.get(key)?.length ?? 0;
  }
}
