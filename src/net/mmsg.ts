/**
 * The struct arrays behind sendmmsg/recvmmsg for the UDP socket: mmsghdr,
 * iovec, sockaddr and control-message storage, allocated once and wired
 * together, so a batch costs a few integer stores and one FFI call.
 *
 * Sending (TxVec): one iovec per datagram; a message gathers a run of
 * datagrams for one destination and, with UDP GSO, carries a UDP_SEGMENT
 * control message (the kernel cuts the run back into datagrams of that size
 * after one trip through the stack). Receiving (RxVec): one message per
 * datagram, its first iovec the caller's slot; with UDP GRO a second iovec
 * catches the rest of a coalesced run and a control message says its
 * segment size.
 *
 * Pointers are plain numbers (V8 never moves an ArrayBuffer's memory); a
 * slot's base pointer is cached by the identity of the caller's buffer.
 */
import {
  CMSG_SPACE_INT,
  CMSGHDR_SIZE,
  MMSGHDR_SIZE,
  SOL_UDP,
  UDP_GRO,
  UDP_SEGMENT,
} from "../../ffi/libc.ts";

/** Bytes of sockaddr storage per message (sockaddr_in6 is 28). */
export const NAME_SLOT = 32;

/** The address of a buffer's first byte. */
export function ptrOf(b: Uint8Array): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

/** Stores a 64-bit pointer into two u32 words. */
export function setPtr(u32: Uint32Array, i: number, p: number): void {
  u32[i] = p % 0x1_0000_0000;
  u32[i + 1] = Math.floor(p / 0x1_0000_0000);
}

/** mmsghdr + sockaddr storage for `n` messages. */
class Headers {
  readonly hdrs: Uint8Array;
  readonly hdr32: Uint32Array;
  readonly names: Uint8Array;
  readonly names32: Uint32Array;
  readonly names16: Uint16Array;
  readonly namesPtr: number;
  constructor(n: number) {
    this.hdrs = new Uint8Array(n * MMSGHDR_SIZE);
    this.hdr32 = new Uint32Array(this.hdrs.buffer);
    this.names = new Uint8Array(n * NAME_SLOT);
    this.names32 = new Uint32Array(this.names.buffer);
    this.names16 = new Uint16Array(this.names.buffer);
    this.namesPtr = ptrOf(this.names);
    for (let i = 0; i < n; i++) setPtr(this.hdr32, i * 16, this.namesPtr + i * NAME_SLOT);
  }
}

/** Send-side vectors: up to `n` datagrams gathered into up to `n` messages. */
export class TxVec extends Headers {
  readonly iovs: Uint8Array;
  readonly iov32: Uint32Array;
  readonly iovPtr: number;
  readonly ctrl: Uint8Array;
  readonly ctrlPtr: number;
  /** Destination whose sockaddr sits in message slot m (to skip rewriting it). */
  readonly dst: (object | undefined)[] = [];
  /** Caller index of each message's first datagram, and how many it carries. */
  readonly first: Int32Array;
  readonly count: Int32Array;
  readonly #src: (ArrayBufferLike | undefined)[] = [];
  readonly #base: number[] = [];

  /** Vectors for batches of up to `n` datagrams. */
  constructor(n: number) {
    super(n);
    this.iovs = new Uint8Array(n * 16);
    this.iov32 = new Uint32Array(this.iovs.buffer);
    this.iovPtr = ptrOf(this.iovs);
    this.ctrl = new Uint8Array(n * CMSG_SPACE_INT);
    this.ctrlPtr = ptrOf(this.ctrl);
    this.first = new Int32Array(n);
    this.count = new Int32Array(n);
    const c32 = new Uint32Array(this.ctrl.buffer);
    for (let m = 0; m < n; m++) {
      // struct cmsghdr { cmsg_len = CMSG_LEN(2); SOL_UDP; UDP_SEGMENT } then the u16 size.
      c32[m * 6] = CMSGHDR_SIZE + 2;
      c32[m * 6 + 1] = 0;
      c32[m * 6 + 2] = SOL_UDP;
      c32[m * 6 + 3] = UDP_SEGMENT;
    }
  }

