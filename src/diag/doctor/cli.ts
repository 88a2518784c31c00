/**
 * `portcullis doctor [--json] [--console H:P]`: asks the running connector's
 * local API for a diagnosis (GET /api/v1/diagnose) and prints it. When the
 * connector does not answer, that is the verdict: the service hop is at
 * fault and the rest cannot be told. Exit 0 healthy, 1 a fault found, 2
 * could not tell.
 */
import { parseCliArgs } from "../../cli_args.ts";
import { InputError } from "../../errors.ts";
import { diagnose, type DoctorReport, FixedFacts, formatReport } from "./mod.ts";

/** Default address of the connector's local API. */
export const DEFAULT_CONSOLE = "127.0.0.1:9080";

/** Runs the doctor command; returns the exit code. */
export async function doctorCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCliArgs(args, {
    json: { type: "boolean" },
    console: { type: "string" },
  }, "portcullis doctor");
  if (positionals.length) {
    throw new InputError("usage", `Unexpected argument "${positionals[0]}" for portcullis doctor`);
  }
  const listen = (values.console as string | undefined) ?? DEFAULT_CONSOLE;
  if (!/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(listen)) {
    throw new InputError("bad_console", `Invalid --console "${listen}": expected HOST:PORT`);
  }
  const r = await ask(listen);
  console.log(values.json ? JSON.stringify(r, null, 2) : formatReport(r));
  return r.exitCode;
}

/** The connector's report, or a report saying the service does not answer. */
async function ask(listen: string): Promise<DoctorReport> {
  const started = Date.now();
  let error: string;
  try {
    const res = await fetch(`http://${listen}/api/v1/diagnose`, {
      headers: { Accept: "application/json" },
      signal: AbortSignal.timeout(30_000),
    });
    if (res.ok) return await res.json() as DoctorReport;
    error = `${res.status} ${(await res.text()).slice(0, 200)}`;
  } catch (e) {
    error = `http://${listen}/ ${(e as Error).message}`;
  }
  const r = await diagnose(new FixedFacts({ service: { running: false, error } }));
  return { ...r, durationMs: Date.now() - started };
}
