/**
 * The CUPS hook for the printing channel: a backend that wraps the queue's
 * real one. A queue whose device URI is `portcullis-dlp:/ipp://printer/…`
 * hands each job to this backend (CUPS runs backends with the job id, user,
 * title, copies, options and the job file, and the device URI in
 * DEVICE_URI); it asks the connector whether the job may print, and then
 * either runs the real backend (`$CUPS_SERVERBIN/backend/ipp`) with the inner
 * URI and the same arguments, or cancels the job with the rule's reason in
 * the job's log. When the connector cannot be asked the job is failed (and
 * retried by CUPS), not printed uninspected.
 *
 * What reaches a backend is what the queue's filters made: PDF and text are
 * inspected; a printer language (PCL, raster) has no text to read, and the
 * connector reports it as not inspected.
 */

/** CUPS backend exit codes (cups/backend.h). */
export const CUPS_BACKEND = { OK: 0, FAILED: 1, CANCEL: 5 } as const;

/** The URI scheme of this backend. */
export const SCHEME = "portcullis-dlp";

/** What the backend needs from outside. */
export interface BackendDeps {
  /** Asks the connector about one job. */
  inspect(
    job: Uint8Array,
    meta: { jobId: string; user: string; title: string },
  ): Promise<{ action: "allow" | "notify" | "block"; reason: string }>;
  /** Runs the wrapped backend; resolves with its exit code. */
  run(path: string, args: string[], env: Record<string, string>): Promise<number>;
  readFile(path: string): Promise<Uint8Array>;
  readStdin(): Promise<Uint8Array>;
  /** Writes the job to a private temporary file (stdin jobs) and returns its path. */
  spool(job: Uint8Array): Promise<string>;
  /** A line for CUPS's log (stderr, "ERROR: …" / "INFO: …"). */
  log(line: string): void;
  /** Discovery output (stdout). */
  print(line: string): void;
}

/** The inner device URI of `portcullis-dlp:/ipp://host/…`, or null when it is not one. */
export function innerUri(deviceUri: string): string | null {
  if (!deviceUri.startsWith(`${SCHEME}:`)) return null;
  const inner = deviceUri.slice(SCHEME.length + 1).replace(/^\/+(?=[a-z][a-z0-9+.-]*:)/, "");
  return /^[a-z][a-z0-9+.-]*:/.test(inner) && !inner.startsWith(`${SCHEME}:`) ? inner : null;
}

/** Runs the backend with CUPS's arguments and environment; resolves with the exit code. */
export async function cupsBackend(
  argv: string[],
  env: Record<string, string | undefined>,
  deps: BackendDeps,
): Promise<number> {
  if (argv.length === 0) {
    // Discovery (lpinfo -v): the scheme exists; queues are set up by URI.
    deps.print(
      `network ${SCHEME} "Unknown" "Portcullis DLP (inspects jobs, then the wrapped backend prints)"`,
    );
    return CUPS_BACKEND.OK;
  }
  if (argv.length < 5 || argv.length > 6) {
    deps.log(`ERROR: Usage: ${SCHEME} job-id user title copies options [file]`);
    return CUPS_BACKEND.FAILED;
  }
  const [jobId, user, title, copies, options, file] = argv;
  const inner = innerUri(env.DEVICE_URI ?? "");
  if (!inner) {
    deps.log(
      `ERROR: Device URI "${
        (env.DEVICE_URI ?? "").slice(0, 200)
      }" is not ${SCHEME}:/<uri of the real printer>`,
    );
    return CUPS_BACKEND.FAILED;
  }
  const job = file ? await deps.readFile(file) : await deps.readStdin();
  let verdict: Awaited<ReturnType<BackendDeps["inspect"]>>;
  try {
    verdict = await deps.inspect(job, { jobId, user, title });
  } catch (err) {
    deps.log(
      `ERROR: Cannot ask the Portcullis connector about this job: ${(err as Error).message}`,
    );
    return CUPS_BACKEND.FAILED;
  }
  if (verdict.action === "block") {
    deps.log(`ERROR: Portcullis DLP blocked this print job: ${verdict.reason}`);
    return CUPS_BACKEND.CANCEL;
  }
  if (verdict.action === "notify") {
    deps.log(`INFO: Portcullis DLP reported this print job: ${verdict.reason}`);
  }
  const scheme = inner.split(":")[0];
  const serverBin = env.CUPS_SERVERBIN ?? "/usr/lib/cups";
  const path = file ?? await deps.spool(job);
  return await deps.run(`${serverBin}/backend/${scheme}`, [
    jobId,
    user,
    title,
    copies,
    options,
    path,
  ], {
    DEVICE_URI: inner,
  });
}
