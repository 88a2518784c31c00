/**
 * `portcullis cups-backend …`: the CUPS backend of the printing channel (run
 * by CUPS through /usr/lib/cups/backend/portcullis-dlp, see
 * src/dlp/endpoint/cups_backend.ts), asking the connector's local API at
 * PORTCULLIS_CONNECTOR_URL (default http://127.0.0.1:9080). And
 * `portcullis dlp install-cups-backend [--console URL]`, which writes that
 * backend file when CUPS is installed.
 */
import { parseCliArgs } from "../cli_args.ts";
import { InputError } from "../errors.ts";
import { CUPS_BACKEND_DIR, PORTCULLIS_BACKEND } from "../dlp/endpoint/printing.ts";
import { cupsBackend } from "../dlp/endpoint/cups_backend.ts";

/** Runs the backend as CUPS invokes it; returns its exit code. */
export function cupsBackendCommand(args: string[]): Promise<number> {
  const base = (Deno.env.get("PORTCULLIS_CONNECTOR_URL") ?? "http://127.0.0.1:9080").replace(
    /\/+$/,
    "",
  );
  return cupsBackend(args, Deno.env.toObject(), {
    inspect: async (job, meta) => {
      const res = await fetch(`${base}/api/v1/dlp/print`, {
        method: "POST",
        headers: {
          "content-type": "application/octet-stream",
          "x-portcullis-request": "1",
          "x-print-job": meta.jobId,
          "x-print-user": meta.user,
          "x-print-title": meta.title,
        },
        body: job.slice(),
        signal: AbortSignal.timeout(120_000),
      });
      const body = await res.json().catch(() => null);
      if (!res.ok) throw new Error(body?.error?.message ?? `HTTP ${res.status}`);
      return body;
    },
    run: async (path, argv, env) => {
      const child = new Deno.Command(path, {
        args: argv,
        env,
        stdin: "null",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
      return (await child.status).code;
    },
    readFile: (p) => Deno.readFile(p),
    readStdin: async () => new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer()),
    spool: async (job) => {
      const p = await Deno.makeTempFile({ prefix: "pcl-print-" });
      await Deno.chmod(p, 0o600);
      await Deno.writeFile(p, job);
      return p;
    },
    log: (line) => console.error(line),
    print: (line) => console.log(line),
  });
}

/** Writes the CUPS backend file (CUPS must be installed); returns the exit code. */
export async function installCupsBackendCommand(args: string[]): Promise<number> {
  const { values } = parseCliArgs(args, {
    console: { type: "string" },
    "backend-dir": { type: "string" },
  }, "portcullis dlp install-cups-backend");
  const dir = (values["backend-dir"] as string | undefined) ?? CUPS_BACKEND_DIR;
  const url = (values.console as string | undefined) ?? "http://127.0.0.1:9080";
  if (!/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}$/.test(url)) {
    throw new InputError(
      "usage",
      `Invalid --console "${
        url.slice(0, 100)
      }": expected the connector's local console, e.g. http://127.0.0.1:9080`,
    );
  }
  try {
    if (!Deno.statSync(dir).isDirectory) throw new Error("not a directory");
  } catch {
    throw new InputError(
      "cups_missing",
      `Cannot install the CUPS backend: "${dir}" does not exist (is CUPS installed?); printing stays not covered`,
    );
  }
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const script =
    `#!/bin/sh\n# Portcullis DLP: inspects print jobs, then runs the queue's real backend.\n` +
    `PORTCULLIS_CONNECTOR_URL='${url}' exec '${Deno.execPath()}' run -A --no-prompt '${main}' cups-backend "$@"\n`;
  const path = `${dir}/${PORTCULLIS_BACKEND}`;
  await Deno.writeTextFile(path, script, { mode: 0o755 });
  await Deno.chmod(path, 0o755);
  console.log(
    `Installed ${path}. Point a queue at it: lpadmin -p NAME -v '${PORTCULLIS_BACKEND}:/<the printer's URI>'`,
  );
  return 0;
}
