/**
 * In-memory TunDevice for tests: `inject()` plays the OS sending a packet
 * into the tunnel, `take()` collects what the data plane wrote back.
 *
 * It keeps the kernel's observable rules so pumps tested against it behave
 * the same on a real device: reads never block and truncate packets longer
 * than the slot, writes refuse empty, oversized or non-IP packets (counted as
 * drops), the inbound queue is bounded, and use after close throws.
 */
import { SyscallError } from "../errors.ts";
import type { TunDevice } from "./mod.ts";

/** Options for a MemoryTun. */
export interface MemoryTunOptions {
  name?: string;
  mtu?: number;
  /** Most packets queued for reading before inject() drops (default 1024). */
  capacity?: number;
}

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
  #waiters: (() => void)[] = [];
  #closed = false;
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
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Packets waiting to be read. */
  get pending(): number {
    return this.#inbound.length - this.#head;
  }

  /** A copy of the counters. */
  get stats(): MemoryTunStats {
    return { ...this.#stats };
  }

  /** Queues a copy of `packet` as if the OS routed it into the tunnel; false when dropped (queue full). */
  inject(packet: Uint8Array): boolean {
    if (this.#closed) throw this.#closedError("inject into");
    if (this.pending >= this.#capacity) {
      this.#stats.injectDropped++;
      return false;
    }
    this.#inbound.push(packet.slice());
    this.#notify();
    return true;
  }

  /** Returns (and forgets) the packets the data plane wrote, oldest first. */
  take(): Uint8Array[] {
    const out = this.#written;
    this.#written = [];
    return out;
  }

  /** Reads up to bufs.length queued packets; see TunDevice.read. */
  read(bufs: Uint8Array[], sizes: Int32Array, offset: number): number {
    if (this.#closed) throw this.#closedError("read from");
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

  /** Collects copies of the written packets; refuses what a kernel would. */
  write(bufs: Uint8Array[], sizes: Int32Array, offset: number, count: number): number {
    if (this.#closed) throw this.#closedError("write to");
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
