/**
 * `portcullis edge key create [--reusable] [--expires 24h] [--group NAME]
 * [--key-file FILE]`: creates an enrolment key from the command line and
 * prints it once, or writes it to a new file readable by its owner only
 * (mode 0600), for `portcullis connect --key-file FILE`: a key printed on a
 * terminal ends up in scrollback and, pasted as an argument, in `ps`.
 */
import { InputError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import type { Store } from "../store/mod.ts";
import { createEnrollmentKey } from "./enrollment_keys.ts";
import { parseDuration } from "../duration.ts";

/** Parsed arguments of `edge key create`. */
export interface KeyCreateArgs {
  reusable?: boolean;
  /** A user key: devices enrol with it only with a signed-in user (default: a machine key). */
  user?: boolean;
  /** "24h", "7d", "never"; default "24h". */
  expires?: string;
  group?: string;
  /** Write the key to this new file (mode 0600) instead of printing it. */
  keyFile?: string;
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

/**
 * Creates `path` for writing, readable by its owner only; never replaces an
 * existing file (that could be someone else's, or a link planted elsewhere).
 */
async function createKeyFile(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new InputError(
        "key_file_exists",
        `Cannot write the enrolment key to "${path}": the file exists (a key file is never overwritten; remove it or choose another name)`,
      );
    }
    throw new InputError(
      "key_file_unwritable",
      `Cannot write the enrolment key to "${path}": ${(e as Error).message}`,
    );
  }
}

/**
 * Creates a key and prints it once with a one-line summary (or writes it to
 * `args.keyFile` and prints only the summary); returns it.
 */
export async function runKeyCreate(args: KeyCreateArgs, ctx: KeyCreateContext): Promise<string> {
  const print = ctx.print ?? ((l: string) => console.log(l));
  const expiresInMs = parseDuration(args.expires ?? "24h");
  // The file first: a name that cannot be used must not leave a key behind in the store.
  const file = args.keyFile !== undefined ? await createKeyFile(args.keyFile) : null;
  let created: ReturnType<typeof createEnrollmentKey>;
  try {
    created = createEnrollmentKey(ctx.store, ctx.clock, {
      reusable: args.reusable ?? false,
      expiresInMs,
      group: args.group ?? null,
      machine: args.user !== true,
      createdBy: "cli",
      apiUrl: ctx.apiUrl,
      caSha256: ctx.caSha256,
    });
    if (file) {
      const bytes = new TextEncoder().encode(created.key + "\n");
      for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
    }
  } catch (e) {
    file?.close();
    if (args.keyFile !== undefined) await Deno.remove(args.keyFile).catch(() => {});
    throw e;
  }
  file?.close();
  const { key, record } = created;
  if (!file) print(key);
  print(
    `# key ${record.id}: ${record.reusable ? "reusable" : "single-use"}, ${
      record.expiresAt === null
        ? "never expires"
        : `expires ${new Date(record.expiresAt).toISOString()}`
    }${record.group ? `, group ${record.group}` : ""}. ${
      file
        ? `Written to ${args.keyFile} (mode 0600), for: portcullis connect --key-file ${args.keyFile}`
        : "It is shown only this once."
    }`,
  );
  return key;
}
