/**
 * HTTP/1.1 as the origin client writes and reads it: the request head (and
 * a small body in the same write), chunked uploads, and response heads and
 * their framing, parsed strictly. What an origin sends that is not HTTP/1.1
 * as RFC 9112 says is an OriginProtocolError (the inspector answers 502);
 * a reused connection that ends before any byte of an answer is a
 * StaleConnection (the client decides whether to send again).
 */
import { headEnd, TOKEN } from "./http_head.ts";
import { type PeekReader, writeAll } from "./stream.ts";

/** Largest response head accepted (64 KiB). */
export const MAX_RESPONSE_HEAD = 64 * 1024;

const ENCODER = new TextEncoder();
const LATIN1 = new TextDecoder("latin1");

/** An answer the origin sent that is not HTTP/1.1 as it must be. */
export class OriginProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OriginProtocolError";
  }
}

/** Thrown when a reused connection turned out closed before any answer. */
export class StaleConnection extends Error {}

/** How a response body ends. */
export type Framing = { kind: "length"; n: number } | { kind: "chunked" } | { kind: "close" };

/** What goes into a request head. */
export interface RequestLine {
  host: string;
  port: number;
  method: string;
  /** Path and query, already percent-encoded (from a parsed URL). */
  path: string;
  /** End-to-end headers; Host and the body's framing are added here. */
  headers: Iterable<[string, string]>;
  body: Uint8Array | ReadableStream<Uint8Array> | null;
}

/** The request head and body to write (a small body rides in the head's write). */
export function requestBytes(r: RequestLine): {
  head: Uint8Array;
  body: Uint8Array | ReadableStream<Uint8Array> | null;
} {
  const authority = r.host.includes(":") ? `[${r.host}]` : r.host;
  let text = `${r.method} ${r.path} HTTP/1.1\r\nhost: ${authority}${
    r.port === 443 ? "" : `:${r.port}`
  }\r\n`;
  for (const [k, v] of r.headers) text += `${k}: ${v}\r\n`;
  const b = r.body;
  if (b instanceof ReadableStream) text += "transfer-encoding: chunked\r\n";
  else if (b) text += `content-length: ${b.length}\r\n`;
  else if (r.method === "POST" || r.method === "PUT" || r.method === "PATCH") {
    text += "content-length: 0\r\n";
  }
  text += "\r\n";
  const head = ENCODER.encode(text);
  // A small body rides in the head's write (one TLS record, one segment).
  if (b instanceof Uint8Array && b.length && b.length <= 16 * 1024) {
    const one = new Uint8Array(head.length + b.length);
    one.set(head);
    one.set(b, head.length);
    return { head: one, body: null };
  }
  return { head, body: b };
}

export async function writeChunked(
  w: Deno.TlsConn,
  body: ReadableStream<Uint8Array>,
): Promise<void> {
  const enc = ENCODER;
  for await (const chunk of body) {
    if (!chunk.length) continue;
    await writeAll(w, enc.encode(`${chunk.length.toString(16)}\r\n`));
    await writeAll(w, chunk);
    await writeAll(w, enc.encode("\r\n"));
  }
  await writeAll(w, enc.encode("0\r\n\r\n"));
}

export interface ParsedHead {
  version: "1.0" | "1.1";
  status: number;
  headers: [string, string][];
}

/** A header value Headers accepts: no controls but tab. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Reads one response head; on a reused connection an early end is a StaleConnection. */
export async function readResponseHead(r: PeekReader, reused: boolean): Promise<ParsedHead> {
  let end: number;
  for (;;) {
    end = headEnd(r.buffered);
    if (end >= 0 && end <= MAX_RESPONSE_HEAD) break;
    if (end >= 0 || r.buffered.length > MAX_RESPONSE_HEAD) {
      throw new OriginProtocolError("The origin's response head is larger than 64 KiB");
    }
    let more: boolean;
    try {
      more = await r.fill();
    } catch (e) {
      if (r.buffered.length === 0 && reused) throw new StaleConnection();
      throw e;
    }
    if (!more) {
      if (r.buffered.length === 0) throw new StaleConnection();
      throw new OriginProtocolError("The origin closed the connection inside its response head");
    }
  }
  return parseResponseHead(r.take(end));
}

/** Parses a response head (bytes up to and including the blank line). */
export function parseResponseHead(bytes: Uint8Array): ParsedHead {
  const lines = LATIN1.decode(bytes).split("\r\n");
  const m = /^HTTP\/1\.([01]) ([1-5]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/.exec(lines[0]);
  if (!m) {
    throw new OriginProtocolError(
      `The origin's status line "${lines[0].slice(0, 80)}" is not HTTP/1.x`,
    );
  }
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const c = line.indexOf(":");
    const name = c > 0 ? line.slice(0, c) : "";
    const value = line.slice(c + 1).trim();
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) {
      throw new OriginProtocolError(
        `The origin's header line "${line.slice(0, 80)}" is not valid`,
      );
    }
    headers.push([name.toLowerCase(), value]);
  }
  return { version: m[1] === "1" ? "1.1" : "1.0", status: Number(m[2]), headers };
}

/** How the body ends: RFC 9112 §6.3 (Transfer-Encoding over Content-Length). */
export function framingOf(headers: [string, string][]): Framing {
  let te = "", length: string | null = null, conflict = false;
  for (const [k, v] of headers) {
    if (k === "transfer-encoding") te = te ? `${te},${v}` : v;
    else if (k === "content-length") {
      for (const part of v.split(",")) {
        const p = part.trim();
        if (length === null) length = p;
        else if (p !== length) conflict = true;
      }
    }
  }
  if (te) {
    const codings = te.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
    return codings.at(-1) === "chunked" ? { kind: "chunked" } : { kind: "close" };
  }
  if (length === null) return { kind: "close" };
  if (conflict || !/^\d{1,15}$/.test(length)) {
    const all = headers.filter(([k]) => k === "content-length").map(([, v]) => v).join(", ");
    throw new OriginProtocolError(`The origin's Content-Length "${all.slice(0, 60)}" is not valid`);
  }
  return { kind: "length", n: Number(length) };
}
