/**
 * Sliding-window replay filter for transport counters, the same shape as
 * wireguard-go's (RFC 6479 style ring of bit blocks): 8160 counters behind
 * the highest seen are tracked; older ones and repeats are rejected.
 *
 * Counters are JavaScript numbers. The protocol limit REJECT_AFTER_MESSAGES
 * (2^64 - 2^13 - 1) is above 2^53, so counters at or above 2^53 are rejected
 * too; a keypair lives at most 180 s, so no honest peer comes near either.
 */

const BLOCK_BITS = 32;
const RING_BLOCKS = 256;
const BLOCK_MASK = RING_BLOCKS - 1;

/** How far behind the newest counter a packet may still be accepted. */
export const REPLAY_WINDOW_SIZE = (RING_BLOCKS - 1) * BLOCK_BITS;

/** Largest counter accepted: min(REJECT_AFTER_MESSAGES - 1, 2^53 - 1). */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

/** Replay window for one receiving keypair. */
export class ReplayWindow {
  #ring = new Uint32Array(RING_BLOCKS);
  #last = 0;

  /** Forgets every counter seen. */
  reset(): void {
    this.#ring.fill(0);
    this.#last = 0;
  }

  /** Would `counter` be accepted? Does not record it (call before authenticating). */
  check(counter: number): boolean {
    if (counter > MAX_COUNTER) return false;
    if (counter > this.#last) return true;
    if (this.#last - counter > REPLAY_WINDOW_SIZE) return false;
    const block = Math.floor(counter / BLOCK_BITS) & BLOCK_MASK;
    return (this.#ring[block] & (1 << (counter % BLOCK_BITS))) === 0;
  }

  /**
   * Records `counter` after the packet authenticated; returns false when it
   * was a replay or outside the window.
   */
  accept(counter: number): boolean {
    if (counter > MAX_COUNTER) return false;
    const indexBlock = Math.floor(counter / BLOCK_BITS);
    if (counter > this.#last) {
      const current = Math.floor(this.#last / BLOCK_BITS);
      const diff = Math.min(indexBlock - current, RING_BLOCKS);
      for (let i = 1; i <= diff; i++) this.#ring[(current + i) & BLOCK_MASK] = 0;
      this.#last = counter;
    } else if (this.#last - counter > REPLAY_WINDOW_SIZE) {
      return false;
    }
    const block = indexBlock & BLOCK_MASK;
    const bit = 1 << (counter % BLOCK_BITS);
    const old = this.#ring[block];
    if (old & bit) return false;
    this.#ring[block] = old | bit;
    return true;
  }
}
