/**
 * One ArrayBuffer carved into the data plane's packet memory: the pump's
 * slots and the staging areas where the TUN device and the UDP socket put
 * super-packets (64 KiB) before they are cut into slots.
 *
 * Why one buffer: cutting a super-packet copies every segment into a slot.
 * Between two views of the same ArrayBuffer that copy is a `copyWithin`
 * (a memmove, nothing allocated); between different buffers it needs a
 * `subarray` view per copy. The arena never grows or frees: it is sized once
 * when the pump is built, so the hot path allocates nothing.
 */

/** A fixed ArrayBuffer handed out in aligned regions. */
export class PacketArena {
  /** The whole buffer as bytes. */
  readonly bytes: Uint8Array;
  #used = 0;

  /** Allocates `size` bytes (zeroed; pages the kernel never writes stay unbacked). */
  constructor(size: number) {
    if (!Number.isInteger(size) || size < 0) {
      throw new RangeError(`Cannot make a packet arena of ${size} bytes`);
    }
    this.bytes = new Uint8Array(size);
  }

  /** Bytes not handed out yet. */
  get free(): number {
    return this.bytes.length - this.#used;
  }

  /** Hands out the next `size` bytes, starting at a multiple of `align` (default 64). */
  carve(size: number, align = 64): Uint8Array {
    const start = Math.ceil(this.#used / align) * align;
    if (start + size > this.bytes.length) {
      throw new RangeError(
        `Cannot carve ${size} bytes from a packet arena with ${this.bytes.length - start} left`,
      );
    }
    this.#used = start + size;
    return this.bytes.subarray(start, start + size);
  }

  /** Hands out `n` regions of `size` bytes each (slots). */
  carveMany(n: number, size: number, align = 64): Uint8Array[] {
    const out = new Array<Uint8Array>(n);
    for (let i = 0; i < n; i++) out[i] = this.carve(size, align);
    return out;
  }
}

// Whole-buffer views for copyWithin, cached for the last two buffers seen.
let lastA: ArrayBufferLike | null = null;
let viewA: Uint8Array | null = null;
let lastB: ArrayBufferLike | null = null;
let viewB: Uint8Array | null = null;

function wholeView(ab: ArrayBufferLike): Uint8Array {
  if (ab === lastA) return viewA!;
  if (ab === lastB) return viewB!;
  lastB = lastA;
  viewB = viewA;
  lastA = ab;
  viewA = new Uint8Array(ab);
  return viewA;
}

/**
 * Copies `src[srcOff .. srcOff+len]` to `dst[dstOff ..]`. When both views
 * share one ArrayBuffer this is a copyWithin (overlap-safe, allocation-free);
 * otherwise a set() through a subarray view.
 */
export function copyBytes(
  dst: Uint8Array,
  dstOff: number,
  src: Uint8Array,
  srcOff: number,
  len: number,
): void {
  if (len <= 0) return;
  if (dst.buffer === src.buffer) {
    const s = src.byteOffset + srcOff;
    wholeView(dst.buffer).copyWithin(dst.byteOffset + dstOff, s, s + len);
  } else {
    dst.set(src.subarray(srcOff, srcOff + len), dstOff);
  }
}
