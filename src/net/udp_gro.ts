/**
 * Splitting what recvmmsg returned with UDP GRO on: message m may be a run
 * of datagrams the kernel coalesced (its segment size in a control message),
 * its first bytes in the caller's slot m and the rest in staging chunk m.
 * The caller wants one datagram per slot, in order.
 *
 * Why backwards: the datagrams of message m go to slots P(m) ≥ m (P counts
 * the datagrams before m), so handling the last message first never
 * overwrites a slot whose message is still unread. Messages that do not fit
 * the caller's slots are made contiguous in their staging chunk and handed
 * out by later calls (`pending`), before the socket is read again. Bytes move
 * with copyBytes: inside the data plane's arena that is a copyWithin, so
 * nothing is allocated.
 */
import { copyBytes } from "../packet/arena.ts";
import type { Endpoint } from "./endpoint.ts";
import { RX_CHUNK, RX_ROOM_MAX, type RxVec } from "./mmsg.ts";

/** Counters of the GRO receive path. */
export interface GroStats {
  /** Messages that carried a coalesced run. */
  groRuns: number;
  /** Datagrams cut from those runs. */
  groDatagrams: number;
  /** Datagrams dropped: larger than a slot, or a segment size a slot cannot hold. */
  oversized: number;
}

/** Cuts coalesced receives into the caller's slots; keeps what does not fit for later. */
export class GroSplitter {
  readonly #segs: Int32Array;
  readonly #len: Int32Array;
  readonly #gso: Int32Array;
  readonly #pos: Int32Array;
  readonly #room: Int32Array;
  readonly #from: (Endpoint | undefined)[];
  readonly #pendMsg: Int32Array;
  #pendHead = 0;
  #pendCount = 0;
  #pendSeg = 0;
  #staging: Uint8Array | null = null;
  readonly stats: GroStats = { groRuns: 0, groDatagrams: 0, oversized: 0 };

  /** State for up to `n` messages per recvmmsg. */
  constructor(n: number) {
    this.#segs = new Int32Array(n);
    this.#len = new Int32Array(n);
    this.#gso = new Int32Array(n);
    this.#pos = new Int32Array(n);
    this.#room = new Int32Array(n);
    this.#from = new Array(n);
    this.#pendMsg = new Int32Array(n);
  }

  /** True while datagrams of an earlier receive wait in staging. */
  get pending(): boolean {
    return this.#pendCount > 0;
  }

