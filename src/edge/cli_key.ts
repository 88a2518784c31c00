/**
 * `portcullis edge key create [--reusable] [--expires 24h] [--group NAME]`:
 * creates an enrolment key from the command line and prints it once.
 */
import type { Clock } from "../clock.ts";
import type { Store } from "../store/mod.ts";
import { createEnrollmentKey, parseDuration } from "./enrollment_keys.ts";

/** Parsed arguments of `edge key create`. */
export interface KeyCreateArgs {
  reusable?: boolean;
  /** "24h", "7d", "never"; default "24h". */
  expires?: string;
  group?: string;
}

/** What `runKeyCreate` needs besides the arguments. */
export interface KeyCreateContext {
  store: Store;
  clock: Clock;
  apiUrl: string;
  caSha256: string;
  /** Where the key goes; default console.log. */
  print?: (line: string) => void;
}

/** Creates a key, prints it once with a one-line summary, and returns it. */
export function runKeyCreate(args: KeyCreateArgs, ctx: KeyCreateContext): string {
  const print = ctx.print ?? ((l: string) => console.log(l));
  const expiresInMs = parseDuration(args.expires ?? "24h");
  const { key, record } = createEnrollmentKey(ctx.store, ctx.clock, {
    reusable: args.reusable ?? false,
    expiresInMs,
    group: args.group ?? null,
    createdBy: "cli",
    apiUrl: ctx.apiUrl,
    caSha256: ctx.caSha256,
  });
  print(key);
  print(
    `# key ${record.id}: ${record.reusable ? "reusable" : "single-use"}, ${
      record.expiresAt === null
        ? "never expires"
        : `expires ${new Date(record.expiresAt).toISOString()}`
    }${record.group ? `, group ${record.group}` : ""}. It is shown only this once.`,
  );
  return key;
}
