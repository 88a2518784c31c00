/**
 * The shape every detector has: one linear pass over a text that reports
 * each finding's position and its redacted sample. Positions let the
 * scanner apply proximity and tell findings in overlapping windows apart.
 */

/** Receives one finding: [start, end) in the text and the redacted sample. */
export type Emit = (start: number, end: number, sample: string) => void;

/** A compiled detector. */
export interface Detector {
  scan(text: string, emit: Emit): void;
}

/** True for ASCII letters and digits (the boundary test of the number detectors). */
export function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** True for an ASCII digit. */
export function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
