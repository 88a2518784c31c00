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

/** A layer-3 virtual network interface carrying raw IPv4/IPv6 packets. */
export interface TunDevice {
  /** Interface name as the OS knows it (e.g. "pc0"). */
  readonly name: string;
  /** Current MTU in bytes. */
  readonly mtu: number;
  /** File descriptor for readiness polling; -1 when the device has none (fakes, Wintun). */
  readonly fd: number;
  /**
   * Reads up to `bufs.length` packets without blocking. Packet i is placed at
   * `bufs[i][offset..]` and its length stored in `sizes[i]`. Returns the number
   * read; 0 when nothing is ready. Throws a typed error on a device failure.
   */
  read(bufs: Uint8Array[], sizes: Int32Array, offset: number): number;
  /**
   * Writes packets `bufs[i][offset .. offset+sizes[i]]` for i < count. Returns
   * how many were accepted; packets the kernel refuses are dropped and counted.
   */
  write(bufs: Uint8Array[], sizes: Int32Array, offset: number, count: number): number;
  /** Resolves when the device may have packets to read, or after `timeoutMs`. */
  readable(timeoutMs: number): Promise<void>;
  /** Closes the device; idempotent. */
  close(): void;
}
