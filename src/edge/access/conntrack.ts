/**
 * The edge's connection tracker: a bounded table of flows (5-tuples) with
 * the verdict enforcement reached for each, so only a flow's first packet
 * is evaluated against the policy; every later packet, in either
 * direction, costs one hash lookup.
 *
 * Layout, for the data path's sake: keys and per-flow fields live in typed
 * arrays indexed by a slot number; an open-addressing hash index (linear
 * probing, backward-shift deletion, load ≤ 0.5) maps a key to its slot.
 * Nothing is allocated per packet. Lookups fill a caller-owned FlowKey.
 *
 * TCP is tracked just enough for timeouts: SYN seen → established once the
 * other side answered → closing after a FIN → closed after a RST, each with
 * its own idle timeout, so a table full of dead connections empties itself.
 * UDP and ICMP flows are "new" until the other side answers, then
 * "replied". When the table is full a clock hand evicts the first expired
 * flow, or the first not used since its last pass (second chance): old idle
 * flows go before busy ones, and an eviction costs O(1) amortised.
 */
import type { Clock } from "../../clock.ts";

/** Words in a flow key: source address (4), destination (4), ports, family and protocol. */
export const KEY_WORDS = 10;

/**
 * A flow key: words 0–3 source address, 4–7 destination address (IPv4 in
 * word 0 / 4, the rest 0), word 8 = source port << 16 | destination port
 * (ICMP echo: the identifier twice; fragments: the IP identification),
 * word 9 = family << 8 | protocol (| 0x10000 for a fragment key).
 */
export type FlowKey = Uint32Array;

/** A new, zeroed flow key. */
export function newFlowKey(): FlowKey {
  return new Uint32Array(KEY_WORDS);
}

/** Writes into `out` the key of the reverse direction of `k`. */
export function reverseKey(k: FlowKey, out: FlowKey): FlowKey {
  for (let i = 0; i < 4; i++) {
    out[i] = k[4 + i];
    out[4 + i] = k[i];
  }
  out[8] = ((k[8] & 0xffff) << 16 | (k[8] >>> 16)) >>> 0;
  out[9] = k[9];
  return out;
}

/** Flow states. */
export const FLOW = Object.freeze(
  {
    /** TCP: the originator's SYN seen, no answer yet (or UDP/ICMP: one direction only). */
    NEW: 1,
    /** TCP: the other side answered. UDP/ICMP: replied. */
    ESTABLISHED: 2,
    /** TCP: a FIN was seen. */
    CLOSING: 3,
    /** TCP: a RST was seen. */
    CLOSED: 4,
  } as const,
);

/** Idle timeouts in ms. */
export interface FlowTimeouts {
  tcpNew: number;
  tcpEstablished: number;
  tcpClosing: number;
  tcpClosed: number;
  udpNew: number;
  udpReplied: number;
  icmp: number;
  /** Flows that were denied (so retries are cheap but decided again soon). */
  denied: number;
  /** Fragment keys (the first fragment's verdict for the rest). */
  fragment: number;
}

/** Defaults: close to Linux's, with a shorter established timeout (the table is bounded). */
export const DEFAULT_TIMEOUTS: FlowTimeouts = Object.freeze({
  tcpNew: 30_000,
  tcpEstablished: 3_600_000,
  tcpClosing: 30_000,
  tcpClosed: 10_000,
  udpNew: 30_000,
  udpReplied: 180_000,
  icmp: 30_000,
  denied: 10_000,
  fragment: 10_000,
});

const TCP = 6;
const UDP = 17;
const FIN = 0x01, SYN = 0x02, RST = 0x04, ACK = 0x10;

/** Options of a FlowTable. */
export interface FlowTableOptions {
  /** Most flows held (default 65,536). */
  capacity?: number;
  /**
   * Most flows one device holds (default: a quarter of the capacity, at
   * least 1,024): past it the device's own least-used flow makes room, so
   * one device opening flows by the thousand cannot push the others' out.
   */
  perDevice?: number;
  clock: Clock;
  timeouts?: Partial<FlowTimeouts>;
}

/** Counters of the table. */
export interface FlowTableStats {
  inserted: number;
  evicted: number;
  expired: number;
  removed: number;
}

/** The flow table. Slots are small integers; -1 means "none". */
export class FlowTable {
  readonly capacity: number;
  readonly timeouts: FlowTimeouts;
  readonly #clock: Clock;
  readonly #keys: Uint32Array;
  readonly #hash: Uint32Array;
  /** FLOW state; 0 = free slot. */
  readonly state: Uint8Array;
  /** 1 allowed, 2 denied. */
  readonly verdict: Uint8Array;
  /** Second-chance bit for eviction. */
  readonly #ref: Uint8Array;
  /** Policy generation the verdict was reached under. */
  readonly gen: Uint32Array;
  /** Device generation the verdict was reached under. */
  readonly devGen: Uint32Array;
  /** Device handle of the originator. */
  readonly dev: Int32Array;
  /** Monotonic ms after which the flow is gone. */
  readonly #expires: Float64Array;
  /** Per-flow data the owner attaches (e.g. the peer to forward to). */
  readonly data: unknown[];
  readonly #index: Int32Array;
  readonly #mask: number;
  readonly #free: Int32Array;
  #freeCount: number;
  #hand = 0;
  #size = 0;
  readonly stats: FlowTableStats = { inserted: 0, evicted: 0, expired: 0, removed: 0 };
  /** Most flows per device. */
  readonly perDevice: number;
  /** Flows held per device handle (grown as handles appear). */
  #perDev = new Int32Array(64);

