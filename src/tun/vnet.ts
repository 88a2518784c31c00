/**
 * The offload half of a TUN device opened with IFF_VNET_HDR, shared by the
 * Linux device and the in-memory fake so both cut and merge packets the same
 * way: every frame is a 10-byte virtio_net_hdr and a packet.
 *
 * Reading (VnetReader): a frame lands first in the caller's slot, from
 * offset-10 (the virtio header sits in the slot's headroom, which the data
 * plane overwrites with its own header anyway), and what does not fit runs
 * on into the staging area. A plain packet stays where it landed (its
 * partial checksum completed if the kernel left one); a super-packet is
 * moved whole into staging and cut into the caller's slots, and what does not
 * fit this call stays pending for the next.
 *
 * Writing (VnetWriter): a batch is planned by the Coalescer; each frame goes
 * out as [virtio header, first packet, payloads of the packets merged behind
 * it] — the sink gathers those pieces (writev), so no payload is copied. A
 * frame the kernel refuses switches coalescing off (said once, with the
 * reason) and goes out again packet by packet.
 */
import { copyBytes } from "../packet/arena.ts";
import { Coalescer, GRO_HEAD } from "../packet/gro.ts";
import {
  completeChecksum,
  cutSegments,
  type GsoError,
  newSuperPacket,
  parseSuperPacket,
} from "../packet/gso.ts";
import {
  newVnetHeader,
  readVnetHeader,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_HDR_SIZE,
} from "../packet/vnet.ts";

/** Most bytes of a frame that land in the caller's slot (the rest goes to staging). */
export const VNET_ROOM_MAX = 4096;
/** Largest frame: virtio header + a 64 KiB super-packet. */
export const VNET_FRAME_MAX = VNET_HDR_SIZE + 65535;
/** Staging bytes a reader needs: the slot's share of a frame, then the rest. */
export const VNET_STAGING_BYTES = VNET_ROOM_MAX + VNET_FRAME_MAX;

/** Counters of the offload path. */
export interface VnetStats {
  /** Super-packets read and cut. */
  superPackets: number;
  /** Segments cut from them. */
  segments: number;
  /** Single packets whose partial checksum we completed. */
  checksumsCompleted: number;
  /** Frames dropped as malformed (bad virtio header, unknown GSO type, too large). */
  badFrames: number;
  /** Frames written that carried several packets. */
  coalescedFrames: number;
  /** Packets that went out inside them. */
  coalescedPackets: number;
}

/** Makes zeroed counters. */
export function newVnetStats(): VnetStats {
  return {
    superPackets: 0,
    segments: 0,
    checksumsCompleted: 0,
    badFrames: 0,
    coalescedFrames: 0,
    coalescedPackets: 0,
  };
}

/** Turns frames into inner packets, segmenting super-packets; see the file comment. */
export class VnetReader {
  #staging: Uint8Array;
  #overflow: Uint8Array;
  readonly #hdr = newVnetHeader();
  readonly #sp = newSuperPacket();
  #pending = false;
  #pendingFrom = 0; // frame start in staging
  #nextSegment = 0;
  /** Why the last frame was refused (for a debug log), or null. */
  lastError: GsoError | "short_frame" | "oversized" | "bad_checksum_offsets" | null = null;
  readonly stats: VnetStats;

  /** Uses `staging` (VNET_STAGING_BYTES) when given, else allocates its own. */
  constructor(stats: VnetStats, staging?: Uint8Array) {
    this.stats = stats;
    this.#staging = staging ?? new Uint8Array(VNET_STAGING_BYTES);
    this.#overflow = this.#staging.subarray(VNET_ROOM_MAX);
  }