  /**
   * Handles the `r` messages just received into `rx`: datagrams go into
   * bufs[0 .. max) at `offset` with their sizes and senders; returns how many.
   */
  split(
    rx: RxVec,
    r: number,
    bufs: Uint8Array[],
    sizes: Int32Array,
    from: Endpoint[],
    offset: number,
    max: number,
    senderOf: (m: number) => Endpoint,
  ): number {
    const segs = this.#segs, lens = this.#len, gsos = this.#gso, pos = this.#pos;
    const rooms = this.#room;
    let total = 0;
    let simple = true;
    for (let m = 0; m < r; m++) {
      const len = rx.length(m);
      let gso = rx.segmentSize(m);
      const room = rx.room[m];
      const slotRoom = bufs[m].length - offset;
      let s: number;
      if (gso > 0 && len > gso) {
        this.stats.groRuns++;
        s = gso <= slotRoom ? Math.ceil(len / gso) : 0;
      } else s = len <= slotRoom ? 1 : 0;
      if (s === 0) {
        // Keeps its place (so every output slot index stays ≥ its source's) and is
        // squeezed out at the end.
        this.stats.oversized++;
        s = 1;
        gso = -1;
      }
      if (s !== 1 || len > room || gso < 0) simple = false;
      segs[m] = s;
      lens[m] = len;
      gsos[m] = gso < 0 ? -1 : s > 1 ? gso : len;
      pos[m] = total;
      rooms[m] = room;
      total += s;
    }
    if (simple) {
      // Nothing coalesced: every datagram already sits in its own slot.
      for (let m = 0; m < r; m++) {
        sizes[m] = lens[m];
        from[m] = senderOf(m);
      }
      return r;
    }
    const st = rx.staging!;
    this.#staging = st;
    let cut = r;
    for (let m = 0; m < r; m++) {
      if (pos[m] + segs[m] > max) {
        cut = m;
        break;
      }
    }
    // Messages from `cut` on do not fit now: make each whole in its chunk, for later.
    for (let m = cut; m < r; m++) {
      if (gsos[m] < 0) continue;
      this.#contiguous(m, bufs[m], offset, st);
      this.#from[m] = senderOf(m);
      this.#pendMsg[this.#pendCount++] = m;
    }
    let out = total;
    if (cut < r) {
      // The first of them hands out what fits now.
      const now = gsos[cut] < 0 ? 0 : max - pos[cut];
      if (now > 0) this.#cut(st, cut, 0, now, bufs, sizes, from, pos[cut], offset);
      this.#pendSeg = now;
      out = pos[cut] + now;
    }
    let holes = 0;
    for (let m = cut - 1; m >= 0; m--) {
      const s = segs[m];
      const p = pos[m];
      if (gsos[m] < 0) {
        sizes[p] = -1;
        holes++;
        continue;
      }
      if (s === 1 && lens[m] <= rooms[m]) {
        if (p !== m) copyBytes(bufs[p], offset, bufs[m], offset, lens[m]);
        sizes[p] = lens[m];
        from[p] = senderOf(m);
        continue;
      }
      this.#contiguous(m, bufs[m], offset, st);
      this.#from[m] = senderOf(m);
      this.#cut(st, m, 0, s, bufs, sizes, from, p, offset);
    }
    if (holes === 0) return out;
    // Squeeze out the dropped ones: moving down is safe in a forward pass.
    let w = 0;
    for (let i = 0; i < out; i++) {
      if (sizes[i] < 0) continue;
      if (w !== i) {
        copyBytes(bufs[w], offset, bufs[i], offset, sizes[i]);
        sizes[w] = sizes[i];
        from[w] = from[i];
      }
      w++;
    }
    return w;
  }

  /** Hands out pending datagrams into bufs[0 .. max); returns how many. */
  drain(
    bufs: Uint8Array[],
    sizes: Int32Array,
    from: Endpoint[],
    offset: number,
    max: number,
  ): number {
    let n = 0;
    const st = this.#staging!;
    while (this.#pendCount > 0 && n < max) {
      const m = this.#pendMsg[this.#pendHead];
      const take = Math.min(this.#segs[m] - this.#pendSeg, max - n);
      this.#cut(st, m, this.#pendSeg, take, bufs, sizes, from, n, offset);
      n += take;
      this.#pendSeg += take;
      if (this.#pendSeg >= this.#segs[m]) {
        this.#pendHead++;
        this.#pendCount--;
        this.#pendSeg = 0;
        if (this.#pendCount === 0) this.#pendHead = 0;
      }
    }
    return n;
  }

  /** Forgets pending datagrams (the socket closed or its staging moved). */
  reset(): void {
    this.#pendCount = this.#pendHead = this.#pendSeg = 0;
  }

  // Copies message m's slot part in front of its staging chunk, so the run is contiguous there.
  #contiguous(m: number, slot: Uint8Array, offset: number, st: Uint8Array): void {
    const room = this.#room[m];
    copyBytes(st, m * RX_CHUNK + RX_ROOM_MAX - room, slot, offset, Math.min(room, this.#len[m]));
  }

  // Cuts datagrams [first, first+count) of message m (contiguous in staging) into bufs[at ..].
  #cut(
    st: Uint8Array,
    m: number,
    first: number,
    count: number,
    bufs: Uint8Array[],
    sizes: Int32Array,
    from: Endpoint[],
    at: number,
    offset: number,
  ): void {
    const start = m * RX_CHUNK + RX_ROOM_MAX - this.#room[m];
    const gso = this.#gso[m], len = this.#len[m];
    const ep = this.#from[m]!;
    for (let k = 0; k < count; k++) {
      const s = (first + k) * gso;
      const n = Math.min(gso, len - s);
      copyBytes(bufs[at + k], offset, st, start + s, n);
      sizes[at + k] = n;
      from[at + k] = ep;
    }
    this.stats.groDatagrams += count;
  }
}
