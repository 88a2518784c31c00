/**
 * E-mail addresses: found from each "@" outwards — a local part of up to 64
 * characters to the left, a domain of labels to the right with an alphabetic
 * top-level label — so every character is looked at a bounded number of
 * times and no pattern can backtrack.
 */
import { redactEmail } from "../redact.ts";
import type { Detector, Emit } from "./detector.ts";

const LOCAL = new Set(
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-'".split(""),
);
const isDomainChar = (c: string) => /[A-Za-z0-9.-]/.test(c);

/** The e-mail address detector. */
export class EmailDetector implements Detector {
  /** Scans `text`; each "@" looks at most 64 characters left and 253 right. */
  scan(text: string, emit: Emit): void {
    let from = 0;
    let lastEnd = 0;
    for (;;) {
      const at = text.indexOf("@", from);
      if (at < 0) return;
      from = at + 1;
      let s = at;
      while (s > lastEnd && at - s < 64 && LOCAL.has(text[s - 1])) s--;
      while (s < at && text[s] === ".") s++;
      if (s === at || text[at - 1] === ".") continue;
      let e = at + 1;
      while (e < text.length && e - at <= 253 && isDomainChar(text[e])) e++;
      while (e > at + 1 && (text[e - 1] === "." || text[e - 1] === "-")) e--;
      const domain = text.slice(at + 1, e);
      const labels = domain.split(".");
      if (labels.length < 2) continue;
      if (labels.some((l) => l.length === 0 || l.length > 63 || l.startsWith("-"))) continue;
      if (!/^[A-Za-z]{2,24}$/.test(labels[labels.length - 1])) continue;
      emit(s, e, redactEmail(text.slice(s, e)));
      lastEnd = e;
      from = e;
    }
  }
}
