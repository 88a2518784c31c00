/**
 * International bank account numbers: a country code, two check digits and
 * the country's fixed-length account part, bare or in groups of four
 * separated by single spaces, with the ISO 13616 mod-97 checksum. Only
 * countries in the registry table count, each with its exact length.
 */
import { redactIban } from "../redact.ts";
import { type Detector, type Emit, isAlnum, isDigit } from "./detector.ts";

/** IBAN length by country (SWIFT IBAN registry). */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24,
  AE: 23,
  AL: 28,
  AT: 20,
  AZ: 28,
  BA: 20,
  BE: 16,
  BG: 22,
  BH: 22,
  BI: 27,
  BR: 29,
  BY: 28,
  CH: 21,
  CR: 22,
  CY: 28,
  CZ: 24,
  DE: 22,
  DJ: 27,
  DK: 18,
  DO: 28,
  EE: 20,
  EG: 29,
  ES: 24,
  FI: 18,
  FK: 18,
  FO: 18,
  FR: 27,
  GB: 22,
  GE: 22,
  GI: 23,
  GL: 18,
  GR: 27,
  GT: 28,
  HR: 21,
  HU: 28,
  IE: 22,
  IL: 23,
  IQ: 23,
  IS: 26,
  IT: 27,
  JO: 30,
  KW: 30,
  KZ: 20,
  LB: 28,
  LC: 32,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  LY: 25,
  MC: 27,
  MD: 24,
  ME: 22,
  MK: 19,
  MN: 20,
  MR: 27,
  MT: 31,
  MU: 30,
  NI: 28,
  NL: 18,
  NO: 15,
  OM: 23,
  PK: 24,
  PL: 28,
  PS: 29,
  PT: 25,
  QA: 29,
  RO: 24,
  RS: 22,
  RU: 33,
  SA: 24,
  SC: 31,
  SD: 18,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  SO: 23,
  ST: 25,
  SV: 28,
  TL: 23,
  TN: 24,
  TR: 26,
  UA: 29,
  VA: 22,
  VG: 24,
  XK: 20,
  YE: 30,
};

const isUpper = (c: number) => c >= 65 && c <= 90;

/** ISO 13616 check: move the first four characters to the end, letters as 10–35, mod 97 = 1. */
export function ibanChecksumValid(iban: string): boolean {
  const s = iban.slice(4) + iban.slice(0, 4);
  let rem = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isDigit(c)) rem = (rem * 10 + (c - 48)) % 97;
    else if (isUpper(c)) rem = (rem * 100 + (c - 55)) % 97;
    else return false;
  }
  return rem === 1;
}

/** True when `iban` (upper case, no spaces) has a known country, its length and a valid checksum. */
export function ibanValid(iban: string): boolean {
  const len = IBAN_LENGTHS[iban.slice(0, 2)];
  return len === iban.length && isDigit(iban.charCodeAt(2)) && isDigit(iban.charCodeAt(3)) &&
    ibanChecksumValid(iban);
}

/** The IBAN detector (case-insensitive: "de89 3704 …" counts too). */
export class IbanDetector implements Detector {
  /** Scans `text` once: each candidate start is tried once and consumes at most 34 characters. */
  scan(text: string, emit: Emit): void {
    const n = text.length;
    // Candidate starts (two letters, two digits) found by V8's native scan of
    // a fixed pattern without nested quantifiers: linear, no backtracking.
    const start = /[A-Za-z]{2}[0-9]{2}/g;
    for (let i = 0; i + 4 < n; i++) {
      start.lastIndex = i;
      const m = start.exec(text);
      if (!m) return;
      i = m.index;
      if (i > 0 && isAlnum(text.charCodeAt(i - 1))) continue;
      const country = text.slice(i, i + 2).toUpperCase();
      const len = IBAN_LENGTHS[country];
      if (!len) continue;
      // Consume `len` alphanumerics, allowing one space after each group of four.
      let out = "";
      let j = i;
      while (j < n && out.length < len) {
        const c = text.charCodeAt(j);
        if (isAlnum(c)) {
          out += text[j];
          j++;
        } else if (
          c === 32 && out.length % 4 === 0 && out.length > 0 && j + 1 < n &&
          isAlnum(text.charCodeAt(j + 1))
        ) {
          j++;
        } else break;
      }
      if (out.length !== len || (j < n && isAlnum(text.charCodeAt(j)))) continue;
      const iban = out.toUpperCase();
      if (!ibanChecksumValid(iban)) continue;
      emit(i, j, redactIban(iban));
      i = j - 1;
    }
  }
}
