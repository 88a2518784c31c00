/**
 * Receive-side coalescing (what GRO does in a NIC driver, done here before a
 * TUN write): consecutive TCP segments of one connection, or UDP datagrams
 * of one flow, become one super-packet whose virtio_net_hdr tells the kernel
 * how it was put together (gso_type, gso_size, csum_start/offset), so the
 * kernel's stack handles one 64 KiB packet instead of forty.
 *
 * The rules follow the kernel's own GRO (net/ipv4/tcp_offload.c):
 * - TCP: same addresses, ports, ACK number, window, header length and
 *   options; IP header fields that must not change (TOS/traffic class, TTL,
 *   DF, IPv6 flow label); flags ACK or ACK|PSH only, PSH ends the packet;
 *   the next segment starts where the last one ended; every segment but the
 *   last has the first's payload size; no IPv4 options, no IPv6 extension
 *   headers, no fragments.
 * - UDP (only when the kernel takes USO): same addresses and ports, every
 *   datagram but the last of the first's size.
 * - Each segment's checksum is verified before it joins, because the merged
 *   packet goes up as CHECKSUM_PARTIAL and would never be checked again.
 * - Order within a connection never changes: a packet of the connection that
 *   cannot join closes its open super-packet, and frames are written at the
 *   position of their first packet.
 *
 * Pure and allocation-free after construction: the plan lives in typed
 * arrays, payloads stay in their slots (the writer gathers them with writev),
 * and only the first packet's header is rewritten — saved first, so a frame
 * the kernel refuses can be restored and written packet by packet.
 */
import { foldSum, internetChecksum, sumWords } from "./checksum.ts";
import {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  writePlainVnetHeader,
  writeVnetHeader,
} from "./vnet.ts";

const ACK = 0x10, PSH = 0x08;
/** Open super-packets tracked at once; more flows than this close the oldest. */
const MAX_OPEN = 16;
/** Largest IPv4 total length / IPv6 payload length. */
const MAX_IP = 0xffff;
/** Saved header bytes per frame: IPv6 (40) + TCP (60). */
const SAVE = 40 + 60;

/** What a packet became in the plan. */
export const GRO_SINGLE = 0, GRO_HEAD = 1, GRO_MEMBER = 2;

/** Plans and builds coalesced TUN writes for up to `capacity` packets per batch. */
export class Coalescer {
  /** Packets per batch this coalescer can plan. */
  readonly capacity: number;
  /** GRO_SINGLE, GRO_HEAD or GRO_MEMBER for each packet of the last plan. */
  readonly role: Uint8Array;
  /** Frames of the last plan, in write order: the index of a single or a head. */
  readonly order: Int32Array;
  /** For a head: packets merged behind it (0 for a single). */
  readonly members: Int32Array;
  /** For a head or member: the next member of its frame, -1 at the end. */
  readonly next: Int32Array;
  /** For a head: header bytes (IP + transport) that members skip. */
  readonly headerLength: Int32Array;
  /** For a head: the super-packet's total IP length. */
  readonly total: Int32Array;
  readonly #last: Int32Array; // for a head: its last member (or itself)
  readonly #gso: Int32Array; // for a head: payload size of each full segment
  readonly #nextSeq: Float64Array; // for a TCP head: the sequence number a joiner must have
  readonly #flags: Uint8Array; // for a head: bit 0 TCP, 1 IPv6, 2 PSH seen, 3 short tail, 4 head checksum verified
  readonly #open: Int32Array;
  #openCount = 0;
  readonly #saved: Uint8Array;
  readonly #savedOf: Int32Array; // head index → slot in #saved, per frame
  #frames = 0;

  /** Preallocates the plan for batches of up to `capacity` packets. */
  constructor(capacity: number) {
    this.capacity = capacity;
    this.role = new Uint8Array(capacity);
    this.order = new Int32Array(capacity);
    this.members = new Int32Array(capacity);
    this.next = new Int32Array(capacity);
    this.headerLength = new Int32Array(capacity);
    this.total = new Int32Array(capacity);
    this.#last = new Int32Array(capacity);
    this.#gso = new Int32Array(capacity);
    this.#nextSeq = new Float64Array(capacity);
    this.#flags = new Uint8Array(capacity);
    this.#open = new Int32Array(MAX_OPEN);
    this.#saved = new Uint8Array(capacity * SAVE);
    this.#savedOf = new Int32Array(capacity);
  }

