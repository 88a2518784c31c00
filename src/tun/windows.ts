/**
 * Windows TUN device over Wintun (wintun.dll).
 *
 * Wintun shares two rings with its driver. Receiving returns a pointer into
 * the ring that stays valid until released, so every packet is copied into
 * the pump's slot and released at once — including ones too big for the
 * slot — or the ring would fill and the adapter stall. Sending allocates
 * space in the ring, copies, then commits.
 *
 * The symbol tables are injected (WintunApi) so this logic is unit-tested on
 * Linux against a fake built over real memory. `readable()` waits on the
 * session's read event with a nonblocking WaitForSingleObject in slices of
 * at most 250 ms; a close() during a wait is carried out when the slice ends,
 * so the session is never ended under a waiting thread. Interface addresses,
 * routes and MTU on Windows are configured elsewhere (IP Helper / netsh).
 */
import {
  ERROR_BUFFER_OVERFLOW,
  ERROR_HANDLE_EOF,
  ERROR_NO_MORE_ITEMS,
  KERNEL32_SYMBOLS,
  type Kernel32Symbols,
  WAIT_OBJECT_0,
  WAIT_TIMEOUT,
  WINTUN_MAX_IP_PACKET_SIZE,
  WINTUN_SYMBOLS,
  type WintunSymbols,
} from "../../ffi/wintun.ts";
import { InputError, SyscallError } from "../errors.ts";
import { noOffloads, type TunDevice, type TunOffloads } from "./mod.ts";

/** The Wintun and kernel32 functions WindowsTun calls (real or fake). */
export interface WintunApi {
  wintun: WintunSymbols;
  kernel32: Kernel32Symbols;
}

/** Options for opening a Wintun adapter. */
export interface WindowsTunOptions {
  /** Adapter name (1-127 characters). */
  name: string;
  /** MTU the pump should assume (default 1420); the adapter itself is configured elsewhere. */
  mtu?: number;
  /** Tunnel type shown by Windows (default "Portcullis"). */
  tunnelType?: string;
  /** Ring capacity in bytes: a power of 2 between 128 KiB and 64 MiB (default 8 MiB). */
  ringCapacity?: number;
  /** Requested adapter GUID (16 bytes), so Windows keeps its settings across restarts. */
  guid?: Uint8Array;
}

/** Counters. */
export interface WindowsTunStats {
  readPackets: number;
  writePackets: number;
  writeDropped: number;
  truncated: number;
}

/** Loads wintun.dll (from `path`) and kernel32; Windows only. */
export function loadWintun(path = "wintun.dll"): WintunApi {
  if (Deno.build.os !== "windows") {
    throw new SyscallError("LoadLibrary", 0, `Cannot load Wintun from "${path}": Windows only`);
  }
  try {
    return {
      wintun: Deno.dlopen(path, WINTUN_SYMBOLS).symbols,
      kernel32: Deno.dlopen("kernel32.dll", KERNEL32_SYMBOLS).symbols,
    };
  } catch (e) {
    throw new SyscallError(
      "LoadLibrary",
      0,
      `Cannot load Wintun from "${path}": ${(e as Error).message}`,
    );
  }
}

function wide(s: string): Uint8Array {
  const out = new Uint16Array(s.length + 1);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return new Uint8Array(out.buffer);
}

/** A Wintun adapter with a running session. */
export class WindowsTun implements TunDevice {
  /** Always -1: Wintun signals through an event handle; use readable(). */
  readonly fd = -1;
  /** Wintun has no segmentation offloads (its packets are always MTU-sized). */
  readonly offloads: TunOffloads = noOffloads("Wintun on Windows has no segmentation offloads");
  readonly #name: string;
  readonly #mtu: number;
  readonly #api: WintunApi;
  #adapter: Deno.PointerObject | null;
  #session: Deno.PointerObject | null;
  #event: Deno.PointerObject | null;
  #sizeBuf = new Uint32Array(1);
  #sizeBytes = new Uint8Array(this.#sizeBuf.buffer);
  #waiting = 0;
  #closed = false;
  #released = false;
  #stats: WindowsTunStats = { readPackets: 0, writePackets: 0, writeDropped: 0, truncated: 0 };

