/**
 * WireGuard message types, sizes and field offsets (whitepaper §5.4), plus
 * little-endian helpers that work on any buffer without allocating.
 */

/** Message type 1: handshake initiation. */
export const MSG_INITIATION = 1;
/** Message type 2: handshake response. */
export const MSG_RESPONSE = 2;
/** Message type 3: cookie reply. */
export const MSG_COOKIE_REPLY = 3;
/** Message type 4: transport data. */
export const MSG_TRANSPORT = 4;

/** Size of a handshake initiation. */
export const INITIATION_SIZE = 148;
/** Size of a handshake response. */
export const RESPONSE_SIZE = 92;
/** Size of a cookie reply. */
export const COOKIE_REPLY_SIZE = 64;
/** Size of the transport data header (type, receiver, counter): the headroom the pump leaves. */
export const TRANSPORT_HEADER_SIZE = 16;
/** Smallest transport message: header plus tag (a keepalive). */
export const TRANSPORT_MIN_SIZE = 32;

/** Reads a little-endian u32. */
export function readU32(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
}

/** Writes a little-endian u32. */
export function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v;
  b[off + 1] = v >>> 8;
  b[off + 2] = v >>> 16;
  b[off + 3] = v >>> 24;
}

/** Reads a little-endian u64 counter as a number (exact below 2^53; larger values come out above 2^53). */
export function readU64(b: Uint8Array, off: number): number {
  return readU32(b, off) + readU32(b, off + 4) * 0x100000000;
}

/** Writes a number below 2^53 as a little-endian u64. */
export function writeU64(b: Uint8Array, off: number, v: number): void {
  writeU32(b, off, v >>> 0);
  writeU32(b, off + 4, Math.floor(v / 0x100000000));
}

/**
 * TAI64N timestamp of a wall-clock time in ms, with the nanoseconds rounded
 * down to 2^24 ns as wireguard-go does so the stamp leaks less timing.
 */
export function tai64n(wallMs: number): Uint8Array {
  const out = new Uint8Array(12);
  const v = new DataView(out.buffer);
  const secs = Math.floor(wallMs / 1000);
  const nanos = Math.floor((wallMs - secs * 1000) * 1e6);
  v.setBigUint64(0, 0x400000000000000an + BigInt(secs));
  v.setUint32(8, nanos & ~0xffffff);
  return out;
}

/** Compares two byte strings as big-endian numbers: <0, 0 or >0. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}
