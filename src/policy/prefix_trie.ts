/**
 * A binary prefix trie that maps IP prefixes to small integers (segment
 * indexes) and, for an address, yields every prefix that contains it — not
 * only the longest, because an address can sit in several application
 * segments at once (a /8 segment and a /24 inside it).
 *
 * Built once per policy version, then frozen into typed arrays, so a lookup
 * walks at most 32 (IPv4) or 128 (IPv6) nodes over Int32Arrays and
 * allocates nothing but the caller's output array: with 10,000 segments a
 * lookup costs the same as with ten.
 */

/** Collects, for one family, the values of every prefix containing an address. */
export class PrefixTrie {
  #zero: number[] = [-1];
  #one: number[] = [-1];
  #values = new Map<number, number[]>();
  #frozen: {
    zero: Int32Array;
    one: Int32Array;
    start: Int32Array;
    end: Int32Array;
    values: Int32Array;
  } | null = null;

  /** Adds `value` for the prefix of `bits` leading bits of `addr` (4 or 16 bytes). */
  insert(addr: Uint8Array, bits: number, value: number): void {
    if (this.#frozen) throw new Error("Cannot insert into a frozen prefix trie");
    let n = 0;
    for (let i = 0; i < bits; i++) {
      const bit = (addr[i >> 3] >> (7 - (i & 7))) & 1;
      const next = bit ? this.#one : this.#zero;
      if (next[n] < 0) {
        next[n] = this.#zero.length;
        this.#zero.push(-1);
        this.#one.push(-1);
      }
      n = next[n];
    }
    const list = this.#values.get(n);
    if (list) {
      if (!list.includes(value)) list.push(value);
    } else this.#values.set(n, [value]);
  }

  /** Number of trie nodes (for tests and sizing). */
  get nodeCount(): number {
    return this.#zero.length;
  }

  /** Turns the trie into typed arrays; further inserts throw. */
  freeze(): this {
    const nodes = this.#zero.length;
    const start = new Int32Array(nodes);
    const end = new Int32Array(nodes);
    let total = 0;
    for (const v of this.#values.values()) total += v.length;
    const values = new Int32Array(total);
    let at = 0;
    for (let n = 0; n < nodes; n++) {
      start[n] = at;
      for (const v of this.#values.get(n) ?? []) values[at++] = v;
      end[n] = at;
    }
    this.#frozen = {
      zero: Int32Array.from(this.#zero),
      one: Int32Array.from(this.#one),
      start,
      end,
      values,
    };
    this.#zero = [];
    this.#one = [];
    this.#values.clear();
    return this;
  }

  /**
   * Appends to `out` the value of every prefix that holds the address at
   * `buf[off .. off + bits/8]`, shortest prefix first.
   */
  lookup(buf: Uint8Array, off: number, bits: number, out: number[]): void {
    const f = this.#frozen;
    if (!f) throw new Error("Cannot look up in a prefix trie before freeze()");
    let n = 0;
    for (let i = 0;; i++) {
      for (let k = f.start[n]; k < f.end[n]; k++) out.push(f.values[k]);
      if (i === bits) return;
      const bit = (buf[off + (i >> 3)] >> (7 - (i & 7))) & 1;
      n = bit ? f.one[n] : f.zero[n];
      if (n < 0) return;
    }
  }
}
