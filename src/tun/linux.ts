/**
 * Linux TUN device over /dev/net/tun through ffi/libc.
 *
 * Layer 3, no packet-information header (IFF_NO_PI), one queue, O_NONBLOCK.
 * Reads and writes are synchronous FFI calls (about 1 µs each, nearly all of
 * it the syscall); the pump waits for readiness on `fd` with its shared
 * Poller, or calls `readable()` which parks a private one. The subarray view
 * at `offset` of each slot is cached so the steady state allocates nothing.
 *
 * Offloads (asked for with `offload`): the device is opened with
 * IFF_VNET_HDR, so every frame starts with a virtio_net_hdr, and
 * TUNSETOFFLOAD lets the kernel hand us TCP (and, from Linux 6.2, UDP)
 * super-packets of up to 64 KiB with partial checksums. One readv then moves
 * up to 64 KiB, which VnetReader cuts into the caller's slots; on writes
 * VnetWriter merges consecutive segments into super-packets sent with one
 * writev each. Each offload falls back on its own when the kernel refuses it
 * (`offloads` says which and why); without any, frames are plain packets.
 */
import {
  AF_INET,
  EAGAIN,
  EBADF,
  EINTR,
  EINVAL,
  EIO,
  IFF_NO_PI,
  IFF_TUN,
  IFF_UP,
  IFF_VNET_HDR,
  IFNAMSIZ_MAX,
  IFREQ_DATA,
  IFREQ_SIZE,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  SIOCGIFFLAGS,
  SIOCGIFMTU,
  SIOCSIFFLAGS,
  SIOCSIFMTU,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_USO4,
  TUN_F_USO6,
  TUNGETIFF,
  TUNSETIFF,
  TUNSETOFFLOAD,
  TUNSETVNETHDRSZ,
} from "../../ffi/libc.ts";
import { InputError, SyscallError } from "../errors.ts";
import { errnoName, lastErrno, libc, syscallError } from "../net/errno.ts";
import { Poller, POLLIN } from "../net/poller.ts";
import { VNET_HDR_SIZE } from "../packet/vnet.ts";
import {
  noOffloads,
  type OffloadState,
  type TunDevice,
  type TunOffloadRequest,
  type TunOffloads,
} from "./mod.ts";
import {
  newVnetStats,
  VNET_STAGING_BYTES,
  VnetReader,
  type VnetStats,
  VnetWriter,
} from "./vnet.ts";

/** Options for opening a Linux TUN device. */
export interface LinuxTunOptions {
  /** Requested name ("pc0", or a pattern like "pc%d"); the kernel picks one when omitted. */
  name?: string;
  /** MTU to set (576–65535); the current one is kept when omitted. */
  mtu?: number;
  /** Bring the interface up after opening (default true). */
  up?: boolean;
  /** Kernel offloads to ask for (default none). */
  offload?: TunOffloadRequest;
  /** Packets per write() call merged at once when coalescing (default 128). */
  writeBatch?: number;
}

/** Counters a TUN device keeps for diagnostics. */
export interface TunStats extends Partial<VnetStats> {
  readPackets: number;
  writePackets: number;
  writeDropped: number;
}

/** Why an offload is off because nobody asked for it. */
const NOT_ASKED = "not requested";

