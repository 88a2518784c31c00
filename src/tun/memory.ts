/**
 * In-memory TunDevice for tests: `inject()` plays the OS sending a packet
 * into the tunnel, `take()` collects what the data plane wrote back.
 *
 * It keeps the kernel's observable rules so pumps tested against it behave
 * the same on a real device: reads never block and truncate packets longer
 * than the slot, writes refuse empty, oversized or non-IP packets (counted as
 * drops), the inbound queue is bounded, and use after close throws.
 *
 * With `offload` it plays a kernel that took IFF_VNET_HDR and TUNSETOFFLOAD:
 * `injectFrame()` queues a virtio header + packet (a super-packet, say),
 * reads cut it with the same VnetReader as the Linux device, writes merge
 * with the same VnetWriter, and `takeFrames()` shows the frames as written.
 * `refuse` plays a kernel that says no (USO before Linux 6.2, a merged write
 * it cannot take), to test the fallbacks.
 */
import { SyscallError } from "../errors.ts";
import { VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_HDR_SIZE } from "../packet/vnet.ts";
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

/** Options for a MemoryTun. */
export interface MemoryTunOptions {
  name?: string;
  mtu?: number;
  /** Most packets queued for reading before inject() drops (default 1024). */
  capacity?: number;
  /** Play a kernel with these offloads (default none). */
  offload?: TunOffloadRequest;
  /** Play a kernel that refuses USO, or refuses every merged write (EINVAL). */
  refuse?: { uso?: boolean; mergedWrites?: boolean };
}

const EINVAL = 22;
const ON: OffloadState = { on: true, why: "" };

/** Counters, as on the real device plus the fake's own drops. */
export interface MemoryTunStats {
  readPackets: number;
  writePackets: number;
  writeDropped: number;
  injectDropped: number;
  truncated: number;
}

