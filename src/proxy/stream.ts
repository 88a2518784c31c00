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

/** A reader with a look-ahead buffer. */
export class PeekReader {
  #buf = new Uint8Array(0);
  #eof = false;
  constructor(readonly conn: Duplex) {}

  /** What has been read ahead and not consumed. */
  get buffered(): Uint8Array {
    return this.#buf;
  }

  /** True once the peer ended its side. */
  get eof(): boolean {
    return this.#eof;
  }

  /** Reads more into the buffer; false at end of stream. */
  async fill(max = 65536): Promise<boolean> {
    if (this.#eof) return false;
    const chunk = new Uint8Array(max);
    const n = await this.conn.read(chunk);
    if (n === null) {
      this.#eof = true;
      return false;
    }
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  /** Ensures at least `n` bytes are buffered (fewer at end of stream). */
  async want(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n && await this.fill()) { /* keep reading */ }
    return this.#buf;
  }

  /** Takes `n` buffered bytes out. */
  take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** Reads into `p`, from the buffer first. */
  async read(p: Uint8Array): Promise<number | null> {
    if (this.#buf.length) {
      const n = Math.min(p.length, this.#buf.length);
      p.set(this.#buf.subarray(0, n));
      this.#buf = this.#buf.subarray(n);
      return n;
    }
    return this.#eof ? null : await this.conn.read(p);
  }
}

/**
 * Copies from `from` to `to` until end of stream (or `limit` bytes), then
 * half-closes `to`; returns the bytes copied. Errors end the copy quietly:
 * either side hanging up is the normal end of a proxied connection.
 */
export async function pipe(
  from: { read(p: Uint8Array): Promise<number | null> },
  to: Duplex,
  opts: { limit?: number; onFirst?: (chunk: Uint8Array) => void; halfClose?: boolean } = {},
): Promise<number> {
  const buf = new Uint8Array(64 * 1024);
  let total = 0;
  const limit = opts.limit ?? Infinity;
  try {
    while (total < limit) {
      const n = await from.read(buf.subarray(0, Math.min(buf.length, limit - total)));
      if (n === null) break;
      if (total === 0) opts.onFirst?.(buf.subarray(0, n));
      await writeAll(to, buf.subarray(0, n));
      total += n;
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