  /** Moves staging into `region` (one arena with the caller's slots); only while nothing is pending. */
  useStaging(region: Uint8Array): void {
    if (region.length < VNET_STAGING_BYTES || this.#pending) return;
    this.#staging = region.subarray(0, VNET_STAGING_BYTES);
    this.#overflow = this.#staging.subarray(VNET_ROOM_MAX);
  }

  /** Where the bytes after the slot's share of a frame go (the second iovec). */
  get overflow(): Uint8Array {
    return this.#overflow;
  }

  /** True while a super-packet still has segments to hand out. */
  get pending(): boolean {
    return this.#pending;
  }

  /** Bytes of a frame that land in `slot` when packets go at `offset` (0 when offset < 10). */
  room(slot: Uint8Array, offset: number): number {
    if (offset < VNET_HDR_SIZE) return 0;
    return Math.min(slot.length - offset + VNET_HDR_SIZE, VNET_ROOM_MAX);
  }

  /**
   * Takes a frame of `n` bytes that was read into [bufs[at] from
   * offset-10 for `room` bytes, then `overflow`]; writes the packets it
   * yields into bufs[at .. max) and returns how many (0: the frame was dropped).
   */
  accept(
    bufs: Uint8Array[],
    sizes: Int32Array,
    offset: number,
    at: number,
    max: number,
    n: number,
    room: number,
  ): number {
    const slot = bufs[at];
    if (n <= VNET_HDR_SIZE) return this.#drop("short_frame");
    const st = this.#staging;
    const from = VNET_ROOM_MAX - room; // frame start in staging once made contiguous
    let hdrBuf = slot, hdrOff = offset - VNET_HDR_SIZE;
    if (n > room) {
      copyBytes(st, from, slot, offset - VNET_HDR_SIZE, room);
      hdrBuf = st;
      hdrOff = from;
    }
    const h = readVnetHeader(hdrBuf, hdrOff, this.#hdr);
    const len = n - VNET_HDR_SIZE;
    if (h.gsoType === VNET_GSO_NONE) {
      if (len > slot.length - offset) return this.#drop("oversized");
      if (hdrBuf !== slot) copyBytes(slot, offset, st, from + VNET_HDR_SIZE, len);
      if (h.flags & VNET_F_NEEDS_CSUM) {
        if (!completeChecksum(slot, offset, len, h.csumStart, h.csumOffset)) {
          return this.#drop("bad_checksum_offsets");
        }
        this.stats.checksumsCompleted++;
      }
      sizes[at] = len;
      return 1;
    }
    if (hdrBuf === slot) copyBytes(st, from, slot, offset - VNET_HDR_SIZE, n);
    const err = parseSuperPacket(st, from + VNET_HDR_SIZE, len, h, slot.length - offset, this.#sp);
    if (err) return this.#drop(err);
    this.stats.superPackets++;
    this.#pendingFrom = from;
    this.#nextSegment = 0;
    this.#pending = true;
    return this.drain(bufs, sizes, offset, at, max);
  }

  /** Hands out pending segments into bufs[at .. max); returns how many. */
  drain(bufs: Uint8Array[], sizes: Int32Array, offset: number, at: number, max: number): number {
    if (!this.#pending) return 0;
    const sp = this.#sp;
    const count = Math.min(sp.segments - this.#nextSegment, max - at);
    if (count <= 0) return 0;
    cutSegments(
      this.#staging,
      this.#pendingFrom + VNET_HDR_SIZE,
      sp,
      this.#nextSegment,
      count,
      bufs,
      sizes,
      at,
      offset,
    );
    this.#nextSegment += count;
    this.stats.segments += count;
    if (this.#nextSegment >= sp.segments) this.#pending = false;
    return count;
  }

  /** Forgets a pending super-packet (the device closed). */
  reset(): void {
    this.#pending = false;
  }

  #drop(why: VnetReader["lastError"]): number {
    this.lastError = why;
    this.stats.badFrames++;
    return 0;
  }
}

/**
 * Writes one frame: the 10-byte virtio header at hdr[hdrOff..], the packet
 * bufs[i][offset .. offset+len] (for a coalesced frame its length is the
 * super-packet's, of which sizes[i] are here), then for each member m in
 * the chain `next` the payload bufs[m][offset+headerLength .. offset+sizes[m]].
 * Returns 0 when the kernel took it, else the errno.
 */
export type FrameSink = (
  hdr: Uint8Array,
  hdrOff: number,
  bufs: Uint8Array[],
  sizes: Int32Array,
  offset: number,
  i: number,
  next: Int32Array,
  headerLength: number,
) => number;

/** Coalesces and writes batches of inner packets as frames; see the file comment. */
export class VnetWriter {
  readonly #co: Coalescer;
  readonly #hdrs: Uint8Array;
  readonly #sink: FrameSink;
  readonly #noMembers: Int32Array;
  /** Coalesce TCP segments (off after the kernel refused a merged frame). */
  tcp: boolean;
  /** Coalesce UDP datagrams (only when the kernel took USO). */
  udp: boolean;
  /** Set when a refused frame switched coalescing off: the errno. */
  refusedErrno = 0;
  readonly stats: VnetStats;

  /** Plans up to `capacity` packets a call; `sink` writes each frame. */
  constructor(capacity: number, sink: FrameSink, stats: VnetStats, tcp: boolean, udp: boolean) {
    this.#co = new Coalescer(capacity);
    this.#hdrs = new Uint8Array(capacity * 16);
    this.#noMembers = new Int32Array(capacity).fill(-1);
    this.#sink = sink;
    this.stats = stats;
    this.tcp = tcp;
    this.udp = udp;
  }

  /** Packets per write() call this writer plans at once. */
  get capacity(): number {
    return this.#co.capacity;
  }

  /**
   * Writes bufs[i][offset .. offset+sizes[i]], i < count (at most capacity),
   * and returns how many packets the kernel took.
   */
  write(bufs: Uint8Array[], sizes: Int32Array, offset: number, count: number): number {
    const co = this.#co;
    const planned = this.tcp || this.udp;
    const frames = planned ? co.plan(bufs, sizes, offset, count, this.udp) : this.#plainPlan(count);
    const hdrs = this.#hdrs;
    let ok = 0;
    for (let k = 0; k < frames; k++) {
      const i = co.order[k];
      const hdrOff = k * 16;
      if (!planned || co.role[i] !== GRO_HEAD) {
        co.seal(k, bufs, sizes, offset, hdrs, hdrOff);
        if (this.#sink(hdrs, hdrOff, bufs, sizes, offset, i, this.#noMembers, 0) === 0) ok++;
        continue;
      }
      const tcp = co.isTcpHead(i);
      if (tcp ? this.tcp : this.udp) {
        co.seal(k, bufs, sizes, offset, hdrs, hdrOff);
        const err = this.#sink(hdrs, hdrOff, bufs, sizes, offset, i, co.next, co.headerLength[i]);
        if (err === 0) {
          const packets = co.members[i] + 1;
          ok += packets;
          this.stats.coalescedFrames++;
          this.stats.coalescedPackets += packets;
          continue;
        }
        co.unseal(k, bufs, offset);
        const single = this.#singles(bufs, sizes, offset, i, hdrOff);
        // Only when the same packets go out one by one is it the merging the kernel refused
        // (a down interface refuses everything).
        if (single > 0) {
          if (tcp) this.tcp = false;
          else this.udp = false;
          this.refusedErrno = err;
        }
        ok += single;
        continue;
      }
      // Switched off earlier in this batch: this frame's packets go one by one.
      ok += this.#singles(bufs, sizes, offset, i, hdrOff);
    }
    return ok;
  }

  // Writes head i and its members as plain frames; returns how many the kernel took.
  #singles(
    bufs: Uint8Array[],
    sizes: Int32Array,
    offset: number,
    i: number,
    hdrOff: number,
  ): number {
    const co = this.#co, hdrs = this.#hdrs;
    let ok = 0;
    for (let m = i; m >= 0; m = co.next[m]) {
      hdrs.fill(0, hdrOff, hdrOff + 10);
      if (this.#sink(hdrs, hdrOff, bufs, sizes, offset, m, this.#noMembers, 0) === 0) ok++;
    }
    return ok;
  }

  // Coalescing off: every packet is its own frame.
  #plainPlan(count: number): number {
    const co = this.#co;
    for (let i = 0; i < count; i++) {
      co.order[i] = i;
      co.role[i] = 0;
    }
    return count;
  }
}