function ptrOf(b: Uint8Array): number {
  return Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

function setPtr(u32: Uint32Array, i: number, p: number): void {
  u32[i] = p % 0x1_0000_0000;
  u32[i + 1] = Math.floor(p / 0x1_0000_0000);
}

/** Sets TUNSETOFFLOAD flags; 0 on success, else errno. */
function setOffload(fd: number, flags: number): number {
  // The argument is passed by value: ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags).
  const r = libc().ioctl_val(fd, BigInt(TUNSETOFFLOAD), BigInt(flags));
  return r < 0 ? lastErrno() : 0;
}

function refused(what: string, errno: number): string {
  let text = `error ${errno}`;
  try {
    const p = libc().strerror(errno);
    if (p) text = Deno.UnsafePointerView.getCString(p).toLowerCase();
  } catch { /* keep the number */ }
  return `kernel refused ${what}: ${text} (${errnoName(errno)})`;
}

/** Offload state of a feature that is on. */
const ON: OffloadState = Object.freeze({ on: true, why: "" });

const NAME_RE = /^[A-Za-z0-9_.%-]{1,15}$/;

/** Throws an InputError unless `name` is a usable interface name. */
export function validateIfName(name: string): void {
  if (!NAME_RE.test(name) || name === "." || name === ".." || name.length > IFNAMSIZ_MAX) {
    throw new InputError(
      "bad_interface_name",
      `Cannot use interface name "${name}": expected 1-15 letters, digits, "_", "-", "." or "%d"`,
    );
  }
}

function ifreq(name: string): Uint8Array {
  const req = new Uint8Array(IFREQ_SIZE);
  req.set(new TextEncoder().encode(name));
  return req;
}

/** Runs an interface ioctl through a throwaway AF_INET datagram socket. */
function ifIoctl(req: Uint8Array, request: number, call: string, action: string): void {
  const s = libc().socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) throw syscallError("socket", action);
  try {
    if (libc().ioctl(s, BigInt(request), req) < 0) throw syscallError(call, action);
  } finally {
    libc().close(s);
  }
}

/** A TUN interface opened on Linux. */
export class LinuxTun implements TunDevice {
  #fd: number;
  #name: string;
  #mtu: number;
  #poller: Poller | null = null;
  #rSrc: (Uint8Array | undefined)[] = [];
  #rView: Uint8Array[] = [];
  #rLen: bigint[] = [];
  #rOff = -1;
  #wSrc: (Uint8Array | undefined)[] = [];
  #wView: Uint8Array[] = [];
  #wOff = -1;
  #stats: TunStats = { readPackets: 0, writePackets: 0, writeDropped: 0 };
  // Offload path (IFF_VNET_HDR): null when the device reads plain packets.
  #reader: VnetReader | null = null;
  #writer: VnetWriter | null = null;
  #vstats: VnetStats | null = null;
  #offloads: TunOffloads = noOffloads(NOT_ASKED);
  #writeBatch = 128;
  // readv: two iovecs (the slot, then staging); slot pointers cached by identity.
  readonly #rIov = new Uint8Array(32);
  readonly #rIov32 = new Uint32Array(this.#rIov.buffer);
  #rPtrSrc: (Uint8Array | undefined)[] = [];
  #rPtr: number[] = [];
  #ovSrc: Uint8Array | null = null;
  // writev: header, packet, member payloads; pointers cached per buffer.
  #wIov = new Uint8Array(0);
  #wIov32 = new Uint32Array(0);
  readonly #ptrs = new WeakMap<Uint8Array, number>();
  #hdrSrc: Uint8Array | null = null;
  #hdrPtr = 0;
  // Packets that pass the size check, handed to the writer.
  #okBufs: Uint8Array[] = [];
  #okSizes = new Int32Array(0);

  private constructor(fd: number, name: string, mtu: number) {
    this.#fd = fd;
    this.#name = name;
    this.#mtu = mtu;
  }

