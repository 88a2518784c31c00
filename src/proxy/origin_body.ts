/**
 * A response body on a kept-alive origin connection: read whole or as a
 * stream, framed by Content-Length, chunks or the connection's end, and
 * handed back (whole: the connection may be reused) or given up (closed).
 */
import { setImmediate } from "node:timers";
import { readLine } from "./http_body.ts";
import { type Framing, OriginProtocolError } from "./origin_wire.ts";
import type { PeekReader } from "./stream.ts";

/** Largest piece `bytes()` reads at a time without a known length (256 KiB). */
const BODY_READ = 256 * 1024;
/** One TLS record's plaintext at most (16 KiB): what one read returns. */
const RECORD = 16 * 1024;
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
  /** Bytes the last streamed batch held (sizes the next: see #batchSize). */
  #lastBatch = 0;
  /** Where pieces for `bytes()` are read before they are copied out at their size. */
  #scratch: Uint8Array | null = null;
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
   *
   * The reads go straight into the batch's array: copying each record out
   * of the connection's buffer and then into a batch cost more of the
   * edge's thread on a 10 MB download than the TLS decryption (the origin
   * client alone: 16.5 against 6 ms for a bare read loop). A read kept for
   * the next batch fills the tail of the array already handed on (nothing
   * detaches it: the batch handed on is a view of the part before), and is
   * copied to the front of the next.
   */
  stream(): ReadableStream<Uint8Array> {
    this.#claim();
    let ahead: { read: Promise<number | null>; from: Uint8Array } | null = null;
    return new ReadableStream<Uint8Array>({
      pull: async (ctl) => {
        let out: Uint8Array;
        let size: number | null;
        if (ahead) {
          const a = ahead;
          ahead = null;
          size = await a.read;
          if (size === null) return ctl.close();
          out = new Uint8Array(this.#batchSize(size));
          out.set(a.from.subarray(0, size));
        } else {
          out = new Uint8Array(this.#batchSize(0));
          size = await this.#into(out);
          if (size === null) return ctl.close();
        }
        const turn = nextTurn();
        while (size < out.length && !this.#ended) {
          const from = out.subarray(size);
          const read = this.#into(from);
          const r = await Promise.race([read, turn]);
          if (r === TURN) {
            // Not there yet: the next pull starts with it.
            ahead = { read, from };
            read.catch(() => {}); // a failure is seen by the pull that awaits it
            break;
          }
          if (r === null) break; // the end: the next pull closes
          size += r;
        }
        this.#lastBatch = size;
        ctl.enqueue(out.subarray(0, size));
      },
      cancel: () => this.cancel(),
    });
  }

  /**
   * The array a batch is read into, holding `have` bytes already: zeroed at
   * its full size, so no larger than the batch can fill. With a known
   * length, what is left of the body (a 1 KiB answer gets 1 KiB, not 256);
   * without one (chunked, close), one TLS record at first, then twice what
   * the last batch held.
   */
  #batchSize(have: number): number {
    const want = this.framing.kind === "length"
      ? have + this.#left
      : Math.max(RECORD, 2 * this.#lastBatch);
    return Math.max(1, have, Math.min(STREAM_BATCH, want));
  }

  cancel(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.conn.close();
    this.done(false);
  }

  /** The next piece of the body (a fresh array, at its size), or null at its end. */
  async #next(): Promise<Uint8Array | null> {
    this.#scratch ??= new Uint8Array(BODY_READ);
    const n = await this.#into(this.#scratch);
    return n === null ? null : this.#scratch.slice(0, n);
  }

  /** Reads the next piece of the body into `dst`; returns its length, or null at the end. */
  async #into(dst: Uint8Array): Promise<number | null> {
    if (this.#ended) return null;
    try {
      switch (this.framing.kind) {
        case "length":
          if (this.#left === 0) return this.#finish();
          return await this.#read(dst, this.#left, true);
        case "close": {
          const n = await this.#read(dst, dst.length, false);
          return n ?? this.#finish(false);
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
          const n = await this.#read(dst, this.#left, true);
          if (this.#left === 0) {
            const crlf = await readLine(this.conn.reader, 2);
            if (crlf !== "") {
              throw new OriginProtocolError("The origin's chunked body is not valid");
            }
          }
          return n;
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
   * Up to `max` bytes into `dst`: what the connection has buffered first,
   * else one read straight into `dst`. (Not a fresh array per read: it
   * would be zeroed at full size for the 16 KiB a TLS read usually returns;
   * measured, that memset was a sixth of the edge's CPU on 10 MB downloads.)
   */
  async #read(dst: Uint8Array, max: number, required: boolean): Promise<number | null> {
    const n = await this.conn.reader.read(dst.subarray(0, Math.min(max, dst.length)));
    if (n === null || n === 0) {
      if (required) throw new OriginProtocolError("The origin's body ended early");
      return null;
    }
    this.received += n;
    if (this.framing.kind !== "close") this.#left -= n;
    return n;
  }
}
