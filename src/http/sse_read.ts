/**
 * Reading a server-sent event stream (text/event-stream) on the client side:
 * the connector follows the edge's policy stream with it.
 */
import { EdgeApiError } from "../connector/edge_api.ts";

/** One server-sent event. */
export interface SseEvent {
  event: string;
  data: string;
  id: string | null;
}

/** Longest line or event accepted (the edge's events are tiny; this bounds a broken stream). */
export const MAX_SSE_BYTES = 1024 * 1024;

/**
 * Parses a text/event-stream body into events (comments and retry lines
 * ignored). Lines and events may be split anywhere across chunks, as the
 * network delivers them, so the pending line and the event being built
 * carry over from one chunk to the next.
 */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  // An aborted fetch does not always cancel an in-flight body (in-process
  // transports never do), so cancel the reader ourselves.
  const onAbort = () => void reader.cancel().catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  const tooLong = () =>
    new EdgeApiError("bad_response", "Cannot read policy stream: line over 1 MiB", 502);
  let buf = "";
  let event = "message";
  let data: string[] = [];
  let dataSize = 0;
  let id: string | null = null;
  try {
    while (true) {
      const { value: chunk, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.search(/\r?\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(buf[nl] === "\r" ? nl + 2 : nl + 1);
        if (line === "") {
          if (data.length) yield { event, data: data.join("\n"), id };
          event = "message";
          data = [];
          dataSize = 0;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") {
          dataSize += value.length + 1;
          if (dataSize > MAX_SSE_BYTES) throw tooLong();
          data.push(value);
        } else if (field === "id") id = value;
      }
      // What is left is a line still being received.
      if (buf.length > MAX_SSE_BYTES) throw tooLong();
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
}

/** Extracts the policy version from an event's data: JSON {version} or a bare string. */
export function sseVersion(data: string): string | null {
  const t = data.trim();
  if (!t) return null;
  if (t.startsWith("{")) {
    try {
      const j = JSON.parse(t);
      if (typeof j.version === "string") return j.version;
      if (j.policy && typeof j.policy.version === "string") return j.policy.version;
      return null;
    } catch {
      return null;
    }
  }
  return /^[\w.:-]{1,128}$/.test(t) ? t.replace(/^"|"$/g, "") : null;
}

/** The reason of a "revoked" event: JSON {reason} or the text itself, at most 100 characters. */
export function sseReason(data: string): string {
  try {
    const j = JSON.parse(data);
    if (typeof j.reason === "string") return j.reason.slice(0, 100);
  } catch {
    // not JSON
  }
  return data.slice(0, 100) || "revoked";
}
