/**
 * A fake wintun.dll + kernel32 for tests, written in TypeScript over real
 * memory: packets handed out are genuine pointers into ArrayBuffers, so the
 * code under test copies through Deno.UnsafePointerView exactly as it would
 * from Wintun's ring. It checks the contract: every received packet must be
 * released exactly once with the pointer it came from.
 */
import type { Kernel32Symbols, WintunSymbols } from "../../ffi/wintun.ts";
import type { WintunApi } from "../../src/tun/windows.ts";

function handle(): { mem: Uint8Array; ptr: Deno.PointerObject } {
  const mem = new Uint8Array(8);
  return { mem, ptr: Deno.UnsafePointer.of(mem)! };
}

function key(p: Deno.PointerValue): bigint {
  return BigInt(Deno.UnsafePointer.value(p));
}

/** The fake driver: inject packets, inspect what was sent and which calls happened. */
export class FakeWintun {
  lastError = 0;
  /** Names (decoded) of adapters that already exist. */
  existing = new Set<string>();
  /** Call log: function names in order. */
  calls: string[] = [];
  /** Packets committed with WintunSendPacket. */
  sent: Uint8Array[] = [];
  /** Contract violations (double release, unknown pointer); tests assert it stays empty. */
  violations: string[] = [];
  /** How many more send allocations succeed before ERROR_BUFFER_OVERFLOW. */
  sendRingFree = Infinity;
  /** Make the next create/start fail with this Windows error. */
  failCreate = 0;
  failStart = 0;
  sessionCapacity = 0;
  createdName = "";
  #inbound: Uint8Array[] = [];
  #outstanding = new Map<bigint, Uint8Array>();
  #allocated = new Map<bigint, Uint8Array>();
  #ended = false;
  #adapter = handle();
  #session = handle();
  #event = handle();
  #waiters: (() => void)[] = [];

  /** Packets received but not yet released. */
  get outstanding(): number {
    return this.#outstanding.size;
  }

  /** Queues a packet as if Windows routed it into the adapter, and signals the read event. */
  inject(p: Uint8Array): void {
    this.#inbound.push(p.slice());
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Ends the session from the driver side (adapter removed). */
  terminate(): void {
    this.#ended = true;
  }

  /** The symbol tables to hand to WindowsTun.open. */
  api(): WintunApi {
    const decode = (b: AllowSharedBufferSource | null): string => {
      if (!b) return "";
      const u8 = b instanceof Uint8Array ? b : new Uint8Array(b as ArrayBuffer);
      const u16 = new Uint16Array(u8.buffer, u8.byteOffset, u8.byteLength / 2);
      const end = u16.indexOf(0);
      return String.fromCharCode(...u16.subarray(0, end < 0 ? u16.length : end));
    };
    const wintun: WintunSymbols = {
      WintunOpenAdapter: (name) => {
        this.calls.push("OpenAdapter");
        if (this.existing.has(decode(name))) return this.#adapter.ptr;
        this.lastError = 2;
        return null;
      },
      WintunCreateAdapter: (name, type, _guid) => {
        this.calls.push("CreateAdapter");
        if (this.failCreate) {
          this.lastError = this.failCreate;
          return null;
        }
        this.createdName = `${decode(name)}/${decode(type)}`;
        return this.#adapter.ptr;
      },
      WintunCloseAdapter: (a) => {
        this.calls.push("CloseAdapter");
        if (key(a) !== key(this.#adapter.ptr)) {
          this.violations.push("CloseAdapter with a foreign handle");
        }
      },
      WintunStartSession: (_a, cap) => {
        this.calls.push("StartSession");
        this.sessionCapacity = cap;
        if (this.failStart) {
          this.lastError = this.failStart;
          return null;
        }
        return this.#session.ptr;
      },
      WintunEndSession: (s) => {
        this.calls.push("EndSession");
        if (key(s) !== key(this.#session.ptr)) {
          this.violations.push("EndSession with a foreign handle");
        }
        if (this.#outstanding.size) this.violations.push("EndSession with unreleased packets");
        this.#ended = true;
      },
      WintunGetReadWaitEvent: () => this.#event.ptr,
      WintunReceivePacket: (_s, sizeOut) => {
        if (this.#ended) {
          this.lastError = 38;
          return null;
        }
        const p = this.#inbound.shift();
        if (!p) {
          this.lastError = 259;
          return null;
        }
        const mem = p.slice(); // the "ring" memory for this packet
        const ptr = Deno.UnsafePointer.of(mem)!;
        this.#outstanding.set(key(ptr), mem);
        const out = sizeOut as Uint8Array;
        new DataView(out.buffer, out.byteOffset, 4).setUint32(0, p.length, true);
        return ptr;
      },
      WintunReleaseReceivePacket: (_s, p) => {
        if (!this.#outstanding.delete(key(p))) {
          this.violations.push("release of an unknown or released packet");
        }
      },
      WintunAllocateSendPacket: (_s, size) => {
        if (this.#ended) {
          this.lastError = 38;
          return null;
        }
        if (this.sendRingFree <= 0) {
          this.lastError = 111;
          return null;
        }
        this.sendRingFree--;
        const mem = new Uint8Array(size);
        const ptr = Deno.UnsafePointer.of(mem)!;
        this.#allocated.set(key(ptr), mem);
        return ptr;
      },
      WintunSendPacket: (_s, p) => {
        const mem = this.#allocated.get(key(p));
        if (!mem) {
          this.violations.push("send of an unallocated packet");
          return;
        }
        this.#allocated.delete(key(p));
        this.sent.push(mem.slice());
      },
      WintunGetAdapterLUID: (_a, out) => {
        const u8 = out as Uint8Array;
        new DataView(u8.buffer, u8.byteOffset, 8).setBigUint64(0, 0x1234_5678_9abcn, true);
      },
      WintunGetRunningDriverVersion: () => 0x000e0001,
    };
    const kernel32: Kernel32Symbols = {
      WaitForSingleObject: (h, ms) => {
        this.calls.push("Wait");
        if (key(h) !== key(this.#event.ptr)) this.violations.push("wait on a foreign handle");
        if (this.#inbound.length) return Promise.resolve(0);
        return new Promise<number>((resolve) => {
          const timer = setTimeout(() => {
            this.#waiters = this.#waiters.filter((w) => w !== wake);
            resolve(0x102);
          }, ms);
          const wake = () => {
            clearTimeout(timer);
            resolve(0);
          };
          this.#waiters.push(wake);
        });
      },
      GetLastError: () => this.lastError,
    };
    return { wintun, kernel32 };
  }
}
