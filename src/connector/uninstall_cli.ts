/**
 * `portcullis uninstall [--yes] [--data-dir DIR] [--root DIR] …`: the
 * command-line face of src/connector/uninstall.ts. It asks for the uninstall
 * password when the policy sets one (without echo at a terminal, else the
 * first line of standard input) and for confirmation unless `--yes`.
 */
import { parseCliArgs } from "../cli_args.ts";
import { loadConfig } from "../config.ts";
import { askSecret, askYes } from "./prompt.ts";
import { uninstallConnector } from "./uninstall.ts";

/** Runs `portcullis uninstall`; 0 when removed, else the error's exit code (thrown). */
export async function uninstallCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCliArgs(args, {
    config: { type: "string" },
    "data-dir": { type: "string" },
    "tun-interface": { type: "string" },
    "console-listen": { type: "string" },
    root: { type: "string" },
    yes: { type: "boolean" },
  }, "portcullis uninstall");
  if (positionals.length) {
    console.error(`Unexpected argument "${positionals[0]}" for "portcullis uninstall"`);
    return 2;
  }
  const flags: Record<string, string> = {};
  for (const k of ["data-dir", "tun-interface", "console-listen"]) {
    if (typeof values[k] === "string") flags[k] = values[k] as string;
  }
  const config = await loadConfig("connector", {
    file: values.config as string | undefined,
    env: Deno.env.toObject(),
    flags,
  });
  const report = await uninstallConnector({
    dataDir: config.dataDir,
    tunInterface: config.tunInterface,
    consoleListen: config.consoleListen,
    root: values.root as string | undefined,
    password: () => askSecret("Uninstall password: "),
    confirm: async (what) => {
      if (values.yes) return true;
      console.log(`This removes:\n${what.map((w) => `  - ${w}`).join("\n")}`);
      const ok = await askYes("Remove Portcullis from this host? [y/N] ");
      if (!ok && !Deno.stdin.isTerminal()) {
        console.error("Standard input is not a terminal: give --yes to uninstall from a script.");
      }
      return ok;
    },
    say: (line) => console.log(line),
  });
  console.log(
    report.removed.length
      ? "Portcullis connector uninstalled."
      : "Nothing of the Portcullis connector was found on this host.",
  );
  return 0;
}
