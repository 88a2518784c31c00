/**
 * US social security numbers written as AAA-GG-SSSS or AAA GG SSSS (one
 * separator kind), with the SSA's validity rules: area not 000, 666 or
 * 900–999, group not 00, serial not 0000, and not one of the numbers known
 * from advertisements and examples. Nine bare digits are not reported: far
 * too many other numbers look like that.
 */
import { redactSsn } from "../redact.ts";
import { type Detector, type Emit, isAlnum, isDigit } from "./detector.ts";

/** Numbers published in examples and advertisements, never issued to a person. */
const KNOWN_FAKE = new Set(["078051120", "219099999", "457555462", "123456789"]);

/** True when the nine digits follow the SSA's rules for an issuable number. */
export function ssnValid(digits: string): boolean {
  if (!/^\d{9}$/.test(digits)) return false;
  const area = Number(digits.slice(0, 3));
  const group = Number(digits.slice(3, 5));
  const serial = Number(digits.slice(5));
  if (area === 0 || area === 666 || area >= 900) return false;
  if (group === 0 || serial === 0) return false;
  return !KNOWN_FAKE.has(digits);
}

const digitsAt = (t: string, i: number, k: number) => {
  for (let x = 0; x < k; x++) if (!isDigit(t.charCodeAt(i + x))) return false;
  return true;
};

/** The US SSN detector. */
export class SsnDetector implements Detector {
  /** Scans `text` once; every candidate is a fixed 11 characters. */
  scan(text: string, emit: Emit): void {
    const n = text.length;
    // Candidates found by V8's native scan of a fixed-length pattern (linear).
    const shape = /[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}/g;
    for (let i = 0; i + 11 <= n; i++) {
      shape.lastIndex = i;
      const m = shape.exec(text);
      if (!m) return;
      i = m.index;
      const sep = text.charCodeAt(i + 3);
      if ((sep !== 45 && sep !== 32) || text.charCodeAt(i + 6) !== sep) continue;
      if (!digitsAt(text, i, 3) || !digitsAt(text, i + 4, 2) || !digitsAt(text, i + 7, 4)) continue;
      // Not inside a longer number or identifier (phone numbers, part numbers).
      const before = i > 0 ? text.charCodeAt(i - 1) : 0;
      const after = i + 11 < n ? text.charCodeAt(i + 11) : 0;
      if (isAlnum(before) || isAlnum(after)) continue;
      if ((before === 45 || before === sep) && i > 1 && isDigit(text.charCodeAt(i - 2))) continue;
      if ((after === 45 || after === sep) && i + 12 < n && isDigit(text.charCodeAt(i + 12))) {
        continue;
      }
      const digits = text.slice(i, i + 3) + text.slice(i + 4, i + 6) + text.slice(i + 7, i + 11);
      if (!ssnValid(digits)) continue;
      emit(i, i + 11, redactSsn(digits));
      i += 10;
    }
  }
}
