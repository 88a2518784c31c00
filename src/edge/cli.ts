/**
 * `portcullis edge …`: run the edge, or manage it from the command line.
 *
 *   portcullis edge [--config FILE] [--data-dir DIR] [--api-listen H:P] …
 *   portcullis edge key create [--reusable] [--user] [--expires 24h|7d|never] [--group NAME]
 *                              [--key-file FILE]
 */
import { parseCliArgs } from "../cli_args.ts";
import { EdgeConfig, loadConfig } from "../config.ts";
import { InputError } from "../errors.ts";
import { runEdge, type RunEdgeOptions } from "./run.ts";
import { startEdgeControlPlane } from "./control_plane.ts";
import { runKeyCreate } from "./cli_key.ts";
import type { HttpApp } from "../serve.ts";

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** One string flag per configuration setting, plus --config. */
function configOptions(): Record<string, { type: "string" }> {
  const opts: Record<string, { type: "string" }> = { config: { type: "string" } };
  for (const k of Object.keys(EdgeConfig.shape)) opts[kebab(k)] = { type: "string" };
  return opts;
}

type Options = Record<string, { type: "string" | "boolean" }>;

function parse(args: string[], options: Options, command = "portcullis edge") {
  return parseCliArgs(args, options, command);
}

/** Loads the edge configuration from --config, PORTCULLIS_* and flags. */
export function edgeConfigFrom(values: Record<string, unknown>) {
  const { config, ...flags } = values as Record<string, string | undefined>;
  return loadConfig("edge", { file: config, env: Deno.env.toObject(), flags });
}

/** Runs `portcullis edge …`; returns the exit code. */
export async function edgeCommand<A extends HttpApp>(
  args: string[],
  run: RunEdgeOptions<A>,
): Promise<number> {
  if (args[0] === "key") {
    if (args[1] !== "create") {
      throw new InputError(
        "usage",
        `Unknown "edge key" subcommand "${args[1] ?? ""}": expected create`,
      );
    }
    const { values } = parse(args.slice(2), {
      ...configOptions(),
      reusable: { type: "boolean" },
      user: { type: "boolean" },
      expires: { type: "string" },
      group: { type: "string" },
      "key-file": { type: "string" },
    }, "portcullis edge key create");
    const { reusable, user, expires, group, "key-file": keyFile, ...rest } = values as Record<
      string,
      string | boolean | undefined
    >;
    const config = await edgeConfigFrom(rest);
    const cp = await startEdgeControlPlane(config);
    try {
      await runKeyCreate({
        reusable: reusable === true,
        user: user === true,
        expires: expires as string | undefined,
        group: group as string | undefined,
        keyFile: keyFile as string | undefined,
      }, {
        store: cp.store,
        clock: cp.ctx.clock,
        apiUrl: cp.ctx.apiUrl,
        caSha256: cp.ca.caSha256,
      });
    } finally {
      await cp.close();
    }
    return 0;
  }
  const { values, positionals } = parse(args, configOptions());
  if (positionals.length) {
    throw new InputError("usage", `Unexpected argument "${positionals[0]}" for "portcullis edge"`);
  }
  await runEdge(await edgeConfigFrom(values), run);
  return 0;
}