  /** Opens /dev/net/tun, attaches it to `name`, sets the MTU and brings it up. */
  static open(opts: LinuxTunOptions = {}): LinuxTun {
    const want = opts.name ?? "";
    if (want !== "") validateIfName(want);
    if (
      opts.mtu !== undefined && (!Number.isInteger(opts.mtu) || opts.mtu < 576 || opts.mtu > 65535)
    ) {
      throw new InputError(
        "bad_mtu",
        `Cannot set MTU ${opts.mtu} on TUN device "${want}": expected 576-65535`,
      );
    }
    const label = want || "(kernel-chosen)";
    const ask = opts.offload ?? {};
    const wantVnet = !!(ask.tso || ask.uso || ask.gro);
    let fd = -1;
    let req = ifreq(want);
    let vnetWhy = NOT_ASKED;
    let vnet = false;
    for (const withVnet of wantVnet ? [true, false] : [false]) {
      fd = openCloneDevice(label);
      req = ifreq(want);
      const flags = IFF_TUN | IFF_NO_PI | (withVnet ? IFF_VNET_HDR : 0);
      new DataView(req.buffer).setInt16(IFREQ_DATA, flags, true);
      if (libc().ioctl(fd, BigInt(TUNSETIFF), req) >= 0) {
        vnet = withVnet;
        break;
      }
      const e = lastErrno();
      libc().close(fd);
      fd = -1;
      // An old or unusual kernel may refuse the virtio header: try without it.
      if (withVnet && e === EINVAL) {
        vnetWhy = refused("IFF_VNET_HDR", e);
        continue;
      }
      throw syscallError("ioctl(TUNSETIFF)", `open TUN device "${label}"`, e);
    }
    try {
      const end = req.indexOf(0);
      const name = new TextDecoder().decode(req.subarray(0, end < 0 ? 16 : end));
      const dev = new LinuxTun(fd, name, 1500);
      dev.#writeBatch = Math.max(1, Math.min(opts.writeBatch ?? 128, 512));
      if (vnet) dev.#negotiate(ask);
      else if (wantVnet) dev.#offloads = noOffloads(vnetWhy);
      if (opts.mtu !== undefined) dev.setMtu(opts.mtu);
      else dev.#mtu = dev.#readMtu();
      if (opts.up ?? true) dev.setUp(true);
      return dev;
    } catch (e) {
      libc().close(fd);
      throw e;
    }
  }

