/**
 * Keyword lists: an admin's terms ("project falcon", "confidential") found
 * with Aho–Corasick, optionally only as whole words (a letter or digit on
 * either side means no match, so "scar" does not match inside "Oscar").
 */
import { redactGeneric } from "../redact.ts";
import { AhoCorasick } from "./aho_corasick.ts";
import type { Detector, Emit } from "./detector.ts";

/** True for a letter or digit of any script (the whole-word boundary test). */
export function isWordChar(ch: string | undefined): boolean {
  return ch !== undefined && /[\p{L}\p{N}]/u.test(ch);
}

/** The keyword list detector. */
export class KeywordDetector implements Detector {
  #ac: AhoCorasick;
  #terms: readonly string[];
  #wholeWord: boolean;

  constructor(terms: readonly string[], opts: { caseSensitive?: boolean; wholeWord?: boolean }) {
    this.#terms = terms;
    this.#ac = new AhoCorasick(terms, opts.caseSensitive ?? false);
    this.#wholeWord = opts.wholeWord ?? true;
  }

  /** Scans `text` once with the automaton. */
  scan(text: string, emit: Emit): void {
    this.#ac.search(text, (h) => {
      if (this.#wholeWord && (isWordChar(text[h.start - 1]) || isWordChar(text[h.end]))) return;
      emit(h.start, h.end, redactGeneric(this.#terms[h.term]));
    });
  }
}
