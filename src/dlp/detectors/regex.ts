/**
 * Custom patterns, evaluated with RE2 (`re2js`): matching time is linear in
 * the text whatever the admin typed, because RE2 has no backtracking (and so
 * no back-references or look-around, which compile() refuses with a
 * sentence). A pattern that can match the empty string is refused too: it
 * would "match" everywhere.
 */
import { RE2JS } from "re2js";
import { InputError } from "../../errors.ts";
import { redactGeneric } from "../redact.ts";
import type { Detector, Emit } from "./detector.ts";

/** Most findings one pattern reports per text (the rest are not looked for). */
export const MAX_REGEX_HITS = 100_000;

/** Compiles an RE2 pattern or throws an InputError naming the dictionary and the problem. */
export function compileRe2(pattern: string, caseSensitive: boolean, dictionary: string): RE2JS {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern, caseSensitive ? 0 : RE2JS.CASE_INSENSITIVE);
  } catch (err) {
    throw new InputError(
      "invalid_pattern",
      `Cannot use the pattern of dictionary "${dictionary}": ${(err as Error).message}`,
    );
  }
  if (re.matches("")) {
    throw new InputError(
      "invalid_pattern",
      `Cannot use the pattern of dictionary "${dictionary}": it matches the empty text`,
    );
  }
  return re;
}

/** The custom pattern detector. */
export class RegexDetector implements Detector {
  #re: RE2JS;
  constructor(pattern: string, caseSensitive: boolean, dictionary: string) {
    this.#re = compileRe2(pattern, caseSensitive, dictionary);
  }

  /** Reports each non-overlapping match, left to right. */
  scan(text: string, emit: Emit): void {
    const m = this.#re.matcher(text);
    let hits = 0;
    while (hits < MAX_REGEX_HITS && m.find()) {
      const s = m.start(), e = m.end();
      if (e === s) continue;
      emit(s, e, redactGeneric(text.slice(s, Math.min(e, s + 200))));
      hits++;
    }
  }
}