/** A fake TUN device backed by queues in memory. */
export class MemoryTun implements TunDevice {
  /** Interface name the fake pretends to have. */
  readonly name: string;
  /** MTU the fake reports. */
  readonly mtu: number;
  /** Always -1: there is nothing to poll; use readable(). */
  readonly fd = -1;
  readonly #capacity: number;
  #inbound: Uint8Array[] = [];
  #head = 0;
  #written: Uint8Array[] = [];
  #frames: Uint8Array[] = [];
  #waiters: (() => void)[] = [];
  #closed = false;
  readonly #reader: VnetReader | null = null;
  readonly #writer: VnetWriter | null = null;
  readonly #vstats: VnetStats | null = null;
  readonly #offloads: TunOffloads;
  readonly #refuseMerged: boolean;
  #stats: MemoryTunStats = {
    readPackets: 0,
    writePackets: 0,
    writeDropped: 0,
    injectDropped: 0,
    truncated: 0,
  };

  /** Creates a fake device named `name` (default "mem0"). */
  constructor(opts: MemoryTunOptions = {}) {
    this.name = opts.name ?? "mem0";
    this.mtu = opts.mtu ?? 1420;
    this.#capacity = opts.capacity ?? 1024;
    const ask = opts.offload ?? {};
    this.#refuseMerged = opts.refuse?.mergedWrites ?? false;
    if (!(ask.tso || ask.uso || ask.gro)) {
      this.#offloads = noOffloads("not requested");
      return;
    }
    const off = (w: boolean) => ({
      on: false,
      why: w ? "refused by the fake kernel" : "not requested",
    });
    const uso = ask.uso && !opts.refuse?.uso ? ON : off(!!ask.uso);
    this.#offloads = {
      tso: ask.tso ? ON : off(false),
      uso,
      groTcp: ask.gro ? ON : off(false),
      groUdp: ask.gro && uso.on ? ON : off(!!ask.gro),
    };
    this.#vstats = newVnetStats();
    this.#reader = new VnetReader(this.#vstats);
    this.#writer = new VnetWriter(
      128,
      (hdr, hdrOff, bufs, sizes, offset, i, next, hl) =>
        this.#sink(hdr, hdrOff, bufs, sizes, offset, i, next, hl),
      this.#vstats,
      this.#offloads.groTcp.on,
      this.#offloads.groUdp.on,
    );
  }

  /** Which offloads the fake kernel granted (and the writer's runtime fallback). */
  get offloads(): TunOffloads {
    const w = this.#writer;
    if (!w || w.refusedErrno === 0) return this.#offloads;
    const why = "refused a merged write (EINVAL)";
    return {
      ...this.#offloads,
      groTcp: w.tcp ? this.#offloads.groTcp : { on: false, why },
      groUdp: w.udp ? this.#offloads.groUdp : { on: false, why },
    };
  }

  /** Staging the offload path would like in the caller's arena. */
  get stagingBytes(): number {
    return this.#reader ? VNET_STAGING_BYTES : 0;
  }

  /** Moves the offload staging into `region`. */
  useStaging(region: Uint8Array): void {
    this.#reader?.useStaging(region);
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Packets waiting to be read. */
  get pending(): number {
    return this.#inbound.length - this.#head;
  }

  /** A copy of the counters (with the offload path's, when it is on). */
  get stats(): MemoryTunStats & Partial<VnetStats> {
    return { ...this.#stats, ...this.#vstats };
  }

  /** Queues a copy of `packet` as if the OS routed it into the tunnel; false when dropped (queue full). */
  inject(packet: Uint8Array): boolean {
    if (!this.#reader) return this.#queue(packet.slice());
    const frame = new Uint8Array(VNET_HDR_SIZE + packet.length);
    frame.set(packet, VNET_HDR_SIZE);
    return this.#queue(frame);
  }

  /** With offloads: queues a frame (virtio header + packet, e.g. a super-packet) as the kernel would hand it. */
  injectFrame(frame: Uint8Array): boolean {
    if (!this.#reader) {
      throw new Error(`Cannot inject a virtio frame into "${this.name}": offloads are off`);
    }
    return this.#queue(frame.slice());
  }

  #queue(p: Uint8Array): boolean {
    if (this.#closed) throw this.#closedError("inject into");
    if (this.pending >= this.#capacity) {
      this.#stats.injectDropped++;
      return false;
    }
    this.#inbound.push(p);
    this.#notify();
    return true;
  }

  /** Returns (and forgets) the packets the data plane wrote, oldest first (merged ones whole). */
  take(): Uint8Array[] {
    const out = this.#written;
    this.#written = [];
    this.#frames = [];
    return out;
  }

  /** With offloads: returns (and forgets) the frames as written, virtio header first. */
  takeFrames(): Uint8Array[] {
    const out = this.#frames;
    this.#frames = [];
    this.#written = [];
    return out;
  }

  /** Reads up to bufs.length queued packets; see TunDevice.read. */
  read(bufs: Uint8Array[], sizes: Int32Array, offset: number): number {
    if (this.#closed) throw this.#closedError("read from");
    if (this.#reader) return this.#readFrames(this.#reader, bufs, sizes, offset);
    const max = Math.min(bufs.length, sizes.length);
    let n = 0;
    while (n < max && this.#head < this.#inbound.length) {
      const p = this.#inbound[this.#head++];
      const room = bufs[n].length - offset;
      const len = Math.min(p.length, room);
      if (len < p.length) this.#stats.truncated++;
      bufs[n].set(len < p.length ? p.subarray(0, len) : p, offset);
      sizes[n++] = len;
    }
    if (this.#head === this.#inbound.length) {
      this.#inbound = [];
      this.#head = 0;
    }
    this.#stats.readPackets += n;
    return n;
  }

  // Plays readv into [slot from offset-10, staging] and lets the shared reader cut the frame.
  #readFrames(reader: VnetReader, bufs: Uint8Array[], sizes: Int32Array, offset: number): number {
    const max = Math.min(bufs.length, sizes.length);
    let n = reader.drain(bufs, sizes, offset, 0, max);
    while (n < max && !reader.pending && this.#head < this.#inbound.length) {
      const f = this.#inbound[this.#head++];
      const room = reader.room(bufs[n], offset);
      const inSlot = Math.min(room, f.length);
      if (inSlot > 0) bufs[n].set(f.subarray(0, inSlot), offset - VNET_HDR_SIZE);
      const rest = Math.min(f.length - inSlot, reader.overflow.length);
      if (rest > 0) reader.overflow.set(f.subarray(inSlot, inSlot + rest));
      n += reader.accept(bufs, sizes, offset, n, max, inSlot + rest, room);
    }
    if (this.#head === this.#inbound.length) {
      this.#inbound = [];
      this.#head = 0;
    }
    this.#stats.readPackets += n;
    return n;
  }

  // Collects one frame as a kernel would take it (see FrameSink).
  #sink(
    hdr: Uint8Array,
    hdrOff: number,
    bufs: Uint8Array[],
    sizes: Int32Array,
    offset: number,
    i: number,
    next: Int32Array,
    hl: number,
  ): number {
    const merged = hdr[hdrOff + 1] !== VNET_GSO_NONE;
    if (merged && (this.#refuseMerged || !(hdr[hdrOff] & VNET_F_NEEDS_CSUM))) return EINVAL;
    const b = bufs[i];
    const version = b[offset] >> 4;
    if (version !== 4 && version !== 6) return EINVAL;
    let total = sizes[i];
    for (let m = next[i]; m >= 0; m = next[m]) total += sizes[m] - hl;
    const frame = new Uint8Array(VNET_HDR_SIZE + total);
    frame.set(hdr.subarray(hdrOff, hdrOff + VNET_HDR_SIZE));
    frame.set(b.subarray(offset, offset + sizes[i]), VNET_HDR_SIZE);
    let at = VNET_HDR_SIZE + sizes[i];
    for (let m = next[i]; m >= 0; m = next[m]) {
      frame.set(bufs[m].subarray(offset + hl, offset + sizes[m]), at);
      at += sizes[m] - hl;
    }
    this.#frames.push(frame);
    this.#written.push(frame.subarray(VNET_HDR_SIZE));
    return 0;
  }

  /** Collects copies of the written packets; refuses what a kernel would. */
  write(bufs: Uint8Array[], sizes: Int32Array, offset: number, count: number): number {
    if (this.#closed) throw this.#closedError("write to");
    if (this.#writer) return this.#writeFrames(this.#writer, bufs, sizes, offset, count);
    let ok = 0;
    for (let i = 0; i < count; i++) {
      const size = sizes[i];
      const b = bufs[i];
      const version = size > 0 ? b[offset] >> 4 : 0;
      if (
        size < 1 || size > 65535 || offset + size > b.length || (version !== 4 && version !== 6)
      ) {
        this.#stats.writeDropped++;
        continue;
      }
      this.#written.push(b.slice(offset, offset + size));
      ok++;
    }
    this.#stats.writePackets += ok;
    return ok;
  }

  #okBufs: Uint8Array[] = [];
  #okSizes = new Int32Array(128);

  #writeFrames(
    w: VnetWriter,
    bufs: Uint8Array[],
    sizes: Int32Array,
    offset: number,
    count: number,
  ): number {
    let ok = 0, n = 0;
    for (let i = 0; i < count; i++) {
      const size = sizes[i];
      if (size < 1 || size > 65535 || offset + size > bufs[i].length) continue;
      this.#okBufs[n] = bufs[i];
      this.#okSizes[n++] = size;
      if (n === w.capacity) {
        ok += w.write(this.#okBufs, this.#okSizes, offset, n);
        n = 0;
      }
    }
    if (n > 0) ok += w.write(this.#okBufs, this.#okSizes, offset, n);
    this.#stats.writePackets += ok;
    this.#stats.writeDropped += count - ok;
    return ok;
  }

  /** Resolves when packets are queued, after `timeoutMs` (negative: never), or on close. */
  readable(timeoutMs: number): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError("wait on"));
    if (this.pending > 0 || timeoutMs === 0) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        const i = this.#waiters.indexOf(done);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve();
      };
      this.#waiters.push(done);
      if (timeoutMs > 0) timer = setTimeout(done, timeoutMs);
    });
  }

  /** Closes the device and releases every waiter; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inbound = [];
    this.#head = 0;
    this.#notify();
  }

  #notify(): void {
    for (const w of this.#waiters.slice()) w();
  }

  #closedError(what: string): SyscallError {
    return new SyscallError(
      what,
      9,
      `Cannot ${what} TUN device "${this.name}": the device is closed`,
    );
  }
}
