/**
 * The offload half of the Linux TUN device: asking the kernel for offloads on
 * an fd opened with IFF_VNET_HDR, and frame I/O on it — readv of each frame
 * into [the caller's slot from offset-10, staging], cut by VnetReader, and
 * writev of the frames VnetWriter plans (virtio header, the first packet,
 * then the payloads merged behind it, gathered from their slots).
 *
 * The fd belongs to LinuxTun, which checks it is open before each call.
 */
import {
  EAGAIN,
  EBADF,
  EINTR,
  EINVAL,
  EIO,
  IFF_VNET_HDR,
  IFREQ_DATA,
  IFREQ_SIZE,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_USO4,
  TUN_F_USO6,
  TUNGETIFF,
  TUNSETOFFLOAD,
  TUNSETVNETHDRSZ,
} from "../../ffi/libc.ts";
import { SyscallError } from "../errors.ts";
import { errnoName, lastErrno, libc, syscallError } from "../net/errno.ts";
import { VNET_HDR_SIZE } from "../packet/vnet.ts";
import type { OffloadState, TunOffloadRequest, TunOffloads } from "./mod.ts";
import {
  newVnetStats,
  VNET_STAGING_BYTES,
  VnetReader,
  type VnetStats,
  VnetWriter,
} from "./vnet.ts";

/** Why an offload is off because nobody asked for it. */
export const NOT_ASKED = "not requested";
const ON: OffloadState = Object.freeze({ on: true, why: "" });

function ptrOf(b: Uint8Array): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

function setPtr(u32: Uint32Array, i: number, p: number): void {
  u32[i] = p % 0x1_0000_0000;
  u32[i + 1] = Math.floor(p / 0x1_0000_0000);
}

/** "kernel refused <what>: <strerror> (<ERRNO>)", for the offload states. */
export function refused(what: string, errno: number): string {
  let text = `error ${errno}`;
  try {
    const p = libc().strerror(errno);
    if (p) text = Deno.UnsafePointerView.getCString(p).toLowerCase();
  } catch { /* keep the number */ }
  return `kernel refused ${what}: ${text} (${errnoName(errno)})`;
}

/** Sets TUNSETOFFLOAD flags; 0 on success, else errno. */
function setOffload(fd: number, flags: number): number {
  // The argument is passed by value: ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags).
  const r = libc().ioctl_val(fd, BigInt(TUNSETOFFLOAD), BigInt(flags));
  return r < 0 ? lastErrno() : 0;
}

/**
 * Asks for each requested offload on `fd` (attached to `name` with
 * IFF_VNET_HDR), dropping what the kernel refuses: USO first (EINVAL before
 * Linux 6.2), then TSO; merging on writes only needs the virtio header (and
 * USO for UDP). Returns what it got, with reasons.
 */
export function negotiateOffloads(fd: number, name: string, ask: TunOffloadRequest): TunOffloads {
  const hdrSize = new Int32Array([VNET_HDR_SIZE]);
  if (libc().ioctl(fd, BigInt(TUNSETVNETHDRSZ), new Uint8Array(hdrSize.buffer)) < 0) {
    // The default is already 10 bytes; only a kernel that cannot even say so is odd.
    throw syscallError("ioctl(TUNSETVNETHDRSZ)", `set the virtio header size on "${name}"`);
  }
  const got = new Uint8Array(IFREQ_SIZE);
  got.set(new TextEncoder().encode(name));
  if (libc().ioctl(fd, BigInt(TUNGETIFF), got) < 0) {
    throw syscallError("ioctl(TUNGETIFF)", `read the flags of TUN device "${name}"`);
  }
  if ((new DataView(got.buffer).getUint16(IFREQ_DATA, true) & IFF_VNET_HDR) === 0) {
    throw new SyscallError(
      "ioctl(TUNGETIFF)",
      EINVAL,
      `Cannot use offloads on TUN device "${name}": the kernel dropped IFF_VNET_HDR`,
    );
  }
  const tcp = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
  const udp = TUN_F_CSUM | TUN_F_USO4 | TUN_F_USO6;
  let tso: OffloadState = { on: false, why: NOT_ASKED };
  let uso: OffloadState = { on: false, why: NOT_ASKED };
  let flags = (ask.tso ? tcp : 0) | (ask.uso ? udp : 0);
  let e = flags ? setOffload(fd, flags) : 0;
  if (e !== 0 && ask.uso) {
    uso = { on: false, why: refused("TUN_F_USO4|TUN_F_USO6", e) };
    flags = ask.tso ? tcp : 0;
    e = flags ? setOffload(fd, flags) : 0;
  } else if (ask.uso) uso = ON;
  if (ask.tso) tso = e === 0 ? ON : { on: false, why: refused("TUN_F_TSO4|TUN_F_TSO6", e) };
  if (e !== 0) setOffload(fd, 0);
  const groTcp: OffloadState = ask.gro ? ON : { on: false, why: NOT_ASKED };
  const groUdp: OffloadState = !ask.gro
    ? { on: false, why: NOT_ASKED }
    : uso.on
    ? ON
    : { on: false, why: ask.uso ? uso.why : "needs USO (not requested)" };
  return { tso, uso, groTcp, groUdp };
}

