/**
 * Shared helpers for the segmentation and coalescing tests: the kernel-made
 * frames in fixtures/offload (captured by test/e2e/tools/capture_offload.ts),
 * slots carved from one arena, and a checksum written the plain way (byte
 * pairs, RFC 1071) to check the fast one against.
 */
import { PacketArena } from "../../src/packet/arena.ts";

/** A kernel-captured frame: virtio_net_hdr (10 bytes) + packet. */
export function fixture(name: "tcp4_tso" | "tcp6_tso" | "udp4_uso" | "tcp4_partial"): Uint8Array {
  return Deno.readFileSync(new URL(`../../fixtures/offload/${name}.bin`, import.meta.url));
}

/** `n` slots of `size` bytes from one arena (plus a staging region), as the pump carves them. */
export function arenaSlots(n: number, size = 2112): { slots: Uint8Array[]; staging: Uint8Array } {
  const arena = new PacketArena(n * size + 70000 + 128);
  return { slots: arena.carveMany(n, size), staging: arena.carve(70000) };
}

/** RFC 1071 the plain way: folded one's complement sum of byte pairs (not complemented). */
export function refSum(b: Uint8Array, off: number, len: number, initial = 0): number {
  let s = initial;
  for (let i = 0; i < len; i += 2) s += (b[off + i] << 8) | (i + 1 < len ? b[off + i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

/** Checks one IP packet's checksums from scratch; returns what verified. */
export function verifyPacket(p: Uint8Array): { ip: boolean; transport: boolean } {
  const v6 = p[0] >> 4 === 6;
  const ipHl = v6 ? 40 : (p[0] & 0x0f) * 4;
  const proto = v6 ? p[6] : p[9];
  const l4 = p.length - ipHl;
  const pseudo = v6 ? refSum(p, 8, 32, proto + l4) : refSum(p, 12, 8, proto + l4);
  return {
    ip: v6 || refSum(p, 0, ipHl) === 0xffff,
    transport: refSum(p, ipHl, l4, pseudo) === 0xffff,
  };
}

/** Reads a big-endian u16 / u32. */
export const u16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
/** Reads a big-endian u32. */
export const u32 = (b: Uint8Array, o: number) =>
  ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
