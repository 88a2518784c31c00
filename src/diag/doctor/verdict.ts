/**
 * Building a verdict: the one shape every hop's judgement returns.
 */
import type { Hop, HopStatus, Verdict } from "./types.ts";

/** A verdict for `hop`. */
export function v(
  hop: Hop,
  status: HopStatus,
  cause: string,
  evidence: string,
  fix: string | null = null,
): Verdict {
  return { hop, status, cause, evidence, fix };
}

/** "Could not find out …" for `hop`. */
export const unknown = (hop: Hop, what: string) =>
  v(hop, "unknown", "not_measured", `Could not find out ${what}.`);
