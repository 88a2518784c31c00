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
  TUNSETIFF,
} from "../../ffi/libc.ts";
import { InputError, SyscallError } from "../errors.ts";
import { lastErrno, libc, syscallError } from "../net/errno.ts";
import { Poller, POLLIN } from "../net/poller.ts";
import { noOffloads, type TunDevice, type TunOffloadRequest, type TunOffloads } from "./mod.ts";
import type { VnetStats } from "./vnet.ts";
import { negotiateOffloads, NOT_ASKED, refused, VnetFd } from "./linux_vnet.ts";

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
  #vnet: VnetFd | null = null;
  #offloads: TunOffloads = noOffloads(NOT_ASKED);

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
      if (vnet) {
        const batch = Math.max(1, Math.min(opts.writeBatch ?? 128, 512));
        dev.#vnet = new VnetFd(fd, name, negotiateOffloads(fd, name, ask), batch);
      } else if (wantVnet) dev.#offloads = noOffloads(vnetWhy);
      if (opts.mtu !== undefined) dev.setMtu(opts.mtu);
      else dev.#mtu = dev.#readMtu();
      if (opts.up ?? true) dev.setUp(true);
      return dev;
    } catch (e) {
      libc().close(fd);
      throw e;
    }
  }

  /** Which offloads are on, and why the others are off (runtime fallbacks included). */
  get offloads(): TunOffloads {
    return this.#vnet?.offloads ?? this.#offloads;
  }

  /** Staging the offload path would like in the caller's arena (0 without offloads). */
  get stagingBytes(): number {
    return this.#vnet?.stagingBytes ?? 0;
  }

  /** Moves the offload staging into `region` (an arena shared with the caller's slots). */
  useStaging(region: Uint8Array): void {
    this.#vnet?.useStaging(region);
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
    return { ...this.#stats, ...this.#vnet?.stats };
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
    if (this.#vnet) {
      const n = this.#vnet.read(bufs, sizes, offset);
      this.#stats.readPackets += n;
      return n;
    }
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

  /** Writes packets without blocking; refused packets are dropped and counted. */
  write(bufs: Uint8Array[], sizes: Int32Array, offset: number, count: number): number {
    const fd = this.#fd;
    if (fd < 0) throw this.#closedError("write to");
    if (this.#vnet) {
      const ok = this.#vnet.write(bufs, sizes, offset, count);
      this.#stats.writePackets += ok;
      this.#stats.writeDropped += count - ok;
      return ok;
    }
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
    this.#vnet?.reset();
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
