/**
 * Byte plumbing for the proxy engine: a reader that keeps what it has read
 * ahead (the request head, the TLS ClientHello) so it can be replayed to the
 * origin, and a counting pipe between two connections.
 */

/** Anything the proxy reads from and writes to (TCP and TLS connections alike). */
export interface Duplex {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
  closeWrite?(): Promise<void>;
}

/** Writes all of `b`. */
export async function writeAll(w: Duplex, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await w.write(b.subarray(off));
}

/**
 * A reader with a look-ahead buffer. The buffer grows by doubling and is
 * read in place, so reading a 20 MB body ahead costs one copy, not one per
 * chunk.
 */
export class PeekReader {
  #buf = new Uint8Array(16 * 1024);
  #start = 0;
  #end = 0;
  #eof = false;
  constructor(readonly conn: Duplex) {}

  /** What has been read ahead and not consumed (a view, valid until the next read). */
  get buffered(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  /** True once the peer ended its side. */
  get eof(): boolean {
    return this.#eof;
  }

  /** Makes room for `n` more bytes after the buffered ones. */
  #reserve(n: number): void {
    const used = this.#end - this.#start;
    if (this.#buf.length - this.#end >= n) return;
    if (this.#buf.length - used >= n && used < this.#buf.length / 2) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      let cap = this.#buf.length;
      while (cap - used < n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
    }
    this.#start = 0;
    this.#end = used;
  }

  /** Reads more into the buffer (up to `max` bytes); false at end of stream. */
  async fill(max = 65536): Promise<boolean> {
    if (this.#eof) return false;
    this.#reserve(max);
    const n = await this.conn.read(this.#buf.subarray(this.#end, this.#end + max));
    if (n === null) {
      this.#eof = true;
      return false;
    }
    this.#end += n;
    return true;
  }

  /** Ensures at least `n` bytes are buffered (fewer at end of stream). */
  async want(n: number): Promise<Uint8Array> {
    while (this.#end - this.#start < n) {
      const missing = n - (this.#end - this.#start);
      if (!(await this.fill(Math.max(65536, Math.min(missing, 4 * 1024 * 1024))))) break;
    }
    return this.buffered;
  }

  /** Takes `n` buffered bytes out (a copy). */
  take(n: number): Uint8Array {
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += out.length;
    return out;
  }

  /** Reads into `p`, from the buffer first. */
  async read(p: Uint8Array): Promise<number | null> {
    if (this.#end > this.#start) {
      const n = Math.min(p.length, this.#end - this.#start);
      p.set(this.#buf.subarray(this.#start, this.#start + n));
      this.#start += n;
      return n;
    }
    return this.#eof ? null : await this.conn.read(p);
  }
}

/** The buffer a pipe starts with (64 KiB) and the largest it grows to (256 KiB). */
export const PIPE_BUFFER = { initial: 64 * 1024, max: 256 * 1024 } as const;

/**
 * Copies from `from` to `to` until end of stream (or `limit` bytes), then
 * half-closes `to`; returns the bytes copied. Errors end the copy quietly:
 * either side hanging up is the normal end of a proxied connection.
 *
 * A read that fills the buffer doubles it (up to PIPE_BUFFER.max): a bulk
 * download then costs a quarter of the reads and writes (each an async
 * op), while the many connections that move little keep a small buffer.
 */
export async function pipe(
  from: { read(p: Uint8Array): Promise<number | null> },
  to: Duplex,
  opts: { limit?: number; onFirst?: (chunk: Uint8Array) => void; halfClose?: boolean } = {},
): Promise<number> {
  let buf = new Uint8Array(PIPE_BUFFER.initial);
  let total = 0;
  const limit = opts.limit ?? Infinity;
  try {
    while (total < limit) {
      const n = await from.read(buf.subarray(0, Math.min(buf.length, limit - total)));
      if (n === null) break;
      if (total === 0) opts.onFirst?.(buf.subarray(0, n));
      await writeAll(to, buf.subarray(0, n));
      total += n;
      if (n === buf.length && buf.length < PIPE_BUFFER.max) buf = new Uint8Array(buf.length * 2);
    }
  } catch {
    // reset or closed by the other pipe
  }
  if (opts.halfClose ?? true) await to.closeWrite?.().catch(() => {});
  return total;
}

/** Closes a connection, ignoring "already closed". */
export function closeQuietly(c: { close(): void } | null | undefined): void {
  try {
    c?.close();
  } catch {
    // already closed
  }
}