  private constructor(
    name: string,
    mtu: number,
    api: WintunApi,
    adapter: Deno.PointerObject,
    session: Deno.PointerObject,
    event: Deno.PointerObject,
  ) {
    this.#name = name;
    this.#mtu = mtu;
    this.#api = api;
    this.#adapter = adapter;
    this.#session = session;
    this.#event = event;
  }

  /** Opens the adapter called `name` (creating it when missing) and starts a session. */
  static open(opts: WindowsTunOptions, api: WintunApi = loadWintun()): WindowsTun {
    const { name } = opts;
    if (!name || name.length > 127 || /[\0\\/]/.test(name)) {
      throw new InputError(
        "bad_interface_name",
        `Cannot use adapter name "${name}": expected 1-127 characters without slashes`,
      );
    }
    const cap = opts.ringCapacity ?? 8 << 20;
    if (cap < 0x20000 || cap > 0x4000000 || (cap & (cap - 1)) !== 0) {
      throw new InputError(
        "bad_ring_capacity",
        `Cannot use Wintun ring capacity ${cap}: expected a power of 2 from 131072 to 67108864`,
      );
    }
    if (opts.guid && opts.guid.length !== 16) {
      throw new InputError(
        "bad_guid",
        `Cannot create Wintun adapter "${name}": the GUID must be 16 bytes`,
      );
    }
    const { wintun, kernel32 } = api;
    const fail = (call: string, action: string) => {
      const err = kernel32.GetLastError();
      return new SyscallError(call, err, `Cannot ${action}: Windows error ${err}`);
    };
    let adapter = wintun.WintunOpenAdapter(wide(name));
    if (!adapter) {
      adapter = wintun.WintunCreateAdapter(
        wide(name),
        wide(opts.tunnelType ?? "Portcullis"),
        opts.guid ?? null,
      );
      if (!adapter) throw fail("WintunCreateAdapter", `create Wintun adapter "${name}"`);
    }
    const session = wintun.WintunStartSession(adapter, cap);
    if (!session) {
      const e = fail("WintunStartSession", `start a session on Wintun adapter "${name}"`);
      wintun.WintunCloseAdapter(adapter);
      throw e;
    }
    const event = wintun.WintunGetReadWaitEvent(session);
    if (!event) {
      const e = fail("WintunGetReadWaitEvent", `get the read event of Wintun adapter "${name}"`);
      wintun.WintunEndSession(session);
      wintun.WintunCloseAdapter(adapter);
      throw e;
    }
    return new WindowsTun(name, opts.mtu ?? 1420, api, adapter, session, event);
  }

  /** Adapter name. */
  get name(): string {
    return this.#name;
  }

  /** MTU the pump assumes. */
  get mtu(): number {
    return this.#mtu;
  }

  /** A copy of the counters. */
  get stats(): WindowsTunStats {
    return { ...this.#stats };
  }

  /** The adapter's LUID (for IP Helper calls), as a bigint. */
  luid(): bigint {
    const out = new BigUint64Array(1);
    this.#api.wintun.WintunGetAdapterLUID(this.#live("query"), new Uint8Array(out.buffer));
    return out[0];
  }

  #live(what: string): Deno.PointerObject {
    if (this.#closed || !this.#adapter) {
      throw new SyscallError(
        what,
        ERROR_HANDLE_EOF,
        `Cannot ${what} TUN device "${this.#name}": the device is closed`,
      );
    }
    return this.#adapter;
  }

