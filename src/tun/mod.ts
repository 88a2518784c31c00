/**
 * TunDevice: the seam between the kernel's virtual interface and the data
 * plane. Real implementations live in linux.ts (ffi/libc) and windows.ts
 * (ffi/wintun); memory.ts is the fake used by tests.
 *
 * The API is batch- and buffer-oriented because the data plane is measured in
 * microseconds per packet: the pump owns one large ArrayBuffer carved into
 * slots, and the device reads into / writes from those slots at a fixed
 * `offset` (headroom), so a packet can be encrypted in place behind a
 * protocol header without copying.
 */

/**
 * Kernel offloads a TUN device may use (Linux, IFF_VNET_HDR): `tso` lets the
 * kernel hand us TCP super-packets of up to 64 KiB that the device cuts
 * itself, `uso` the same for UDP (Linux 6.2+), `gro` merges consecutive
 * segments of a connection into one super-packet per write. Each is only a
 * request: the device says in `offloads` what it got.
 */
export interface TunOffloadRequest {
  tso?: boolean;
  uso?: boolean;
  gro?: boolean;
}

/** Whether one offload is on, and if not, why (a sentence for logs and `wg show`). */
export interface OffloadState {
  on: boolean;
  /** Empty when on; else e.g. "kernel refused TUN_F_USO4|TUN_F_USO6: invalid argument (EINVAL)". */
  why: string;
}

/** The offloads a TUN device ended up with. */
export interface TunOffloads {
  tso: OffloadState;
  uso: OffloadState;
  /** Merging TCP segments on writes. */
  groTcp: OffloadState;
  /** Merging UDP datagrams on writes (needs what USO needs). */
  groUdp: OffloadState;
}

/** The same reason for every offload (a device without any). */
export function noOffloads(why: string): TunOffloads {
  return {
    tso: { on: false, why },
    uso: { on: false, why },
    groTcp: { on: false, why },
    groUdp: { on: false, why },
  };
}

/** A layer-3 virtual network interface carrying raw IPv4/IPv6 packets. */
export interface TunDevice {
  /** Interface name as the OS knows it (e.g. "pc0"). */
  readonly name: string;
  /** Current MTU in bytes. */
  readonly mtu: number;
  /** File descriptor for readiness polling; -1 when the device has none (fakes, Wintun). */
  readonly fd: number;
  /** Which kernel offloads are on, and why the others are off. */
  readonly offloads: TunOffloads;
  /**
   * Reads up to `bufs.length` packets without blocking. Packet i is placed at
   * `bufs[i][offset..]` and its length stored in `sizes[i]`. Returns the number
   * read; 0 when nothing is ready. Throws a typed error on a device failure.
   * With offloads a super-packet comes out as its segments, one per slot,
   * and what does not fit this call comes out on the next: call again until 0
   * before waiting. The 10 bytes before `offset` may be used as scratch.
   */
  read(bufs: Uint8Array[], sizes: Int32Array, offset: number): number;
  /**
   * Writes packets `bufs[i][offset .. offset+sizes[i]]` for i < count. Returns
   * how many were accepted; packets the kernel refuses are dropped and counted.
   * With offloads, consecutive segments of a connection go out merged; the
   * packets' headers may be changed in the process.
   */
  write(bufs: Uint8Array[], sizes: Int32Array, offset: number, count: number): number;
  /** Bytes of staging the device would like in the caller's packet arena (0: none). */
  readonly stagingBytes?: number;
  /** Hands the device its staging region, carved from the arena that holds the caller's slots. */
  useStaging?(region: Uint8Array): void;
  /** Resolves when the device may have packets to read, or after `timeoutMs`. */
  readable(timeoutMs: number): Promise<void>;
  /** Closes the device; idempotent. */
  close(): void;
}