  /**
   * Points iovec k at b[offset .. offset+len]. The address of b's memory is
   * cached per iovec by its ArrayBuffer, not by the view: senders hand a new
   * view of the same arena for most datagrams, and asking for a view's
   * address each time (an FFI call) was 3% of the edge's CPU on downloads.
   */
  iov(k: number, b: Uint8Array, offset: number, len: number): void {
    const buf = b.buffer;
    if (this.#src[k] !== buf) {
      this.#src[k] = buf;
      this.#base[k] = ptrOf(new Uint8Array(buf)); // V8 never moves an ArrayBuffer's memory
    }
    setPtr(this.iov32, k * 4, this.#base[k] + b.byteOffset + offset);
    this.iov32[k * 4 + 2] = len;
    this.iov32[k * 4 + 3] = 0;
  }

  /** Makes message m gather `iovCount` iovecs from `firstIov`, segmented at `gso` bytes (0: none). */
  message(m: number, firstIov: number, iovCount: number, gso: number): void {
    const h = m * 16;
    setPtr(this.hdr32, h + 4, this.iovPtr + firstIov * 16); // msg_iov
    this.hdr32[h + 6] = iovCount; // msg_iovlen
    this.hdr32[h + 7] = 0;
    if (gso > 0) {
      setPtr(this.hdr32, h + 8, this.ctrlPtr + m * CMSG_SPACE_INT); // msg_control
      this.hdr32[h + 10] = CMSG_SPACE_INT; // msg_controllen
      this.ctrl[m * CMSG_SPACE_INT + CMSGHDR_SIZE] = gso & 0xff;
      this.ctrl[m * CMSG_SPACE_INT + CMSGHDR_SIZE + 1] = gso >>> 8;
    } else {
      this.hdr32[h + 8] = this.hdr32[h + 9] = 0;
      this.hdr32[h + 10] = 0;
    }
    this.hdr32[h + 11] = 0;
  }
}

/** Bytes of a datagram run that land in the caller's slot; the rest goes to staging. */
export const RX_ROOM_MAX = 4096;
/** Staging per message with GRO: the slot's share, then up to 64 KiB more. */
export const RX_CHUNK = RX_ROOM_MAX + 65536;
/** Control-message bytes per received message. */
const RX_CTRL = 32;

/** Receive-side vectors for `n` messages; with `gro` two iovecs and a control buffer each. */
export class RxVec extends Headers {
  readonly iovs: Uint8Array;
  readonly iov32: Uint32Array;
  readonly ctrl: Uint8Array;
  readonly ctrl32: Uint32Array;
  readonly gro: boolean;
  /** Bytes of message m that went to the caller's slot. */
  readonly room: Int32Array;
  #src: (Uint8Array | undefined)[] = [];
  #offset = -1;
  #staging: Uint8Array | null = null;

  /** Vectors for `n` messages; `staging` (n × RX_CHUNK) is required with `gro`. */
  constructor(n: number, gro: boolean, staging: Uint8Array | null) {
    super(n);
    this.gro = gro;
    const per = gro ? 2 : 1;
    this.iovs = new Uint8Array(n * per * 16);
    this.iov32 = new Uint32Array(this.iovs.buffer);
    this.ctrl = new Uint8Array(gro ? n * RX_CTRL : 8);
    this.ctrl32 = new Uint32Array(this.ctrl.buffer);
    this.room = new Int32Array(n);
    const iovP = ptrOf(this.iovs), ctrlP = ptrOf(this.ctrl);
    for (let i = 0; i < n; i++) {
      const h = i * 16;
      setPtr(this.hdr32, h + 4, iovP + i * per * 16); // msg_iov
      this.hdr32[h + 6] = per; // msg_iovlen
      if (gro) setPtr(this.hdr32, h + 8, ctrlP + i * RX_CTRL); // msg_control
    }
    if (gro) this.useStaging(staging!);
  }

  /** The staging area (n × RX_CHUNK) behind the second iovecs. */
  get staging(): Uint8Array | null {
    return this.#staging;
  }

  /** Points the second iovec of every message into `staging` (message m: chunk m after its prefix). */
  useStaging(staging: Uint8Array): void {
    this.#staging = staging;
    const base = ptrOf(staging);
    const n = this.room.length;
    for (let i = 0; i < n; i++) {
      setPtr(this.iov32, (i * 2 + 1) * 4, base + i * RX_CHUNK + RX_ROOM_MAX);
      this.iov32[(i * 2 + 1) * 4 + 2] = 65536;
      this.iov32[(i * 2 + 1) * 4 + 3] = 0;
    }
  }

  /** Readies message i to receive into b[offset ..] (and staging); resets name and control lengths. */
  prepare(i: number, b: Uint8Array, offset: number): void {
    if (offset !== this.#offset) {
      this.#src.length = 0;
      this.#offset = offset;
    }
    const per = this.gro ? 2 : 1;
    if (this.#src[i] !== b) {
      this.#src[i] = b;
      const room = this.gro ? Math.min(b.length - offset, RX_ROOM_MAX) : b.length - offset;
      setPtr(this.iov32, i * per * 4, ptrOf(b) + offset);
      this.iov32[i * per * 4 + 2] = room;
      this.iov32[i * per * 4 + 3] = 0;
      this.room[i] = room;
    }
    if (i >= this.filled) return; // the kernel left this one's lengths as we set them
    const h = i * 16;
    this.hdr32[h + 2] = NAME_SLOT; // msg_namelen, overwritten by the kernel
    if (this.gro) {
      this.hdr32[h + 10] = RX_CTRL; // msg_controllen, overwritten by the kernel
      this.hdr32[h + 11] = 0;
    }
  }

  /** Messages the last recvmmsg filled (their lengths need resetting); all of them at first. */
  filled = Infinity;

  /** Bytes received by message i (msg_len). */
  length(i: number): number {
    return this.hdr32[i * 16 + 14];
  }

  /** msg_flags of message i. */
  flags(i: number): number {
    return this.hdr32[i * 16 + 12];
  }

  /** The UDP_GRO segment size the kernel reported for message i, or 0. */
  segmentSize(i: number): number {
    if (!this.gro) return 0;
    const len = this.hdr32[i * 16 + 10];
    // One control message is all we enable: struct cmsghdr then an int.
    if (len < CMSGHDR_SIZE + 4) return 0;
    const c = i * (RX_CTRL / 4);
    if (this.ctrl32[c + 2] !== SOL_UDP || this.ctrl32[c + 3] !== UDP_GRO) return 0;
    return this.ctrl32[c + 4];
  }
}
