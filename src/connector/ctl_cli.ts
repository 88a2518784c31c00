/**
 * `portcullis ctl disable|enable|logout|exit|restart|uninstall|check-update [--console H:P]`: the
 * user actions of the connector's local API from a shell. When the policy
 * guards the action with a password, the API answers password_required and
 * the password is asked (no echo at a terminal, else the first line of
 * standard input) and sent once; wrong passwords are counted by the
 * connector, which answers 429 when the budget is spent.
 */
import { parseCliArgs } from "../cli_args.ts";
import { askSecret } from "./prompt.ts";

const ACTIONS = [
  "disable",
  "enable",
  "logout",
  "exit",
  "restart",
  "uninstall",
  "check-update",
] as const;

async function post(base: string, action: string, body: unknown) {
  const res = await fetch(`${base}/api/v1/actions/${action}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-portcullis-request": "1" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const json = await res.json().catch(() => ({}));
  return { status: res.status, json };
}

/** Runs `portcullis ctl ACTION`: 0 done, 1 refused (password, state), 2 usage or unreachable. */
export async function ctlCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCliArgs(
    args,
    { console: { type: "string" } },
    "portcullis ctl",
  );
  const action = positionals[0];
  if (positionals.length !== 1 || !(ACTIONS as readonly string[]).includes(action)) {
    console.error(
      `Unknown action "${action ?? ""}" for "portcullis ctl"; expected one of ${
        ACTIONS.join(", ")
      }`,
    );
    return 2;
  }
  const base = `http://${(values.console as string | undefined) ?? "127.0.0.1:9080"}`;
  let r;
  try {
    r = await post(base, action, {});
    if (r.status === 403 && r.json?.error?.code === "password_required") {
      const password = await askSecret(`Password to ${action}: `);
      r = await post(base, action, { password });
    }
  } catch (e) {
    console.error(`Cannot reach the connector at ${base}: ${(e as Error).message}`);
    return 2;
  }
  if (r.status === 200 && action === "check-update") {
    // The updater's own words: up to date, refused (why), restarting into a new version…
    console.log(`Update: ${r.json?.update?.state ?? "unknown"}: ${r.json?.update?.message ?? ""}`);
    return r.json?.update?.state === "refused" || r.json?.update?.state === "failed" ? 1 : 0;
  }
  if (r.status === 200) {
    console.log(`Done: ${action} (state: ${r.json?.state ?? "stopping"})`);
    return 0;
  }
  console.error(`Error: ${r.json?.error?.message ?? `the connector answered ${r.status}`}`);
  return r.status === 400 ? 2 : 1;
}
