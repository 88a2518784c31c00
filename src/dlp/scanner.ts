/**
 * The content scanner: dictionaries compiled once into detectors, then run
 * over texts. Each detector makes one linear pass; proximity keeps only the
 * findings with one of the dictionary's terms close by; the threshold is
 * applied to the total over every text of a file (all the parts of a DOCX,
 * all the members of a ZIP), so five card numbers spread over two sheets
 * still count as five.
 */
import { InputError } from "../errors.ts";
import { AhoCorasick } from "./detectors/aho_corasick.ts";
import { CardDetector } from "./detectors/card.ts";
import type { Detector } from "./detectors/detector.ts";
import { EdmDetector } from "./detectors/edm.ts";
import { EmailDetector } from "./detectors/email.ts";
import { IbanDetector } from "./detectors/iban.ts";
import { KeywordDetector } from "./detectors/keywords.ts";
import { RegexDetector } from "./detectors/regex.ts";
import { SsnDetector } from "./detectors/ssn.ts";
import type { DictionaryKind, DictionaryMatch, DictionarySpec } from "./types.ts";

/** Samples kept per dictionary. */
export const MAX_SAMPLES = 3;

interface Compiled {
  name: string;
  kind: DictionaryKind;
  threshold: number;
  detector: Detector;
  proximity: { ac: AhoCorasick; window: number } | null;
}

function detectorFor(spec: DictionarySpec): Detector {
  const d = spec.def;
  switch (d.kind) {
    case "credit_card":
      return new CardDetector();
    case "iban":
      return new IbanDetector();
    case "us_ssn":
      return new SsnDetector();
    case "email":
      return new EmailDetector();
    case "regex":
      return new RegexDetector(d.pattern ?? "", d.caseSensitive ?? true, d.name);
    case "keywords":
      return new KeywordDetector(d.terms ?? [], {
        caseSensitive: d.caseSensitive ?? false,
        wholeWord: d.wholeWord,
      });
    case "edm":
      if (!spec.edm) {
        throw new InputError(
          "edm_missing",
          `Cannot use dictionary "${d.name}": no CSV has been uploaded for it yet`,
        );
      }
      return new EdmDetector(spec.edm, d.minColumns);
  }
}

/** Running totals of one file's scan (across its texts). */
export class ScanTally {
  #byName = new Map<string, { kind: DictionaryKind; count: number; samples: string[] }>();
  constructor(private thresholds: Map<string, number>) {}

  /** Adds findings of one dictionary. */
  add(name: string, kind: DictionaryKind, count: number, samples: string[]): void {
    let t = this.#byName.get(name);
    if (!t) {
      t = { kind, count: 0, samples: [] };
      this.#byName.set(name, t);
    }
    t.count += count;
    for (const s of samples) {
      if (t.samples.length < MAX_SAMPLES && !t.samples.includes(s)) t.samples.push(s);
    }
  }

  /** Adds another tally (an embedded file's) to this one. */
  merge(other: ScanTally): void {
    for (const m of other.matches()) this.add(m.dictionary, m.kind, m.count, m.samples);
  }

  /** Every dictionary with at least one finding, with its threshold verdict. */
  matches(): DictionaryMatch[] {
    return [...this.#byName.entries()].filter(([, t]) => t.count > 0).map(([name, t]) => ({
      dictionary: name,
      kind: t.kind,
      count: t.count,
      samples: t.samples.slice(),
      triggered: t.count >= (this.thresholds.get(name) ?? 1),
    }));
  }
}

/** Dictionaries compiled into detectors; immutable, shared by every scan. */
export class Scanner {
  #dicts: Compiled[];
  #thresholds: Map<string, number>;

  /** Compiles `specs`; throws an InputError naming the dictionary that cannot be compiled. */
  constructor(specs: readonly DictionarySpec[]) {
    this.#dicts = specs.map((s) => ({
      name: s.def.name,
      kind: s.def.kind,
      threshold: s.def.threshold,
      detector: detectorFor(s),
      proximity: s.def.proximity
        ? { ac: new AhoCorasick(s.def.proximity.terms, false), window: s.def.proximity.window }
        : null,
    }));
    this.#thresholds = new Map(this.#dicts.map((d) => [d.name, d.threshold]));
  }

  /** Names of the compiled dictionaries. */
  get names(): string[] {
    return this.#dicts.map((d) => d.name);
  }

  /** A fresh tally for one file. */
  tally(): ScanTally {
    return new ScanTally(this.#thresholds);
  }

  /**
   * Scans one text into `tally`. `countFrom` skips findings that end before
   * that offset (the overlap a streaming caller already scanned).
   */
  scanText(text: string, tally: ScanTally, countFrom = 0, only?: ReadonlySet<string>): void {
    for (const d of this.#dicts) {
      if (only && !only.has(d.name)) continue;
      const found: { start: number; end: number; sample: string }[] = [];
      d.detector.scan(text, (start, end, sample) => {
        if (end > countFrom) found.push({ start, end, sample });
      });
      let kept = found;
      if (d.proximity && found.length) {
        kept = nearTerms(text, found, d.proximity.ac, d.proximity.window);
      }
      if (kept.length) tally.add(d.name, d.kind, kept.length, kept.map((f) => f.sample));
    }
  }
}

/** Longest proximity term (types.ts caps terms at 100 characters). */
const MAX_TERM = 100;

/**
 * The findings with a proximity term within `w` characters: term hits sorted
 * by start once, then a binary search per finding, so the cost stays
 * proportional to findings plus hits nearby, never findings × hits.
 */
function nearTerms<T extends { start: number; end: number }>(
  text: string,
  found: T[],
  ac: AhoCorasick,
  w: number,
): T[] {
  const hits: { start: number; end: number }[] = [];
  ac.search(text, (h) => hits.push({ start: h.start, end: h.end }));
  hits.sort((a, b) => a.start - b.start);
  return found.filter((f) => {
    const from = f.start - w - MAX_TERM;
    let lo = 0, hi = hits.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (hits[mid].start < from) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; k < hits.length && hits[k].start <= f.end + w; k++) {
      if (hits[k].end >= f.start - w) return true;
    }
    return false;
  });
}
