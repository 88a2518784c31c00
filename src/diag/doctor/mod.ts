/**
 * `portcullis doctor`: walks the chain device → local network → firewall →
 * identity provider → edge → the service and gives one verdict per hop.
 *
 * The split: a `FactSource` (mechanism: sockets, pings, the engine's state;
 * the connector's is src/connector/doctor_probes.ts) gathers `DoctorFacts`;
 * the pure verdict functions (verdicts.ts) judge them. The connector serves
 * the report at GET /api/v1/diagnose; the CLI (cli.ts) asks for it and, when
 * the connector does not answer, reports the service hop itself.
 */
import { judge, overall } from "./verdicts.ts";
import type { DoctorFacts, DoctorReport, HopStatus, Verdict } from "./types.ts";

export type { DoctorFacts, DoctorReport, Hop, HopStatus, Verdict } from "./types.ts";
export { HOPS } from "./types.ts";

/** Where facts come from. */
export interface FactSource {
  /** Gathers every fact it can; a fact it could not find is left undefined. */
  gather(): Promise<DoctorFacts>;
}

/** A fact source that answers with fixed facts (tests, and the CLI when the service is down). */
export class FixedFacts implements FactSource {
  constructor(readonly facts: DoctorFacts) {}
  /** Returns the facts given. */
  gather(): Promise<DoctorFacts> {
    return Promise.resolve(this.facts);
  }
}

/** Runs the doctor over `source`; `now` is the wall clock (ms). */
export async function diagnose(
  source: FactSource,
  now: () => number = Date.now,
): Promise<DoctorReport> {
  const started = now();
  const facts = await source.gather();
  return report(judge(facts, now()), started, now());
}

/** Builds the report from verdicts. */
export function report(verdicts: Verdict[], started: number, ended: number): DoctorReport {
  return {
    ...overall(verdicts),
    verdicts,
    checkedAt: new Date(ended).toISOString(),
    durationMs: Math.max(0, ended - started),
  };
}

const MARK: Record<HopStatus, string> = {
  ok: "ok   ",
  warn: "WARN ",
  fault: "FAULT",
  unknown: "?    ",
  skipped: "-    ",
};

/** The report as text for a terminal, one hop per line, fixes indented. */
export function formatReport(r: DoctorReport): string {
  const width = Math.max(...r.verdicts.map((x) => x.hop.length));
  const lines = r.verdicts.map((x) => {
    const head = `${MARK[x.status]} ${x.hop.padEnd(width)}  ${x.evidence}`;
    return x.fix && (x.status === "fault" || x.status === "warn")
      ? `${head}\n${" ".repeat(width + 8)}fix: ${x.fix}`
      : head;
  });
  const summary = r.overall === "healthy"
    ? "All hops healthy."
    : r.overall === "fault"
    ? `Found a problem at hop "${r.firstFault}".`
    : "Could not tell about every hop (see ?).";
  return `${lines.join("\n")}\n\n${summary} (${r.durationMs} ms)\n`;
}
