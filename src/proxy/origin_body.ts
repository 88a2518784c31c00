/**
 * A response body on a kept-alive origin connection: read whole or as a
 * stream, framed by Content-Length, chunks or the connection's end, and
 * handed back (whole: the connection may be reused) or given up (closed).
 */
import { setImmediate } from "node:timers";
import { readLine } from "./http_body.ts";
import { type Framing, OriginProtocolError } from "./origin_wire.ts";
import type { PeekReader } from "./stream.ts";

/** Largest read per piece while a body streams (256 KiB). */
const BODY_READ = 256 * 1024;
/** Largest batch a body stream hands on at once (256 KiB). */
export const STREAM_BATCH = 256 * 1024;

const TURN = Symbol("turn");
/** Resolves once the event loop has turned (its I/O polled). */
const nextTurn = () => new Promise<typeof TURN>((r) => setImmediate(() => r(TURN)));

/** `parts` in one array of `size` bytes. */
function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** A response body, read once: whole, or as a stream. */
export interface OriginBody {
  /** Body bytes received so far. */
  readonly received: number;
  /** The whole body. */
  bytes(): Promise<Uint8Array<ArrayBuffer>>;
  /** The body as a stream; cancelling it closes the connection. */
  stream(): ReadableStream<Uint8Array>;
  /** Gives the body up unread (the connection is closed). */
  cancel(): void;
}

/** What a body reads from and closes. */
export interface BodyConnection {
  readonly reader: PeekReader;
  close(): void;
}

/** A response body on a connection, handed back to the pool once read whole. */
export class Body implements OriginBody {
  received = 0;
  #used = false;
  /** Bytes left in the current chunk (chunked) or the body (length). */
  #left: number;
  #ended = false;
  /** A read a batch did not wait for (see stream). */
  #ahead: Promise<Uint8Array | null> | null = null;
  constructor(
    readonly conn: BodyConnection,
    readonly framing: Framing,
    readonly done: (whole: boolean) => void,
  ) {
    this.#left = framing.kind === "length" ? framing.n : 0;
    if (framing.kind === "length" && framing.n === 0) this.#end();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.done(true);
  }

  #fail(e: Error): never {
    this.conn.close();
    throw e;
  }

  #claim(): void {
    if (this.#used) throw new TypeError("The origin's body was already read");
    this.#used = true;
  }

  async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    this.#claim();
    if (this.framing.kind === "length") {
      const n = this.framing.n;
      const got = await this.conn.reader.want(n).catch((e) => this.#fail(e));
      if (got.length < n) this.#fail(new OriginProtocolError("The origin's body ended early"));
      const out = this.conn.reader.take(n) as Uint8Array<ArrayBuffer>;
      this.received = n;
      this.#left = 0;
      this.#end();
      return out;
    }
    const parts: Uint8Array[] = [];
    for (;;) {
      const c = await this.#next();
      if (!c) break;
      parts.push(c);
    }
    return concat(parts, this.received) as Uint8Array<ArrayBuffer>;
  }

  /**
   * The body as a stream of batches: each holds what arrived by the time
   * the event loop turns, up to STREAM_BATCH bytes. A TLS read returns one
   * 16 KiB record; handing each on alone cost every step after it (the
   * server's write, the loopback hop, the copy to the client) once per
   * record. A read that is not ready by the next turn is kept for the next
   * batch, so a slow stream is passed on as it comes, never held back.
   */
  stream(): ReadableStream<Uint8Array> {
    this.#claim();
    return new ReadableStream<Uint8Array>({
      pull: async (ctl) => {
        const first = await this.#following();
        if (!first) return ctl.close();
        const parts = [first];
        let size = first.length;
        while (size < STREAM_BATCH && !this.#ended) {
          const p = this.#next();
          const r = await Promise.race([p, nextTurn()]);
          if (r === TURN || r === null) {
            // Not there yet (or the end): the next pull starts with it.
            this.#ahead = p;
            p.catch(() => {}); // a failure is seen by the pull that awaits it
            break;
          }
          parts.push(r);
          size += r.length;
        }
        ctl.enqueue(parts.length === 1 ? first : concat(parts, size));
      },
      cancel: () => this.cancel(),
    });
  }

  /** The piece a batch left waiting, else the next. */
  #following(): Promise<Uint8Array | null> {
    const a = this.#ahead;
    if (!a) return this.#next();
    this.#ahead = null;
    return a;
  }

  cancel(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.conn.close();
    this.done(false);
  }

  /** The next piece of the body (a fresh array), or null at its end. */
  async #next(): Promise<Uint8Array | null> {
    if (this.#ended) return null;
    try {
      switch (this.framing.kind) {
        case "length":
          if (this.#left === 0) return this.#finish();
          return await this.#piece(this.#left, true);
        case "close": {
          const p = await this.#piece(BODY_READ, false);
          return p ?? this.#finish(false);
        }
        case "chunked": {
          if (this.#left === 0) {
            const size = await readLine(this.conn.reader);
            const m = size === null ? null : /^([0-9A-Fa-f]{1,12})[ \t]*(?:;.*)?$/.exec(size);
            if (!m) throw new OriginProtocolError("The origin's chunked body is not valid");
            this.#left = parseInt(m[1], 16);
            if (this.#left === 0) {
              // Trailers (dropped) up to the blank line.
              for (;;) {
                const t = await readLine(this.conn.reader);
                if (t === null) {
                  throw new OriginProtocolError("The origin's chunked body ended early");
                }
                if (t === "") break;
              }
              return this.#finish();
            }
          }
          const p = await this.#piece(this.#left, true);
          if (this.#left === 0) {
            const crlf = await readLine(this.conn.reader, 2);
            if (crlf !== "") {
              throw new OriginProtocolError("The origin's chunked body is not valid");
            }
          }
          return p;
        }
      }
    } catch (e) {
      this.#ended = true;
      this.conn.close();
      this.done(false);
      throw e;
    }
  }

  #finish(whole = true): null {
    if (!whole) {
      this.#ended = true;
      this.conn.close();
      this.done(false);
      return null;
    }
    this.#end();
    return null;
  }

  /**
   * Up to `max` bytes: what is buffered first, else one read into the
   * connection's buffer, copied out at its size. (A fresh array per read
   * would be zeroed at full size for the 16 KiB a TLS read usually
   * returns: measured, that memset was a sixth of the edge's CPU on 10 MB
   * downloads.)
   */
  async #piece(max: number, required: boolean): Promise<Uint8Array | null> {
    const r = this.conn.reader;
    if (!r.buffered.length && !(await r.fill(Math.min(max, BODY_READ)))) {
      if (required) throw new OriginProtocolError("The origin's body ended early");
      return null;
    }
    const out = r.take(Math.min(max, r.buffered.length));
    this.received += out.length;
    if (this.framing.kind !== "close") this.#left -= out.length;
    return out;
  }
}
