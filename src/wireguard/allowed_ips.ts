/**
 * Allowed-IPs table: longest-prefix match from address to peer, one binary
 * trie per family. The hot-path lookups read the address straight out of a
 * packet buffer, walk at most 32 or 128 nodes and allocate nothing.
 */
import { formatPrefix, parsePrefix, type Prefix } from "./ip.ts";

interface Node<T> {
  zero: Node<T> | null;
  one: Node<T> | null;
  value: T | null;
}

function node<T>(): Node<T> {
  return { zero: null, one: null, value: null };
}

/** Maps IP prefixes to values (peers) with longest-prefix-match lookups. */
export class AllowedIps<T> {
  #v4: Node<T> = node();
  #v6: Node<T> = node();

  /**
   * Sets the owner of a prefix ("10.0.0.0/24", "fd00::1"); a prefix already
   * owned by another value moves, as in wg(8). Throws on a malformed prefix.
   */
  insert(cidr: string, value: T): Prefix {
    const p = parsePrefix(cidr);
    if (!p) throw new RangeError(`Cannot add allowed IP "${cidr}": not an IPv4 or IPv6 prefix`);
    let n = p.addr.length === 4 ? this.#v4 : this.#v6;
    for (let i = 0; i < p.bits; i++) {
      const bit = (p.addr[i >> 3] >> (7 - (i & 7))) & 1;
      if (bit) n = n.one ??= node();
      else n = n.zero ??= node();
    }
    n.value = value;
    return p;
  }

  /** Removes every prefix owned by `value`. */
  removeValue(value: T): void {
    prune(this.#v4, value);
    prune(this.#v6, value);
  }

  /** Lists the prefixes owned by `value` as text. */
  prefixesOf(value: T): string[] {
    const out: string[] = [];
    collect(this.#v4, value, new Uint8Array(4), 0, out);
    collect(this.#v6, value, new Uint8Array(16), 0, out);
    return out;
  }

  /**
   * Every value's prefixes as text (each in the order `prefixesOf` gives),
   * in one walk of the tables: `prefixesOf` walks them whole for one value,
   * so asking it for each of N peers cost N walks — 200 ms for the stats of
   * 2,000 peers, on the edge's one thread.
   */
  prefixesByValue(): Map<T, string[]> {
    const out = new Map<T, string[]>();
    collectAll(this.#v4, new Uint8Array(4), 0, out);
    collectAll(this.#v6, new Uint8Array(16), 0, out);
    return out;
  }

  /** Longest-prefix match for an address given as text; null when none. */
  lookupText(address: string): T | null {
    const p = parsePrefix(address);
    if (!p) return null;
    return p.addr.length === 4 ? this.lookupV4(p.addr, 0) : this.lookupV6(p.addr, 0);
  }

  /** Longest-prefix match for the IPv4 address at `buf[off..off+4]`. */
  lookupV4(buf: Uint8Array, off: number): T | null {
    return walk(this.#v4, buf, off, 32);
  }

  /** Longest-prefix match for the IPv6 address at `buf[off..off+16]`. */
  lookupV6(buf: Uint8Array, off: number): T | null {
    return walk(this.#v6, buf, off, 128);
  }

  /** Looks up the destination of the IP packet at `buf[off..]`; null when none or malformed. */
  lookupDestination(buf: Uint8Array, off: number, len: number): T | null {
    const v = buf[off] >> 4;
    if (v === 4 && len >= 20) return walk(this.#v4, buf, off + 16, 32);
    if (v === 6 && len >= 40) return walk(this.#v6, buf, off + 24, 128);
    return null;
  }

  /** Looks up the source of the IP packet at `buf[off..]`; null when none or malformed. */
  lookupSource(buf: Uint8Array, off: number, len: number): T | null {
    const v = buf[off] >> 4;
    if (v === 4 && len >= 20) return walk(this.#v4, buf, off + 12, 32);
    if (v === 6 && len >= 40) return walk(this.#v6, buf, off + 8, 128);
    return null;
  }
}

function walk<T>(root: Node<T>, buf: Uint8Array, off: number, bits: number): T | null {
  let n: Node<T> | null = root;
  let best: T | null = root.value;
  for (let i = 0; i < bits; i++) {
    const bit = (buf[off + (i >> 3)] >> (7 - (i & 7))) & 1;
    n = bit ? n.one : n.zero;
    if (n === null) return best;
    if (n.value !== null) best = n.value;
  }
  return best;
}

/** Clears `value` below `n`; returns true when `n` became empty and can be dropped. */
function prune<T>(n: Node<T>, value: T): boolean {
  if (n.value === value) n.value = null;
  if (n.zero && prune(n.zero, value)) n.zero = null;
  if (n.one && prune(n.one, value)) n.one = null;
  return n.value === null && n.zero === null && n.one === null;
}

function collectAll<T>(n: Node<T>, addr: Uint8Array, depth: number, out: Map<T, string[]>): void {
  if (n.value !== null) {
    const text = formatPrefix({ addr: addr.slice(), bits: depth } as Prefix);
    const list = out.get(n.value);
    if (list) list.push(text);
    else out.set(n.value, [text]);
  }
  for (const [child, bit] of [[n.zero, 0], [n.one, 1]] as const) {
    if (!child) continue;
    const byte = depth >> 3, mask = 0x80 >> (depth & 7);
    if (bit) addr[byte] |= mask;
    collectAll(child, addr, depth + 1, out);
    addr[byte] &= ~mask;
  }
}

function collect<T>(n: Node<T>, value: T, addr: Uint8Array, depth: number, out: string[]): void {
  if (n.value === value) out.push(formatPrefix({ addr: addr.slice(), bits: depth } as Prefix));
  for (const [child, bit] of [[n.zero, 0], [n.one, 1]] as const) {
    if (!child) continue;
    const byte = depth >> 3, mask = 0x80 >> (depth & 7);
    if (bit) addr[byte] |= mask;
    collect(child, value, addr, depth + 1, out);
    addr[byte] &= ~mask;
  }
}