  #sessionEnded(what: string): SyscallError {
    return new SyscallError(
      what,
      ERROR_HANDLE_EOF,
      `Cannot ${what} TUN device "${this.#name}": the Wintun session has ended`,
    );
  }

  /** Copies up to bufs.length waiting packets into the slots, releasing each. */
  read(bufs: Uint8Array[], sizes: Int32Array, offset: number): number {
    this.#live("read from");
    const { wintun, kernel32 } = this.#api;
    const session = this.#session;
    const max = Math.min(bufs.length, sizes.length);
    let n = 0;
    while (n < max) {
      const p = wintun.WintunReceivePacket(session, this.#sizeBytes);
      if (!p) {
        const err = kernel32.GetLastError();
        if (err === ERROR_NO_MORE_ITEMS) break;
        if (err === ERROR_HANDLE_EOF) throw this.#sessionEnded("read from");
        throw new SyscallError(
          "WintunReceivePacket",
          err,
          `Cannot read from TUN device "${this.#name}": Windows error ${err}`,
        );
      }
      const size = this.#sizeBuf[0];
      const room = bufs[n].length - offset;
      const len = size <= room ? size : room;
      try {
        if (len > 0) Deno.UnsafePointerView.copyInto(p, bufs[n].subarray(offset, offset + len));
      } finally {
        wintun.WintunReleaseReceivePacket(session, p);
      }
      if (len < size) this.#stats.truncated++;
      sizes[n++] = len;
    }
    this.#stats.readPackets += n;
    return n;
  }

  /** Copies packets into the send ring; stops when the ring is full (the rest are dropped). */
  write(bufs: Uint8Array[], sizes: Int32Array, offset: number, count: number): number {
    this.#live("write to");
    const { wintun, kernel32 } = this.#api;
    const session = this.#session;
    let ok = 0;
    for (let i = 0; i < count; i++) {
      const size = sizes[i];
      if (size < 1 || size > WINTUN_MAX_IP_PACKET_SIZE || offset + size > bufs[i].length) {
        this.#stats.writeDropped++;
        continue;
      }
      const p = wintun.WintunAllocateSendPacket(session, size);
      if (!p) {
        const err = kernel32.GetLastError();
        if (err === ERROR_HANDLE_EOF) throw this.#sessionEnded("write to");
        if (err === ERROR_BUFFER_OVERFLOW) {
          this.#stats.writeDropped += count - i; // ring full: the rest are dropped, as a kernel would
          break;
        }
        throw new SyscallError(
          "WintunAllocateSendPacket",
          err,
          `Cannot write to TUN device "${this.#name}": Windows error ${err}`,
        );
      }
      new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, size)).set(
        bufs[i].subarray(offset, offset + size),
      );
      wintun.WintunSendPacket(session, p);
      ok++;
    }
    this.#stats.writePackets += ok;
    return ok;
  }

  /** Resolves when the read event is signalled, after `timeoutMs` (negative: never), or on close. */
  async readable(timeoutMs: number): Promise<void> {
    this.#live("wait on");
    const deadline = timeoutMs < 0 ? Infinity : performance.now() + timeoutMs;
    this.#waiting++;
    try {
      while (!this.#closed) {
        const left = deadline - performance.now();
        if (left <= 0) return;
        const r = await this.#api.kernel32.WaitForSingleObject(
          this.#event,
          Math.min(Math.ceil(left), 250),
        );
        if (r === WAIT_OBJECT_0) return;
        if (r !== WAIT_TIMEOUT) {
          throw new SyscallError(
            "WaitForSingleObject",
            r,
            `Cannot wait on TUN device "${this.#name}": wait failed`,
          );
        }
      }
    } finally {
      this.#waiting--;
      if (this.#closed && this.#waiting === 0) this.#release();
    }
  }

  /** Ends the session and closes the adapter, once; deferred while a wait slice is running. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#waiting === 0) this.#release();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    const { wintun } = this.#api;
    if (this.#session) wintun.WintunEndSession(this.#session);
    if (this.#adapter) wintun.WintunCloseAdapter(this.#adapter);
    this.#session = null;
    this.#adapter = null;
    this.#event = null;
  }
}
