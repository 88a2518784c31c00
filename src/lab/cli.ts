/**
 * `portcullis lab …`: up, down, status, plus the internal service commands
 * (prefixed with "_") that `lab up` starts inside the namespaces.
 */
import { InputError } from "../errors.ts";
import type { ServeFn } from "../serve.ts";
import { labDown, labStatus, labUp } from "./mod.ts";
import { runDelayLine } from "./delay_line.ts";
import { runBridgeIn, runBridgeOut, runInternet, runPrivateApp } from "./services.ts";

/** Runs `portcullis lab SUBCOMMAND`; returns the exit code. */
export async function labCommand(args: string[], serve: ServeFn): Promise<number> {
  const [sub, ...rest] = args;
  const dirFlag = rest.indexOf("--dir");
  const dir = dirFlag >= 0 ? rest[dirFlag + 1] : undefined;
  switch (sub) {
    case "up": {
      const i = rest.indexOf("--edges");
      const raw = i >= 0 ? rest[i + 1] ?? "" : "1";
      if (raw !== "1" && raw !== "2") {
        throw new InputError("usage", `Invalid --edges "${raw}": expected 1 or 2`);
      }
      await labUp({ dir, edges: Number(raw) });
      return 0;
    }
    case "down":
      await labDown({ dir });
      return 0;
    case "status":
      return (await labStatus({ dir })) ? 0 : 3;
    case "_internet":
      await runInternet(serve);
      return 0;
    case "_app":
      await runPrivateApp(serve);
      return 0;
    case "_delay":
      await runDelayLine(rest[0], Number(rest[1]), rest[2]);
      return 0;
    case "_bridge-in":
      await runBridgeIn(rest[0], Number(rest[1]));
      return 0;
    case "_bridge-out":
      await runBridgeOut(rest.map((m) => {
        const [port, path] = m.split("=");
        return { port: Number(port), path };
      }));
      return 0;
    default:
      throw new InputError(
        "usage",
        `Unknown lab subcommand "${sub ?? ""}": expected up, down or status`,
      );
  }
}
