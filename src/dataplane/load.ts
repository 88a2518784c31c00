/**
 * Handshake flood detection for the pump: pure counting over received
 * batches, so it is tested with tables and a fake clock.
 *
 * Each initiation costs ~0.5 ms of X25519 + BLAKE2s on the pump's one
 * thread, so the initiations of a batch are counted before any is processed:
 * more than `batchThreshold` in one batch, or more than `rateThreshold` in a
 * second, puts the device under load (initiations then need a cookie, mac2)
 * for this very batch. Like wireguard-go, load lasts until 1 s after the rate
 * drops.
 */

/** Size of a WireGuard handshake initiation (message type 1). */
const INITIATION_SIZE = 148;
/** Default: more initiations than this in one receive batch means load. */
export const LOAD_BATCH_THRESHOLD = 32;
/** Default: more initiations than this per second means load. */
export const LOAD_RATE_THRESHOLD = 100;
/** Load mode stays on this long after the initiation rate drops (wireguard-go: 1 s). */
export const UNDER_LOAD_HOLD_MS = 1000;

/** Counts initiations and says when load starts and ends. */
export class HandshakeLoad {
  readonly #batch: number;
  readonly #rate: number;
  #windowStart = -Infinity;
  #windowCount = 0;
  #under = false;
  #until = 0;

  /** Thresholds per batch and per second. */
  constructor(batchThreshold = LOAD_BATCH_THRESHOLD, rateThreshold = LOAD_RATE_THRESHOLD) {
    this.#batch = batchThreshold;
    this.#rate = rateThreshold;
  }

  /** True while initiations need a cookie. */
  get underLoad(): boolean {
    return this.#under;
  }

  /** Monotonic ms at which load ends unless more initiations come (meaningful while under load). */
  get until(): number {
    return this.#until;
  }

  /** Initiations seen in the last second's window (for the log). */
  get perSecond(): number {
    return this.#windowCount;
  }

  /** How many of the datagrams bufs[i][0 .. sizes[i]], i < n, are handshake initiations. */
  count(bufs: Uint8Array[], sizes: Int32Array, n: number): number {
    let inits = 0;
    for (let i = 0; i < n; i++) {
      const s = bufs[i];
      if (sizes[i] === INITIATION_SIZE && s[0] === 1 && s[1] === 0 && s[2] === 0 && s[3] === 0) {
        inits++;
      }
    }
    return inits;
  }

  /** Notes `inits` initiations received at `now`; true when this turned load on. */
  note(inits: number, now: number): boolean {
    if (inits === 0) return false;
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    this.#windowCount += inits;
    if (inits <= this.#batch && this.#windowCount <= this.#rate) return false;
    this.#until = now + UNDER_LOAD_HOLD_MS;
    if (this.#under) return false;
    this.#under = true;
    return true;
  }

  /** True when load has just ended at `now`. */
  expire(now: number): boolean {
    if (!this.#under || now < this.#until) return false;
    this.#under = false;
    return true;
  }
}