  /** Makes an empty table. */
  constructor(o: FlowTableOptions) {
    const cap = Math.max(4, Math.floor(o.capacity ?? 65_536));
    this.capacity = cap;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...o.timeouts };
    this.#clock = o.clock;
    this.#keys = new Uint32Array(cap * KEY_WORDS);
    this.#hash = new Uint32Array(cap);
    this.state = new Uint8Array(cap);
    this.verdict = new Uint8Array(cap);
    this.#ref = new Uint8Array(cap);
    this.gen = new Uint32Array(cap);
    this.devGen = new Uint32Array(cap);
    this.dev = new Int32Array(cap);
    this.#expires = new Float64Array(cap);
    this.data = new Array(cap).fill(null);
    let size = 1;
    while (size < cap * 2) size <<= 1;
    this.#index = new Int32Array(size).fill(-1);
    this.#mask = size - 1;
    this.#free = new Int32Array(cap);
    for (let i = 0; i < cap; i++) this.#free[i] = cap - 1 - i;
    this.#freeCount = cap;
    this.perDevice = Math.min(cap, Math.max(1, Math.floor(o.perDevice ?? Math.max(1024, cap / 4))));
  }

  /** Flows held now. */
  get size(): number {
    return this.#size;
  }

  /** The key words of a slot (a view; do not keep it). */
  keyOf(slot: number): Uint32Array {
    return this.#keys.subarray(slot * KEY_WORDS, slot * KEY_WORDS + KEY_WORDS);
  }

  /** The slot holding `key`, or -1; an expired flow is removed and not found. */
  lookup(key: FlowKey): number {
    const h = hashKey(key);
    const mask = this.#mask;
    const keys = this.#keys;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const slot = this.#index[i];
      if (slot < 0) return -1;
      if (this.#hash[slot] !== h) continue;
      const b = slot * KEY_WORDS;
      if (
        keys[b + 8] === key[8] && keys[b + 9] === key[9] && keys[b] === key[0] &&
        keys[b + 4] === key[4] && keys[b + 1] === key[1] && keys[b + 2] === key[2] &&
        keys[b + 3] === key[3] && keys[b + 5] === key[5] && keys[b + 6] === key[6] &&
        keys[b + 7] === key[7]
      ) {
        if (this.#expires[slot] <= this.#clock.monotonic()) {
          this.stats.expired++;
          this.#removeAt(i, slot);
          return -1;
        }
        this.#ref[slot] = 1;
        return slot;
      }
    }
  }

  /**
   * Adds a flow (the caller looked it up first and found none); evicts when
   * full. The flow starts in state NEW with the given verdict.
   */
  insert(key: FlowKey, allowed: boolean, dev: number, gen: number, devGen: number): number {
    if (dev >= this.#perDev.length) {
      const grown = new Int32Array(Math.max(dev + 1, this.#perDev.length * 2));
      grown.set(this.#perDev);
      this.#perDev = grown;
    }
    if (this.#perDev[dev] >= this.perDevice) this.#evictOne(dev);
    if (this.#freeCount === 0) this.#evictOne();
    const slot = this.#free[--this.#freeCount];
    const b = slot * KEY_WORDS;
    for (let i = 0; i < KEY_WORDS; i++) this.#keys[b + i] = key[i];
    const h = hashKey(key);
    this.#hash[slot] = h;
    this.state[slot] = FLOW.NEW;
    this.verdict[slot] = allowed ? 1 : 2;
    this.#ref[slot] = 1;
    this.gen[slot] = gen;
    this.devGen[slot] = devGen;
    this.dev[slot] = dev;
    this.#perDev[dev]++;
    this.data[slot] = null;
    const mask = this.#mask;
    let i = h & mask;
    while (this.#index[i] >= 0) i = (i + 1) & mask;
    this.#index[i] = slot;
    this.#size++;
    this.stats.inserted++;
    this.#touch(slot);
    return slot;
  }

  /** Hands a flow to another device (its address passed on); keeps the per-device counts right. */
  setDevice(slot: number, dev: number): void {
    const was = this.dev[slot];
    if (was === dev || this.state[slot] === 0) return;
    if (dev >= this.#perDev.length) {
      const grown = new Int32Array(Math.max(dev + 1, this.#perDev.length * 2));
      grown.set(this.#perDev);
      this.#perDev = grown;
    }
    this.#perDev[was]--;
    this.#perDev[dev]++;
    this.dev[slot] = dev;
  }

  /** Flows device `dev` holds. */
  flowsOf(dev: number): number {
    return dev < this.#perDev.length ? this.#perDev[dev] : 0;
  }

  /** Records a new verdict for a flow decided again (policy or posture changed). */
  redecide(slot: number, allowed: boolean, gen: number, devGen: number): void {
    this.verdict[slot] = allowed ? 1 : 2;
    this.gen[slot] = gen;
    this.devGen[slot] = devGen;
    this.#touch(slot);
  }

  /**
   * Notes a packet of the flow: `reply` when it travels against the
   * originator's direction, `tcpFlags` for TCP. Moves the state and the
   * idle timeout on.
   */
  seen(slot: number, reply: boolean, tcpFlags: number): void {
    const proto = this.#keys[slot * KEY_WORDS + 9] & 0xff;
    const st = this.state[slot];
    if (proto === TCP) {
      if (tcpFlags & RST) this.state[slot] = FLOW.CLOSED;
      else if (tcpFlags & FIN) {
        if (st !== FLOW.CLOSED) this.state[slot] = FLOW.CLOSING;
      } else if (reply && st === FLOW.NEW && (tcpFlags & (SYN | ACK))) {
        this.state[slot] = FLOW.ESTABLISHED;
      } else if (!reply && st === FLOW.NEW && !(tcpFlags & SYN) && (tcpFlags & ACK)) {
        // Picked up mid-stream (e.g. after an edge restart): it is established.
        this.state[slot] = FLOW.ESTABLISHED;
      }
    } else if (reply && st === FLOW.NEW) this.state[slot] = FLOW.ESTABLISHED;
    this.#touch(slot);
  }

  /** Removes a flow. */
  remove(slot: number): void {
    if (this.state[slot] === 0) return;
    const h = this.#hash[slot];
    const mask = this.#mask;
    for (let i = h & mask;; i = (i + 1) & mask) {
      const s = this.#index[i];
      if (s < 0) return;
      if (s === slot) {
        this.stats.removed++;
        this.#removeAt(i, slot);
        return;
      }
    }
  }

  /** Removes up to `budget` expired flows, scanning from the clock hand; returns how many. */
  sweep(budget = 4096): number {
    const now = this.#clock.monotonic();
    let removed = 0;
    for (let n = 0; n < Math.min(budget, this.capacity); n++) {
      const slot = this.#hand;
      this.#hand = (this.#hand + 1) % this.capacity;
      if (this.state[slot] !== 0 && this.#expires[slot] <= now) {
        this.stats.expired++;
        this.remove(slot);
        this.stats.removed--;
        removed++;
      }
    }
    return removed;
  }

  /** Calls `fn` for every live flow (diagnostics; not for the data path). */
  forEach(fn: (slot: number) => void): void {
    for (let s = 0; s < this.capacity; s++) if (this.state[s] !== 0) fn(s);
  }

  #touch(slot: number): void {
    const t = this.timeouts;
    const proto = this.#keys[slot * KEY_WORDS + 9];
    let ms: number;
    if (this.verdict[slot] === 2) ms = t.denied;
    else if (proto & 0x10000) ms = t.fragment;
    else if ((proto & 0xff) === TCP) {
      const st = this.state[slot];
      ms = st === FLOW.ESTABLISHED
        ? t.tcpEstablished
        : st === FLOW.CLOSING
        ? t.tcpClosing
        : st === FLOW.CLOSED
        ? t.tcpClosed
        : t.tcpNew;
    } else if ((proto & 0xff) === UDP) {
      ms = this.state[slot] === FLOW.ESTABLISHED ? t.udpReplied : t.udpNew;
    } else ms = t.icmp;
    this.#expires[slot] = this.#clock.monotonic() + ms;
  }

  /** Evicts one flow (of device `only`, when given): expired first, else one without a second chance. */
  #evictOne(only = -1): void {
    const now = this.#clock.monotonic();
    for (let n = 0; n < this.capacity * 2; n++) {
      const slot = this.#hand;
      this.#hand = (this.#hand + 1) % this.capacity;
      if (this.state[slot] === 0 || (only >= 0 && this.dev[slot] !== only)) continue;
      if (this.#expires[slot] > now && this.#ref[slot]) {
        this.#ref[slot] = 0;
        continue;
      }
      this.stats.evicted++;
      this.remove(slot);
      this.stats.removed--;
      return;
    }
  }

  /** Backward-shift deletion of index position `i` holding `slot`. */
  #removeAt(i: number, slot: number): void {
    const mask = this.#mask;
    const index = this.#index;
    let hole = i;
    for (let j = (i + 1) & mask;; j = (j + 1) & mask) {
      const s = index[j];
      if (s < 0) break;
      const home = this.#hash[s] & mask;
      // Entry at j may fill the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (stays) continue;
      index[hole] = s;
      hole = j;
    }
    index[hole] = -1;
    this.state[slot] = 0;
    this.verdict[slot] = 0;
    this.data[slot] = null;
    this.#free[this.#freeCount++] = slot;
    this.#size--;
    this.#perDev[this.dev[slot]]--;
  }
}

/** Hash of a flow key (FNV-1a over the words, then a final mix). */
export function hashKey(k: FlowKey): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < KEY_WORDS; i++) h = Math.imul(h ^ k[i], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
