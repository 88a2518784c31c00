/**
 * Clock skew: how far this host's wall clock is from the edge's (every edge
 * response carries its time, X-Server-Time), judged against the tolerance
 * the edge allows when it validates sign-in tokens and assertions (the app
 * profile's `clockSkewToleranceSec`, default 2 min). Past that tolerance
 * every sign-in fails with an "expired" or "not yet valid" error that looks
 * like an IdP fault, so the user is told the real cause, in plain words and
 * with the exact size, instead of the connector retrying in a loop. Pure:
 * the engine hands in the measured skew and gets back the verdict and the
 * notices to raise when it changes.
 */
import { formatDuration } from "../identity/saml_assertion.ts";

/** A skew or tolerance as "6 min 12 s" (sign ignored), as the sentences say it. */
export const formatSkew: (ms: number) => string = formatDuration;

/** Default tolerance (the edge's default, issue 10): 2 minutes. */
export const DEFAULT_SKEW_TOLERANCE_MS = 120_000;

/** The skew verdict shown in status and the console. */
export interface ClockSkewStatus {
  /** Edge time minus local time (ms): positive means this clock is behind. */
  skewMs: number;
  toleranceMs: number;
  /** Whether the skew is beyond the tolerance (sign-in would fail). */
  exceeded: boolean;
  /** "behind" or "ahead" of the edge (by sign of the skew). */
  direction: "behind" | "ahead";
  /** The size as "6 min 12 s". */
  size: string;
  /** The sentence for the user when exceeded, else null. */
  message: string | null;
}

/** Judges a measured skew; null when nothing was measured yet. */
export function clockSkewStatus(
  skewMs: number | null,
  toleranceMs: number = DEFAULT_SKEW_TOLERANCE_MS,
): ClockSkewStatus | null {
  if (skewMs === null || !Number.isFinite(skewMs)) return null;
  const direction = skewMs > 0 ? "behind" : "ahead";
  const size = formatDuration(skewMs);
  const exceeded = Math.abs(skewMs) > toleranceMs;
  return {
    skewMs,
    toleranceMs,
    exceeded,
    direction,
    size,
    message: exceeded ? clockSkewSentence(skewMs) : null,
  };
}

/** "Your clock is 6 min 12 s behind the edge; sign-in will fail until it is corrected". */
export function clockSkewSentence(skewMs: number): string {
  const where = skewMs > 0 ? "behind" : "ahead of";
  return `Your clock is ${
    formatDuration(skewMs)
  } ${where} the edge; sign-in will fail until it is corrected`;
}

/** A notice to raise when the verdict changes. */
export interface SkewNotice {
  type: "clock_skew" | "clock_skew_cleared";
  severity: "warn" | "info";
  message: string;
  data: Record<string, unknown>;
}

/**
 * Remembers whether the user was told about a skew, so the warning is raised
 * once when the tolerance is crossed (again when the size changes by more
 * than the tolerance, so a clock that drifts further is reported afresh) and
 * a "corrected" notice once when it is back inside.
 */
export class ClockSkewWatch {
  #toldMs: number | null = null;

  /** Whether a skew warning is in force. */
  get warning(): boolean {
    return this.#toldMs !== null;
  }

  /** The notice this measurement calls for, or null. */
  observe(s: ClockSkewStatus | null): SkewNotice | null {
    if (!s) return null;
    const data = { skewMs: s.skewMs, toleranceMs: s.toleranceMs, direction: s.direction };
    if (s.exceeded) {
      const told = this.#toldMs;
      if (told !== null && Math.abs(told - s.skewMs) <= s.toleranceMs) return null;
      this.#toldMs = s.skewMs;
      return { type: "clock_skew", severity: "warn", message: s.message!, data };
    }
    if (this.#toldMs === null) return null;
    this.#toldMs = null;
    return {
      type: "clock_skew_cleared",
      severity: "info",
      message: `Your clock is now within ${formatDuration(s.toleranceMs)} of the edge (${s.size} ${
        s.direction === "behind" ? "behind" : "ahead"
      }); sign-in works again`,
      data,
    };
  }
}