/** Frame I/O on a TUN fd with virtio headers; see the file comment. */
export class VnetFd {
  readonly #fd: number;
  readonly #name: string;
  readonly #offloads: TunOffloads;
  readonly #reader: VnetReader;
  readonly #writer: VnetWriter;
  /** Counters of the offload path. */
  readonly stats: VnetStats = newVnetStats();
  // readv: two iovecs (the slot, then staging); slot pointers cached by identity.
  readonly #rIov = new Uint8Array(32);
  readonly #rIov32 = new Uint32Array(this.#rIov.buffer);
  readonly #rPtrSrc: (Uint8Array | undefined)[] = [];
  readonly #rPtr: number[] = [];
  #ovSrc: Uint8Array | null = null;
  // writev: header, packet, member payloads; pointers cached per buffer.
  readonly #wIov: Uint8Array;
  readonly #wIov32: Uint32Array;
  readonly #ptrs = new WeakMap<Uint8Array, number>();
  #hdrSrc: Uint8Array | null = null;
  #hdrPtr = 0;
  // Packets that pass the size check, handed to the writer.
  readonly #okBufs: Uint8Array[];
  readonly #okSizes: Int32Array;

  /** Frame I/O on `fd` with the offloads negotiateOffloads() got; merges up to `writeBatch` packets a frame. */
  constructor(fd: number, name: string, offloads: TunOffloads, writeBatch: number) {
    this.#fd = fd;
    this.#name = name;
    this.#offloads = offloads;
    this.#reader = new VnetReader(this.stats);
    this.#writer = new VnetWriter(
      writeBatch,
      (hdr, hdrOff, bufs, sizes, offset, i, next, hl) =>
        this.#writeFrame(hdr, hdrOff, bufs, sizes, offset, i, next, hl),
      this.stats,
      offloads.groTcp.on,
      offloads.groUdp.on,
    );
    this.#wIov = new Uint8Array((writeBatch + 2) * 16);
    this.#wIov32 = new Uint32Array(this.#wIov.buffer);
    this.#okBufs = new Array(writeBatch);
    this.#okSizes = new Int32Array(writeBatch);
  }

  /** Which offloads are on, and why the others are off (a refused merged write included). */
  get offloads(): TunOffloads {
    const w = this.#writer;
    if (w.refusedErrno === 0) return this.#offloads;
    const why = refused("a merged write", w.refusedErrno);
    const o = this.#offloads;
    return {
      ...o,
      groTcp: o.groTcp.on && !w.tcp ? { on: false, why } : o.groTcp,
      groUdp: o.groUdp.on && !w.udp ? { on: false, why } : o.groUdp,
    };
  }

  /** Staging bytes the reader would like in the caller's arena. */
  get stagingBytes(): number {
    return VNET_STAGING_BYTES;
  }

  /** Moves the reader's staging into `region` (an arena shared with the caller's slots). */
  useStaging(region: Uint8Array): void {
    this.#reader.useStaging(region);
  }

  /** Forgets a pending super-packet (the device closed). */
  reset(): void {
    this.#reader.reset();
    this.#rPtrSrc.length = 0;
  }

  /** Reads frames into the caller's slots until they are full or nothing is ready; see TunDevice.read. */
  read(bufs: Uint8Array[], sizes: Int32Array, offset: number): number {
    const reader = this.#reader;
    const max = Math.min(bufs.length, sizes.length);
    let n = reader.drain(bufs, sizes, offset, 0, max);
    const c = libc();
    const iov = this.#rIov32;
    const ov = reader.overflow;
    if (this.#ovSrc !== ov) {
      this.#ovSrc = ov;
      setPtr(iov, 4, ptrOf(ov));
      iov[6] = ov.length;
      iov[7] = 0;
    }
    while (n < max && !reader.pending) {
      const b = bufs[n];
      const room = reader.room(b, offset);
      if (this.#rPtrSrc[n] !== b) {
        this.#rPtrSrc[n] = b;
        this.#rPtr[n] = ptrOf(b);
      }
      setPtr(iov, 0, this.#rPtr[n] + offset - (room > 0 ? VNET_HDR_SIZE : 0));
      iov[2] = room;
      iov[3] = 0;
      const r = c.readv(this.#fd, this.#rIov, 2);
      if (r < 0) {
        const e = lastErrno();
        if (e === EAGAIN) break;
        if (e === EINTR) continue;
        throw syscallError("readv", `read from TUN device "${this.#name}"`, e);
      }
      n += reader.accept(bufs, sizes, offset, n, max, r, room);
    }
    return n;
  }

  /** Writes the packets (bad sizes dropped), merged where the writer can; returns how many the kernel took. */
  write(bufs: Uint8Array[], sizes: Int32Array, offset: number, count: number): number {
    const w = this.#writer;
    const okB = this.#okBufs, okS = this.#okSizes;
    const cap = w.capacity;
    let ok = 0, n = 0;
    for (let i = 0; i < count; i++) {
      const b = bufs[i], size = sizes[i];
      if (size <= 0 || size > b.length - offset || size > 0xffff) continue; // a drop
      okB[n] = b;
      okS[n++] = size;
      if (n === cap) {
        ok += w.write(okB, okS, offset, n);
        n = 0;
      }
    }
    if (n > 0) ok += w.write(okB, okS, offset, n);
    return ok;
  }

  /** Sends one frame (see FrameSink) with writev; 0 when the kernel took it all, else errno. */
  #writeFrame(
    hdr: Uint8Array,
    hdrOff: number,
    bufs: Uint8Array[],
    sizes: Int32Array,
    offset: number,
    i: number,
    next: Int32Array,
    hl: number,
  ): number {
    const iov = this.#wIov32;
    if (this.#hdrSrc !== hdr) {
      this.#hdrSrc = hdr;
      this.#hdrPtr = ptrOf(hdr);
    }
    setPtr(iov, 0, this.#hdrPtr + hdrOff);
    iov[2] = VNET_HDR_SIZE;
    iov[3] = 0;
    setPtr(iov, 4, this.#ptr(bufs[i]) + offset);
    iov[6] = sizes[i];
    iov[7] = 0;
    let cnt = 2;
    let total = VNET_HDR_SIZE + sizes[i];
    for (let m = next[i]; m >= 0; m = next[m]) {
      const len = sizes[m] - hl;
      setPtr(iov, cnt * 4, this.#ptr(bufs[m]) + offset + hl);
      iov[cnt * 4 + 2] = len;
      iov[cnt * 4 + 3] = 0;
      cnt++;
      total += len;
    }
    let r = libc().writev(this.#fd, this.#wIov, cnt);
    if (r < 0) {
      let e = lastErrno();
      if (e === EINTR) {
        r = libc().writev(this.#fd, this.#wIov, cnt);
        e = r < 0 ? lastErrno() : 0;
      }
      if (r < 0) {
        if (e === EBADF) throw syscallError("writev", `write to TUN device "${this.#name}"`, e);
        return e;
      }
    }
    return r === total ? 0 : EIO;
  }

  #ptr(b: Uint8Array): number {
    let p = this.#ptrs.get(b);
    if (p === undefined) {
      p = ptrOf(b);
      this.#ptrs.set(b, p);
    }
    return p;
  }
}
