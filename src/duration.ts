/**
 * Durations as operators type them: "90s", "30m", "24h", "7d", or "never".
 * At the bottom of the layers, so enrolment keys (edge) and rollback
 * authorisations (fleet) read them the same way.
 */
import { InputError } from "./errors.ts";

const UNIT_MS = { s: 1000, m: 60_000, h: 3600_000, d: 86400_000 } as const;

/** Parses "90s", "30m", "24h", "7d" (or "never") to milliseconds (null = never). */
export function parseDuration(text: string): number | null {
  if (text === "never") return null;
  const m = /^(\d{1,6})(s|m|h|d)$/.exec(text.trim());
  if (!m) {
    throw new InputError(
      "invalid_duration",
      `Cannot read duration "${text}": expected a number followed by s, m, h or d (e.g. 24h), or "never"`,
    );
  }
  const n = Number(m[1]);
  if (n === 0) {
    throw new InputError("invalid_duration", `Cannot read duration "${text}": must be positive`);
  }
  return n * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}