  /**
   * Plans the batch `bufs[i][offset .. offset+sizes[i]]`, i < count (count ≤
   * capacity); `udp` allows UDP coalescing. Returns the number of frames;
   * see `order`, `role`, `members` and `next`. Nothing is modified yet.
   */
  plan(bufs: Uint8Array[], sizes: Int32Array, offset: number, count: number, udp: boolean): number {
    this.#openCount = 0;
    let frames = 0;
    for (let i = 0; i < count; i++) {
      this.role[i] = GRO_SINGLE;
      this.members[i] = 0;
      this.next[i] = -1;
      const b = bufs[i];
      const len = sizes[i];
      const kind = candidate(b, offset, len, udp);
      if (kind === NOT_IP_FLOW) {
        this.order[frames++] = i;
        continue;
      }
      // The open super-packet of this connection, if any.
      let slot = -1;
      for (let s = 0; s < this.#openCount; s++) {
        if (sameConnection(bufs[this.#open[s]], b, offset)) {
          slot = s;
          break;
        }
      }
      if (kind === CANDIDATE && slot >= 0 && this.#join(bufs, sizes, offset, this.#open[slot], i)) {
        continue;
      }
      if (slot >= 0) this.#close(slot); // order within a connection must hold
      this.order[frames++] = i;
      if (kind === CANDIDATE) this.#openHead(b, offset, len, i);
    }
    this.#frames = frames;
    return frames;
  }

  #openHead(b: Uint8Array, offset: number, len: number, i: number): void {
    const v6 = b[offset] >> 4 === 6;
    const ipHl = v6 ? 40 : 20;
    const tcp = b[offset + (v6 ? 6 : 9)] === 6;
    const t = offset + ipHl;
    const hl = ipHl + (tcp ? (b[t + 12] >> 4) * 4 : 8);
    this.headerLength[i] = hl;
    this.total[i] = len;
    this.#last[i] = i;
    this.#gso[i] = len - hl;
    this.#flags[i] = (tcp ? 1 : 0) | (v6 ? 2 : 0) | (tcp && (b[t + 13] & PSH) ? 4 : 0);
    if (tcp) this.#nextSeq[i] = (readU32(b, t + 4) + (len - hl)) % 0x1_0000_0000;
    if (this.#openCount === MAX_OPEN) this.#close(0);
    this.#open[this.#openCount++] = i;
  }

  #close(slot: number): void {
    this.#openCount--;
    for (let s = slot; s < this.#openCount; s++) this.#open[s] = this.#open[s + 1];
  }

  /** Appends packet i to head h when every rule allows; false leaves both untouched. */
  #join(bufs: Uint8Array[], sizes: Int32Array, offset: number, h: number, i: number): boolean {
    const hb = bufs[h], b = bufs[i];
    const flags = this.#flags[h];
    if (flags & (4 | 8)) return false; // PSH or a short segment already ended it
    const tcp = (flags & 1) !== 0;
    const v6 = (flags & 2) !== 0;
    const ipHl = v6 ? 40 : 20;
    const hl = this.headerLength[h];
    const len = sizes[i];
    const payload = len - hl;
    if (payload < 1 || payload > this.#gso[h]) return false;
    if (this.total[h] + payload > (v6 ? MAX_IP + 40 : MAX_IP)) return false;
    if (!sameIpFields(hb, b, offset, v6)) return false;
    const t = offset + ipHl;
    if (tcp) {
      if ((b[t + 12] >> 4) * 4 !== hl - ipHl) return false;
      if (readU32(b, t + 4) !== this.#nextSeq[h]) return false;
      // ACK number, window and options must match; flags may add PSH.
      for (let k = 8; k < 12; k++) if (b[t + k] !== hb[t + k]) return false;
      if (b[t + 14] !== hb[t + 14] || b[t + 15] !== hb[t + 15]) return false;
      for (let k = 20; k < hl - ipHl; k++) if (b[t + k] !== hb[t + k]) return false;
    }
    if ((flags & 16) === 0) {
      if (!transportChecksumValid(hb, offset, sizes[h], ipHl, tcp ? 6 : 17)) return false;
      this.#flags[h] |= 16;
    }
    if (!transportChecksumValid(b, offset, len, ipHl, tcp ? 6 : 17)) return false;
    this.role[h] = GRO_HEAD;
    this.role[i] = GRO_MEMBER;
    this.next[this.#last[h]] = i;
    this.#last[h] = i;
    this.members[h]++;
    this.total[h] += payload;
    if (tcp) {
      this.#nextSeq[h] = (this.#nextSeq[h] + payload) % 0x1_0000_0000;
      if (b[t + 13] & PSH) this.#flags[h] |= 4;
    }
    if (payload < this.#gso[h]) this.#flags[h] |= 8;
    return true;
  }

  /**
   * Prepares frame `k` of the last plan for writing and puts its virtio
   * header at `hdr[hdrOff ..]`: a single gets a plain one; a head gets the
   * super-packet's (and its own IP length and checksum, PSH, and the
   * pseudo-header sum in the transport checksum field, after its original
   * header bytes are saved). Returns the super-packet's length; the payloads
   * of a head's members follow theirs at `headerLength` in their own slots.
   */
  seal(
    k: number,
    bufs: Uint8Array[],
    sizes: Int32Array,
    offset: number,
    hdr: Uint8Array,
    hdrOff: number,
  ): number {
    const i = this.order[k];
    const b = bufs[i];
    if (this.role[i] !== GRO_HEAD) {
      writePlainVnetHeader(hdr, hdrOff);
      return sizes[i];
    }
    const flags = this.#flags[i];
    const tcp = (flags & 1) !== 0;
    const v6 = (flags & 2) !== 0;
    const ipHl = v6 ? 40 : 20;
    const hl = this.headerLength[i];
    const save = k * SAVE;
    this.#savedOf[i] = save;
    const saved = this.#saved;
    for (let k2 = 0; k2 < hl; k2++) saved[save + k2] = b[offset + k2];
    const total = this.total[i];
    if (v6) {
      b[offset + 4] = (total - 40) >> 8;
      b[offset + 5] = (total - 40) & 0xff;
    } else {
      b[offset + 2] = total >> 8;
      b[offset + 3] = total & 0xff;
      b[offset + 10] = b[offset + 11] = 0;
      const c = internetChecksum(b, offset, 20);
      b[offset + 10] = c >> 8;
      b[offset + 11] = c & 0xff;
    }
    const t = offset + ipHl;
    const l4Len = total - ipHl;
    const proto = tcp ? 6 : 17;
    let field: number;
    if (tcp) {
      if (flags & 4) b[t + 13] |= PSH;
      field = t + 16;
    } else {
      b[t + 4] = l4Len >> 8;
      b[t + 5] = l4Len & 0xff;
      field = t + 6;
    }
    // CHECKSUM_PARTIAL: the field carries the folded pseudo-header sum; the
    // kernel (or the egress NIC) adds the data when a checksum is needed.
    const pseudo = foldSum(addressSum(b, offset, v6, proto) + l4Len);
    b[field] = pseudo >> 8;
    b[field + 1] = pseudo & 0xff;
    writeVnetHeader(
      hdr,
      hdrOff,
      VNET_F_NEEDS_CSUM,
      tcp ? (v6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4) : VNET_GSO_UDP_L4,
      hl,
      this.#gso[i],
      ipHl,
      tcp ? 16 : 6,
    );
    return total;
  }

  /** Undoes seal(k) on a head (the kernel refused the frame): its original bytes come back. */
  unseal(k: number, bufs: Uint8Array[], offset: number): void {
    const i = this.order[k];
    if (this.role[i] !== GRO_HEAD) return;
    const hl = this.headerLength[i];
    const save = this.#savedOf[i];
    const b = bufs[i], saved = this.#saved;
    for (let k2 = 0; k2 < hl; k2++) b[offset + k2] = saved[save + k2];
  }

  /** True when head `i` of the last plan merges TCP segments (false: UDP datagrams). */
  isTcpHead(i: number): boolean {
    return (this.#flags[i] & 1) !== 0;
  }

  /** Frames in the last plan. */
  get frames(): number {
    return this.#frames;
  }
}

const NOT_IP_FLOW = 0, CANDIDATE = 1, SAME_FLOW_ONLY = 2;

/**
 * CANDIDATE: may join or start a super-packet. SAME_FLOW_ONLY: a TCP/UDP
 * packet of a connection that must not be merged (SYN/FIN/RST, no payload,
 * options in the IP header, ...) but still closes that connection's open
 * super-packet. NOT_IP_FLOW: anything else.
 */
function candidate(b: Uint8Array, off: number, len: number, udp: boolean): number {
  if (len < 28) return NOT_IP_FLOW;
  const v = b[off] >> 4;
  let ipHl: number, proto: number;
  if (v === 4) {
    proto = b[off + 9];
    if (proto !== 6 && proto !== 17) return NOT_IP_FLOW;
    const ihl = (b[off] & 0x0f) * 4;
    // Later fragments carry no ports; a first fragment or IP options still name the connection.
    if ((b[off + 6] & 0x1f) !== 0 || b[off + 7] !== 0 || ihl < 20 || ihl + 4 > len) {
      return NOT_IP_FLOW;
    }
    if (ihl !== 20 || (b[off + 6] & 0x20) !== 0) return SAME_FLOW_ONLY;
    if (((b[off + 2] << 8) | b[off + 3]) !== len) return SAME_FLOW_ONLY;
    ipHl = 20;
  } else if (v === 6) {
    if (len < 48) return NOT_IP_FLOW;
    proto = b[off + 6];
    if (proto !== 6 && proto !== 17) return NOT_IP_FLOW;
    if (((b[off + 4] << 8) | b[off + 5]) !== len - 40) return SAME_FLOW_ONLY;
    ipHl = 40;
  } else return NOT_IP_FLOW;
  const t = off + ipHl;
  if (proto === 6) {
    if (len < ipHl + 20) return NOT_IP_FLOW;
    const thl = (b[t + 12] >> 4) * 4;
    if (thl < 20 || ipHl + thl > len) return NOT_IP_FLOW;
    const flags = b[t + 13];
    if ((flags !== ACK && flags !== (ACK | PSH)) || len === ipHl + thl) return SAME_FLOW_ONLY;
    return CANDIDATE;
  }
  if (((b[t + 4] << 8) | b[t + 5]) !== len - ipHl) return SAME_FLOW_ONLY;
  if (!udp || len === ipHl + 8 || (b[t + 6] === 0 && b[t + 7] === 0)) return SAME_FLOW_ONLY;
  return CANDIDATE;
}

/** Same IP version, protocol, addresses and ports. */
function sameConnection(a: Uint8Array, b: Uint8Array, off: number): boolean {
  const v = a[off] >> 4;
  if (b[off] >> 4 !== v) return false;
  let ta: number, tb: number;
  if (v === 4) {
    if (a[off + 9] !== b[off + 9]) return false;
    for (let k = 12; k < 20; k++) if (a[off + k] !== b[off + k]) return false;
    ta = off + (a[off] & 0x0f) * 4;
    tb = off + (b[off] & 0x0f) * 4;
  } else {
    if (a[off + 6] !== b[off + 6]) return false;
    for (let k = 8; k < 40; k++) if (a[off + k] !== b[off + k]) return false;
    ta = tb = off + 40;
  }
  return a[ta] === b[tb] && a[ta + 1] === b[tb + 1] && a[ta + 2] === b[tb + 2] &&
    a[ta + 3] === b[tb + 3];
}

/** The IP fields a merged packet keeps from its first segment must be equal. */
function sameIpFields(a: Uint8Array, b: Uint8Array, off: number, v6: boolean): boolean {
  if (v6) {
    return a[off] === b[off] && a[off + 1] === b[off + 1] && a[off + 2] === b[off + 2] &&
      a[off + 3] === b[off + 3] && a[off + 7] === b[off + 7];
  }
  return a[off + 1] === b[off + 1] && (a[off + 6] & 0xe0) === (b[off + 6] & 0xe0) &&
    a[off + 8] === b[off + 8];
}

function addressSum(b: Uint8Array, off: number, v6: boolean, proto: number): number {
  return v6 ? sumWords(b, off + 8, 32, proto) : sumWords(b, off + 12, 8, proto);
}

/** True when the TCP/UDP checksum of the packet verifies (and the IPv4 header's too). */
function transportChecksumValid(
  b: Uint8Array,
  off: number,
  len: number,
  ipHl: number,
  proto: number,
): boolean {
  const v6 = ipHl === 40;
  if (!v6 && foldSum(sumWords(b, off, 20)) !== 0xffff) return false;
  const l4 = len - ipHl;
  return foldSum(sumWords(b, off + ipHl, l4, addressSum(b, off, v6, proto) + l4)) === 0xffff;
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}
