/**
 * Command-line flags for every command, through node:util parseArgs, with
 * errors in our words: `Unknown option "--bogus" for "portcullis connect".`
 */
import { parseArgs } from "node:util";
import { InputError } from "./errors.ts";

/** Flag definitions: each a string or a boolean switch. */
export type FlagSpec = Record<string, { type: "string" | "boolean" }>;

/** Parsed flags and positional arguments. */
export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** Parses `args` for `command` ("portcullis edge"); a bad flag is an InputError naming it. */
export function parseCliArgs(args: string[], spec: FlagSpec, command: string): ParsedArgs {
  try {
    const r = parseArgs({ args, options: spec, allowPositionals: true, strict: true });
    return { values: { ...r.values } as ParsedArgs["values"], positionals: r.positionals };
  } catch (e) {
    const msg = (e as Error).message;
    const unknown = msg.match(/Unknown option '([^']+)'/);
    const missing = msg.match(/Option '([^']+?)(?: <value>)?' argument missing/);
    const sentence = unknown
      ? `Unknown option "${unknown[1]}" for "${command}"`
      : missing
      ? `Option "${missing[1]}" of "${command}" needs a value`
      : `Cannot read the arguments of "${command}": ${msg}`;
    throw new InputError("usage", `${sentence}. Run "portcullis help" for the options.`);
  }
}
