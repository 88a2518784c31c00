/**
 * The printing channel: covered only where CUPS runs print jobs through a
 * Portcullis hook. Without CUPS on this host (no backend directory) the
 * channel is reported as not covered, with the reason, instead of being
 * silently assumed safe.
 */
import type { DlpBundle } from "../types.ts";

/** Whether print jobs are inspected, and why (not). */
export interface PrintingCoverage {
  covered: boolean;
  reason: string;
}

/** Where CUPS keeps its backends (Debian). */
export const CUPS_BACKEND_DIR = "/usr/lib/cups/backend";
/** The Portcullis backend's name in that directory. */
export const PORTCULLIS_BACKEND = "portcullis-dlp";

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The printing channel's coverage on this host for `bundle`. */
export function printingCoverage(
  bundle: Pick<DlpBundle, "rules"> | null,
  backendDir = CUPS_BACKEND_DIR,
): PrintingCoverage {
  if (!exists(backendDir)) {
    return {
      covered: false,
      reason: "CUPS is not installed on this host: printing is not covered",
    };
  }
  if (!exists(`${backendDir}/${PORTCULLIS_BACKEND}`)) {
    return {
      covered: false,
      reason:
        `CUPS is installed but the ${PORTCULLIS_BACKEND} backend is not: printing is not covered`,
    };
  }
  if (!bundle?.rules.some((r) => r.enabled && r.channels.includes("printing"))) {
    return { covered: false, reason: "No DLP rule covers printing" };
  }
  return { covered: true, reason: `Print jobs pass the ${PORTCULLIS_BACKEND} CUPS backend` };
}
