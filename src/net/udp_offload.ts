/**
 * Asking the kernel for UDP offloads on a socket, and saying what it gave:
 * UDP GSO (UDP_SEGMENT, Linux 4.18+) and UDP GRO (UDP_GRO; counted only
 * from Linux 5.12, which can read it back — as wireguard-go does, since the
 * older kernels' GRO is buggy too). The send-time fallbacks live in udp.ts.
 */
import { SOL_UDP, UDP_GRO, UDP_SEGMENT } from "../../ffi/libc.ts";
import { errnoName, lastErrno, libc } from "./errno.ts";

/** Whether one socket offload is on, and if not, why. */
export interface UdpOffloadState {
  on: boolean;
  why: string;
}

/** The offloads a UDP socket ended up with. */
export interface UdpOffloads {
  gso: UdpOffloadState;
  gro: UdpOffloadState;
}

/** Why an offload is off because nobody asked for it. */
export const NOT_ASKED = "not requested";
const ON: UdpOffloadState = Object.freeze({ on: true, why: "" });

/** "<strerror> (<ERRNO>)" for the offload states. */
export function explain(errno: number): string {
  let text = `error ${errno}`;
  try {
    const p = libc().strerror(errno);
    if (p) text = Deno.UnsafePointerView.getCString(p).toLowerCase();
  } catch { /* keep the number */ }
  return `${text} (${errnoName(errno)})`;
}

function getInt(fd: number, level: number, name: number): { value: number; errno: number } {
  const v = new Int32Array(1);
  const l = new Uint32Array([4]);
  const r = libc().getsockopt(fd, level, name, new Uint8Array(v.buffer), new Uint8Array(l.buffer));
  return r < 0 ? { value: 0, errno: lastErrno() } : { value: v[0], errno: 0 };
}

/** UDP GSO is there when the kernel knows UDP_SEGMENT (Linux 4.18+). */
export function probeGso(fd: number): UdpOffloadState {
  const g = getInt(fd, SOL_UDP, UDP_SEGMENT);
  return g.errno === 0 ? ON : { on: false, why: `kernel refused UDP_SEGMENT: ${explain(g.errno)}` };
}

/**
 * Turns UDP GRO on and reads it back: kernels before 5.12 cannot read it
 * back (and have GRO bugs), so a failed read-back counts as refused.
 */
export function enableGro(fd: number): UdpOffloadState {
  const one = new Uint8Array(new Int32Array([1]).buffer);
  if (libc().setsockopt(fd, SOL_UDP, UDP_GRO, one, 4) < 0) {
    return { on: false, why: `kernel refused UDP_GRO: ${explain(lastErrno())}` };
  }
  const g = getInt(fd, SOL_UDP, UDP_GRO);
  if (g.errno !== 0 || g.value !== 1) {
    const off = new Uint8Array(4);
    libc().setsockopt(fd, SOL_UDP, UDP_GRO, off, 4);
    return {
      on: false,
      why: g.errno !== 0
        ? `kernel cannot read UDP_GRO back (Linux before 5.12): ${explain(g.errno)}`
        : "kernel did not keep UDP_GRO on",
    };
  }
  return ON;
}
