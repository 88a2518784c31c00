/**
 * Aho–Corasick multi-pattern search: every term of a keyword list found in
 * one pass over the text, in time linear in the text plus the matches,
 * however many terms there are. Case folding is per UTF-16 unit (a table for
 * the Basic Multilingual Plane), so positions in the folded text are the
 * positions in the original.
 */

/** One occurrence: the term's index and where it ends (exclusive). */
export interface TermHit {
  term: number;
  start: number;
  end: number;
}

const foldTable = new Uint16Array(65536);
for (let c = 0; c < 65536; c++) {
  const l = String.fromCharCode(c).toLowerCase();
  foldTable[c] = l.length === 1 ? l.charCodeAt(0) : c;
}

/** Folds one UTF-16 unit to lower case (identity when that would change the length). */
export function foldUnit(c: number): number {
  return foldTable[c];
}

/** A compiled automaton over a list of terms. */
export class AhoCorasick {
  // Trie as parallel arrays: per node a map of edges, the failure link, and the terms ending here.
  #next: Map<number, number>[] = [new Map()];
  #fail: number[] = [0];
  #out: number[][] = [[]];
  #lengths: number[];
  #fold: boolean;
  /** The root's edges as a flat table (0 = none): most of a text is read at the root. */
  #root = new Int32Array(65536);

  /** Builds the automaton; `caseSensitive` false folds terms and text to lower case. */
  constructor(terms: readonly string[], caseSensitive = false) {
    this.#fold = !caseSensitive;
    this.#lengths = terms.map((t) => t.length);
    terms.forEach((term, idx) => {
      let node = 0;
      for (let i = 0; i < term.length; i++) {
        const c = this.#unit(term.charCodeAt(i));
        let nx = this.#next[node].get(c);
        if (nx === undefined) {
          nx = this.#next.length;
          this.#next.push(new Map());
          this.#fail.push(0);
          this.#out.push([]);
          this.#next[node].set(c, nx);
        }
        node = nx;
      }
      if (term.length > 0) this.#out[node].push(idx);
    });
    for (const [c, child] of this.#next[0]) this.#root[c] = child;
    // Breadth-first failure links; outputs inherit along them.
    const queue: number[] = [];
    for (const child of this.#next[0].values()) queue.push(child);
    for (let q = 0; q < queue.length; q++) {
      const node = queue[q];
      for (const [c, child] of this.#next[node]) {
        let f = this.#fail[node];
        while (f !== 0 && !this.#next[f].has(c)) f = this.#fail[f];
        const target = this.#next[f].get(c);
        this.#fail[child] = target !== undefined && target !== child ? target : 0;
        this.#out[child] = this.#out[child].concat(this.#out[this.#fail[child]]);
        queue.push(child);
      }
    }
  }

  #unit(c: number): number {
    return this.#fold ? foldTable[c] : c;
  }

  /** Calls `onHit` for every occurrence of every term in `text`. */
  search(text: string, onHit: (hit: TermHit) => void): void {
    let node = 0;
    for (let i = 0; i < text.length; i++) {
      const c = this.#unit(text.charCodeAt(i));
      if (node === 0) {
        node = this.#root[c];
        if (node === 0) continue;
      } else {
        let nx = this.#next[node].get(c);
        while (nx === undefined && node !== 0) {
          node = this.#fail[node];
          nx = node === 0 ? (this.#root[c] || undefined) : this.#next[node].get(c);
        }
        node = nx ?? 0;
      }
      const out = this.#out[node];
      for (let k = 0; k < out.length; k++) {
        const term = out[k];
        onHit({ term, start: i + 1 - this.#lengths[term], end: i + 1 });
      }
    }
  }
}
