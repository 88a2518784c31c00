/**
 * Payment card numbers: 13 to 19 digits, bare or grouped by single spaces or
 * dashes (one separator kind per number), not part of a longer number, with a
 * valid Luhn check digit and the prefix and length of a known brand. A digit
 * string that merely passes Luhn (one in ten does) but belongs to no brand is
 * not reported.
 */
import { redactCard } from "../redact.ts";
import { type Detector, type Emit, isAlnum, isDigit } from "./detector.ts";

/** A card brand: issuer prefixes (inclusive ranges of leading digits) and valid lengths. */
interface Brand {
  name: string;
  ranges: [string, string][];
  lengths: number[];
}

const span = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** Brands by IIN range, most specific first (UnionPay's 62 after Discover's 622126–622925). */
export const BRANDS: readonly Brand[] = [
  { name: "amex", ranges: [["34", "34"], ["37", "37"]], lengths: [15] },
  { name: "visa", ranges: [["4", "4"]], lengths: [13, 16, 19] },
  { name: "mastercard", ranges: [["51", "55"], ["2221", "2720"]], lengths: [16] },
  {
    name: "discover",
    ranges: [["6011", "6011"], ["644", "649"], ["65", "65"], ["622126", "622925"]],
    lengths: span(16, 19),
  },
  { name: "jcb", ranges: [["3528", "3589"]], lengths: span(16, 19) },
  {
    name: "diners",
    ranges: [["300", "305"], ["3095", "3095"], ["36", "36"], ["38", "39"]],
    lengths: span(14, 19),
  },
  { name: "unionpay", ranges: [["62", "62"], ["81", "81"]], lengths: span(16, 19) },
  {
    name: "maestro",
    ranges: [
      ["5018", "5018"],
      ["5020", "5020"],
      ["5038", "5038"],
      ["5893", "5893"],
      [
        "6304",
        "6304",
      ],
      ["6759", "6759"],
      ["6761", "6763"],
    ],
    lengths: span(13, 19),
  },
];

/** The brand of a digit string by prefix and length, or null. */
export function cardBrand(digits: string): string | null {
  for (const b of BRANDS) {
    if (!b.lengths.includes(digits.length)) continue;
    for (const [lo, hi] of b.ranges) {
      const p = digits.slice(0, lo.length);
      if (p >= lo && p <= hi) return b.name;
    }
  }
  return null;
}

/** True when the digit string's last digit is its Luhn check digit. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** The card number detector. */
export class CardDetector implements Detector {
  /**
   * Scans `text` once, left to right. A run of digit groups ("4111 1111 1111
   * 1111 2025") is tried whole, then as consecutive groups from each group
   * start, so a card followed or preceded by another number is still found;
   * a bare run of more than 19 digits holds no card.
   */
  scan(text: string, emit: Emit): void {
    const n = text.length;
    let i = 0;
    // V8's native scan jumps to the next digit (a fixed one-character class:
    // linear, nothing to backtrack), so text without digits costs little.
    const next = /[0-9]/g;
    while (i < n) {
      next.lastIndex = i;
      const m = next.exec(text);
      if (!m) return;
      i = m.index;
      if (i > 0 && isAlnum(text.charCodeAt(i - 1))) {
        while (i < n && isDigit(text.charCodeAt(i))) i++;
        continue;
      }
      // Groups of digits joined by single separators of one kind.
      const groups: { start: number; end: number; digits: string }[] = [];
      let sep = 0;
      let j = i;
      let total = 0;
      while (j < n && total <= 64) {
        const gs = j;
        while (j < n && isDigit(text.charCodeAt(j))) j++;
        groups.push({ start: gs, end: j, digits: text.slice(gs, j) });
        total += j - gs;
        const d = j < n ? text.charCodeAt(j) : 0;
        if ((d === 32 || d === 45) && (sep === 0 || sep === d) && isDigit(text.charCodeAt(j + 1))) {
          sep = d;
          j++;
          continue;
        }
        break;
      }
      const runEnd = groups[groups.length - 1].end;
      if (runEnd >= n || !isAlnum(text.charCodeAt(runEnd))) this.#groups(groups, emit);
      i = runEnd;
      while (i < n && isDigit(text.charCodeAt(i))) i++;
    }
  }

  #groups(groups: { start: number; end: number; digits: string }[], emit: Emit): void {
    let s = 0;
    while (s < groups.length) {
      let digits = "";
      let found = -1;
      for (let e = s; e < groups.length && digits.length + groups[e].digits.length <= 19; e++) {
        digits += groups[e].digits;
        if (digits.length >= 13 && luhnValid(digits) && cardBrand(digits) !== null) found = e;
      }
      if (found < 0) {
        s++;
        continue;
      }
      const all = groups.slice(s, found + 1).map((g) => g.digits).join("");
      emit(groups[s].start, groups[found].end, redactCard(all));
      s = found + 1;
    }
  }
}