  /**
   * Asks for each requested offload, dropping what the kernel refuses: USO
   * first goes (EINVAL before Linux 6.2), then TSO; merging on writes only
   * needs the virtio header (and USO for UDP).
   */
  #negotiate(ask: TunOffloadRequest): void {
    const fd = this.#fd;
    const hdrSize = new Int32Array([VNET_HDR_SIZE]);
    if (libc().ioctl(fd, BigInt(TUNSETVNETHDRSZ), new Uint8Array(hdrSize.buffer)) < 0) {
      // The default is already 10 bytes; only a kernel that cannot even say so is odd.
      throw syscallError("ioctl(TUNSETVNETHDRSZ)", `set the virtio header size on "${this.#name}"`);
    }
    const got = ifreq(this.#name);
    if (libc().ioctl(fd, BigInt(TUNGETIFF), got) < 0) {
      throw syscallError("ioctl(TUNGETIFF)", `read the flags of TUN device "${this.#name}"`);
    }
    if ((new DataView(got.buffer).getUint16(IFREQ_DATA, true) & IFF_VNET_HDR) === 0) {
      throw new SyscallError(
        "ioctl(TUNGETIFF)",
        EINVAL,
        `Cannot use offloads on TUN device "${this.#name}": the kernel dropped IFF_VNET_HDR`,
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
    this.#offloads = { tso, uso, groTcp, groUdp };
    const vs = newVnetStats();
    this.#vstats = vs;
    this.#reader = new VnetReader(vs);
    const sink = (
      hdr: Uint8Array,
      hdrOff: number,
      bufs: Uint8Array[],
      sizes: Int32Array,
      offset: number,
      i: number,
      next: Int32Array,
      hl: number,
    ) => this.#writeFrame(hdr, hdrOff, bufs, sizes, offset, i, next, hl);
    this.#writer = new VnetWriter(this.#writeBatch, sink, vs, groTcp.on, groUdp.on);
    this.#wIov = new Uint8Array((this.#writeBatch + 2) * 16);
    this.#wIov32 = new Uint32Array(this.#wIov.buffer);
    this.#okBufs = new Array(this.#writeBatch);
    this.#okSizes = new Int32Array(this.#writeBatch);
  }

  /** Which offloads are on, and why the others are off (runtime fallbacks included). */
  get offloads(): TunOffloads {
    const w = this.#writer;
    if (w && w.refusedErrno !== 0) {
      const why = refused("a merged write", w.refusedErrno);
      const o = this.#offloads;
      return {
        ...o,
        groTcp: o.groTcp.on && !w.tcp ? { on: false, why } : o.groTcp,
        groUdp: o.groUdp.on && !w.udp ? { on: false, why } : o.groUdp,
      };
    }
    return this.#offloads;
  }

  /** Staging the offload path would like in the caller's arena. */
  get stagingBytes(): number {
    return this.#reader ? VNET_STAGING_BYTES : 0;
  }

  /** Moves the offload staging into `region` (an arena shared with the caller's slots). */
  useStaging(region: Uint8Array): void {
    this.#reader?.useStaging(region);
  }

  /** Interface name as the kernel knows it. */
  get name(): string {
    return this.#name;
  }

  /** Current MTU in bytes. */
  get mtu(): number {
    return this.#mtu;
  }

  /** The non-blocking fd, for a shared Poller; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** A copy of the packet counters (with the offload path's, when it is on). */
  get stats(): TunStats {
    return { ...this.#stats, ...this.#vstats };
  }

  /** Sets the interface MTU (SIOCSIFMTU). */
  setMtu(mtu: number): void {
    const req = ifreq(this.#name);
    new DataView(req.buffer).setInt32(IFREQ_DATA, mtu, true);
    ifIoctl(req, SIOCSIFMTU, "ioctl(SIOCSIFMTU)", `set MTU ${mtu} on TUN device "${this.#name}"`);
    this.#mtu = mtu;
  }

  /** Brings the interface up or down (SIOCSIFFLAGS). */
  setUp(up: boolean): void {
    const action = `bring TUN device "${this.#name}" ${up ? "up" : "down"}`;
    const req = ifreq(this.#name);
    ifIoctl(req, SIOCGIFFLAGS, "ioctl(SIOCGIFFLAGS)", action);
    const dv = new DataView(req.buffer);
    const flags = dv.getUint16(IFREQ_DATA, true);
    dv.setUint16(IFREQ_DATA, up ? flags | IFF_UP : flags & ~IFF_UP, true);
    ifIoctl(req, SIOCSIFFLAGS, "ioctl(SIOCSIFFLAGS)", action);
  }

  #readMtu(): number {
    const req = ifreq(this.#name);
    ifIoctl(req, SIOCGIFMTU, "ioctl(SIOCGIFMTU)", `read MTU of TUN device "${this.#name}"`);
    return new DataView(req.buffer).getInt32(IFREQ_DATA, true);
  }

  #closedError(what: string): SyscallError {
    return new SyscallError(
      what,
      EBADF,
      `Cannot ${what} TUN device "${this.#name}": the device is closed`,
    );
  }

  /** Reads up to bufs.length packets without blocking; see TunDevice.read. */
  read(bufs: Uint8Array[], sizes: Int32Array, offset: number): number {
    const fd = this.#fd;
    if (fd < 0) throw this.#closedError("read from");
    if (this.#reader) return this.#readFrames(fd, this.#reader, bufs, sizes, offset);
    if (offset !== this.#rOff) {
      this.#rSrc.length = 0;
      this.#rOff = offset;
    }
    const max = Math.min(bufs.length, sizes.length);
    const c = libc();
    let n = 0;
    while (n < max) {
      const b = bufs[n];
      let view = this.#rView[n];
      let len = this.#rLen[n];
      if (this.#rSrc[n] !== b) {
        view = b.subarray(offset);
        len = BigInt(view.length);
        this.#rSrc[n] = b;
        this.#rView[n] = view;
        this.#rLen[n] = len;
      }
      const r = c.read(fd, view, len);
      if (r < 0) {
        const e = lastErrno();
        if (e === EAGAIN) break;
        if (e === EINTR) continue;
        throw syscallError("read", `read from TUN device "${this.#name}"`, e);
      }
      sizes[n++] = r;
    }
    this.#stats.readPackets += n;
    return n;
  }

  // Offload path: readv each frame into [slot from offset-10, staging]; the reader cuts it.
  #readFrames(
    fd: number,
    reader: VnetReader,
    bufs: Uint8Array[],
    sizes: Int32Array,
    offset: number,
  ): number {
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
      const r = c.readv(fd, this.#rIov, 2);
      if (r < 0) {
        const e = lastErrno();
        if (e === EAGAIN) break;
        if (e === EINTR) continue;
        throw syscallError("readv", `read from TUN device "${this.#name}"`, e);
      }
      n += reader.accept(bufs, sizes, offset, n, max, r, room);
    }
    this.#stats.readPackets += n;
    return n;
  }

  /** Writes packets without blocking; refused packets are dropped and counted. */
  write(bufs: Uint8Array[], sizes: Int32Array, offset: number, count: number): number {
    const fd = this.#fd;
    if (fd < 0) throw this.#closedError("write to");
    if (this.#writer) return this.#writeFrames(this.#writer, bufs, sizes, offset, count);
    if (offset !== this.#wOff) {
      this.#wSrc.length = 0;
      this.#wOff = offset;
    }
    const c = libc();
    let ok = 0;
    for (let i = 0; i < count; i++) {
      const b = bufs[i];
      let view = this.#wView[i];
      if (this.#wSrc[i] !== b) {
        view = b.subarray(offset);
        this.#wSrc[i] = b;
        this.#wView[i] = view;
      }
      const size = sizes[i];
      if (size <= 0 || size > view.length) {
        this.#stats.writeDropped++;
        continue;
      }
      let r = c.write(fd, view, BigInt(size));
      if (r < 0) {
        const e = lastErrno();
        if (e === EINTR) r = c.write(fd, view, BigInt(size));
        else if (e === EBADF) throw syscallError("write", `write to TUN device "${this.#name}"`, e);
      }
      if (r === size) ok++;
      else this.#stats.writeDropped++;
    }
    this.#stats.writePackets += ok;
    return ok;
  }

  // Offload path: drop bad sizes up front, then let the writer merge and send in chunks.
  #writeFrames(
    w: VnetWriter,
    bufs: Uint8Array[],
    sizes: Int32Array,
    offset: number,
    count: number,
  ): number {
    const okB = this.#okBufs, okS = this.#okSizes;
    const cap = w.capacity;
    let ok = 0, n = 0;
    for (let i = 0; i < count; i++) {
      const b = bufs[i], size = sizes[i];
      if (size <= 0 || size > b.length - offset || size > 0xffff) continue; // counted below
      okB[n] = b;
      okS[n++] = size;
      if (n === cap) {
        ok += w.write(okB, okS, offset, n);
        n = 0;
      }
    }
    if (n > 0) ok += w.write(okB, okS, offset, n);
    this.#stats.writePackets += ok;
    this.#stats.writeDropped += count - ok;
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

  /** Resolves when the device may have packets, after `timeoutMs`, or on close. */
  async readable(timeoutMs: number): Promise<void> {
    if (this.#fd < 0) throw this.#closedError("wait on");
    if (!this.#poller) {
      this.#poller = new Poller();
      this.#poller.add(this.#fd, POLLIN);
    }
    await this.#poller.wait(timeoutMs);
  }

  /** Closes the device (the interface disappears); idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    this.#poller?.close();
    this.#poller = null;
    libc().close(this.#fd);
    this.#fd = -1;
    this.#rSrc.length = 0;
    this.#wSrc.length = 0;
    this.#rPtrSrc.length = 0;
    this.#reader?.reset();
  }
}

function openCloneDevice(label: string): number {
  const path = new TextEncoder().encode("/dev/net/tun\0");
  const fd = libc().open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) throw syscallError("open", `open TUN device "${label}"`);
  return fd;
}

/** Opens a Linux TUN device; see LinuxTun.open. */
export function openLinuxTun(opts: LinuxTunOptions = {}): LinuxTun {
  return LinuxTun.open(opts);
}
