/**
 * A minimal server-sent-events body: events are written as they come, a
 * keepalive comment every `keepaliveMs` keeps proxies from closing an idle
 * stream, and everything is released when the client goes away.
 */

/** Writes SSE frames to an open stream. */
export interface SseWriter {
  /** Sends one event. */
  send(event: string, data: unknown, id?: string): void;
  /** Ends the stream. */
  close(): void;
  /** True once the stream has ended (either side). */
  readonly closed: boolean;
}

/**
 * Returns a ReadableStream carrying SSE. `run` is started with the writer and
 * an AbortSignal that fires when the client disconnects or the stream is closed.
 */
export function sseStream(
  keepaliveMs: number,
  run: (w: SseWriter, signal: AbortSignal) => Promise<void> | void,
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  const abort = new AbortController();
  let timer: ReturnType<typeof setInterval> | undefined;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const writer: SseWriter = {
    closed: false,
    send(event, data, id) {
      if (this.closed) return;
      const payload = JSON.stringify(data).replace(/\n/g, "\\n");
      controller.enqueue(
        enc.encode(`event: ${event}\n${id ? `id: ${id}\n` : ""}data: ${payload}\n\n`),
      );
    },
    close() {
      if (this.closed) return;
      (this as { closed: boolean }).closed = true;
      clearInterval(timer);
      abort.abort();
      try {
        controller.close();
      } catch { /* already closed */ }
    },
  };
  return new ReadableStream<Uint8Array>({
    start(ctrl) {
      controller = ctrl;
      controller.enqueue(enc.encode(": connected\n\n"));
      timer = setInterval(() => {
        if (!writer.closed) controller.enqueue(enc.encode(": keepalive\n\n"));
      }, keepaliveMs);
      Promise.resolve().then(() => run(writer, abort.signal)).catch(() => {}).finally(() =>
        writer.close()
      );
    },
    cancel() {
      (writer as { closed: boolean }).closed = true;
      clearInterval(timer);
      abort.abort();
    },
  });
}

/** Headers of an SSE response. */
export const SSE_HEADERS: Record<string, string> = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-store",
  "X-Accel-Buffering": "no",
};
