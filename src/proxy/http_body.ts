/**
 * Request bodies the proxy must see whole before it forwards them (uploads
 * it inspects for sensitive data): Content-Length or chunked, read into one
 * buffer up to a limit. Chunked bodies are decoded and forwarded with a
 * Content-Length, so the origin gets exactly the bytes that were inspected.
 */
import { InputError } from "../errors.ts";
import type { PeekReader } from "./stream.ts";

/** A body read whole, or the sign that it was larger than the limit. */
export interface WholeBody {
  bytes: Uint8Array;
  /** Wire bytes consumed from the client (framing included). */
  wireBytes: number;
}

/**
 * One line of chunked framing (a chunk size, a trailer, the CRLF after a
 * chunk), without its line end; null when the stream ends first or no line
 * end comes within `max` bytes. Shared by request and response bodies.
 */
export async function readLine(r: PeekReader, max = 4096): Promise<string | null> {
  for (;;) {
    const b = r.buffered;
    const i = b.indexOf(10);
    if (i >= 0 && i <= max) {
      const text = new TextDecoder().decode(r.take(i + 1));
      return text.replace(/\r?\n$/, "");
    }
    if (b.length > max || !(await r.fill())) return null;
  }
}

async function line(r: PeekReader): Promise<string> {
  const l = await readLine(r);
  if (l === null) throw new InputError("bad_chunk", "Cannot read the chunked request body");
  return l;
}

/** Reads a body of `length` bytes, or a chunked one, refusing past `limit` bytes. */
export async function readWholeBody(
  r: PeekReader,
  framing: { length: number } | { chunked: true },
  limit: number,
): Promise<WholeBody | null> {
  if ("length" in framing) {
    if (framing.length > limit) return null;
    const b = await r.want(framing.length);
    if (b.length < framing.length) {
      throw new InputError("short_body", "Cannot read the request body: the client stopped early");
    }
    return { bytes: r.take(framing.length), wireBytes: framing.length };
  }
  const parts: Uint8Array[] = [];
  let size = 0, wire = 0;
  for (;;) {
    const l = await line(r);
    wire += l.length + 2;
    const m = /^([0-9A-Fa-f]{1,8})(?:;.*)?$/.exec(l);
    if (!m) throw new InputError("bad_chunk", "Cannot read the chunked request body");
    const n = parseInt(m[1], 16);
    if (n === 0) {
      // trailers until the blank line
      for (;;) {
        const t = await line(r);
        wire += t.length + 2;
        if (t === "") break;
      }
      break;
    }
    if (size + n > limit) return null;
    const b = await r.want(n + 2);
    if (b.length < n + 2) {
      throw new InputError("short_body", "Cannot read the request body: the client stopped early");
    }
    parts.push(r.take(n));
    r.take(2);
    size += n;
    wire += n + 2;
  }
  const bytes = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    bytes.set(p, off);
    off += p.length;
  }
  return { bytes, wireBytes: wire };
}
