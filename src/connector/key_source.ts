/**
 * Where `portcullis connect` takes the enrolment key from. A key is a
 * secret (it enrols devices), and a command line is not: every user of the
 * machine sees it in `ps` and /proc/<pid>/cmdline. So, in this order of
 * preference:
 *
 * - `--key-file FILE`: the key's first line. The file must be readable by
 *   its owner only (mode 0600 or stricter, as `portcullis edge key create
 *   --key-file` writes it): one that group or others can read is refused,
 *   since the key may already have leaked and using it anyway would hide that.
 * - `--key-file -`: the first line of standard input (`… | portcullis
 *   connect --key-file -`). Standard input is read only when asked: a
 *   connector started by a service manager or a script must never block on,
 *   or take a key from, an input it did not mean to give.
 * - `PORTCULLIS_ENROLLMENT_KEY`: an environment variable, visible only to the
 *   same user and root (/proc/<pid>/environ). It is removed from the
 *   process's environment once read, so the commands the connector runs
 *   (ip, nft) do not inherit it.
 * - the argument `portcullis connect KEY`: still accepted, with a warning
 *   that names the risk and the alternatives.
 *
 * Only one source may be given: two are refused rather than one silently
 * winning. Messages name the source, never the key.
 */
import { InputError } from "../errors.ts";
import { parseEnrollmentKey } from "./enrollment_key.ts";

/** The environment variable that may carry the key. */
export const KEY_ENV = "PORTCULLIS_ENROLLMENT_KEY";

/** What the key may come from, as parsed from the command line and the environment. */
export interface KeySourceInput {
  /** `portcullis connect KEY`. */
  argument?: string;
  /** `--key-file FILE`, or "-" for standard input. */
  keyFile?: string;
}

/** The system around the key sources (real by default; fakes in tests). */
export interface KeySourceIo {
  env: { get(name: string): string | undefined; delete(name: string): void };
  stat(path: string): Promise<{ isFile: boolean; mode: number | null }>;
  readTextFile(path: string): Promise<string>;
  readStdin(): Promise<string>;
  warn(line: string): void;
}

/** A key and where it came from ("argument", "environment", "standard input", the file's path). */
export interface ResolvedKey {
  key: string;
  source: string;
}

/** Standard input read to its end (a key is one short line; refuse more than 64 KiB). */
async function readAllStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of Deno.stdin.readable) {
    total += chunk.byteLength;
    if (total > 64 * 1024) {
      throw new InputError(
        "bad_enrollment_key",
        "Cannot read the enrolment key from standard input: more than 64 KiB arrived",
      );
    }
    chunks.push(chunk);
  }
  const all = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** The real system. */
export const systemKeySourceIo: KeySourceIo = {
  env: { get: (n) => Deno.env.get(n), delete: (n) => Deno.env.delete(n) },
  stat: async (p) => {
    const s = await Deno.stat(p);
    return { isFile: s.isFile, mode: s.mode };
  },
  readTextFile: (p) => Deno.readTextFile(p),
  readStdin: readAllStdin,
  warn: (l) => console.error(l),
};

/** The warning printed when the key comes as an argument. */
export const ARGUMENT_WARNING =
  `Warning: the enrolment key on the command line is visible to every user of this machine ` +
  `(ps, /proc/<pid>/cmdline) for as long as the connector runs. Give it with --key-file FILE ` +
  `(mode 0600, e.g. from "portcullis edge key create --key-file FILE"), --key-file - ` +
  `(standard input) or the ${KEY_ENV} environment variable instead.`;

/** The first non-empty line of `text`, trimmed; "" when there is none. */
function firstLine(text: string): string {
  return text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== "") ?? "";
}

/** Checks that `key` parses, naming `source` (never the key) when it does not. */
function checked(key: string, source: string): ResolvedKey {
  if (!key) {
    throw new InputError("bad_enrollment_key", `No enrolment key in ${source}: it is empty`);
  }
  try {
    parseEnrollmentKey(key);
  } catch (e) {
    throw new InputError(
      "bad_enrollment_key",
      `The enrolment key from ${source} is not usable: ${(e as Error).message}`,
    );
  }
  return { key, source };
}

async function fromFile(path: string, io: KeySourceIo): Promise<ResolvedKey> {
  let info: { isFile: boolean; mode: number | null };
  try {
    info = await io.stat(path);
  } catch (e) {
    throw new InputError(
      "key_file_unreadable",
      `Cannot read the enrolment key file "${path}": ${(e as Error).message}`,
    );
  }
  if (!info.isFile) {
    throw new InputError(
      "key_file_unreadable",
      `Cannot read the enrolment key file "${path}": it is not a regular file`,
    );
  }
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
    throw new InputError(
      "key_file_too_open",
      `Refusing the enrolment key file "${path}": it is readable by group or others (mode ${mode}), ` +
        `so the key may have leaked. Make it private with: chmod 600 "${path}"`,
    );
  }
  let text: string;
  try {
    text = await io.readTextFile(path);
  } catch (e) {
    throw new InputError(
      "key_file_unreadable",
      `Cannot read the enrolment key file "${path}": ${(e as Error).message}`,
    );
  }
  return checked(firstLine(text), `the file "${path}"`);
}

/**
 * Finds the enrolment key among the sources (see the module comment), or
 * null when none is given (a later start reuses the stored enrolment).
 */
export async function resolveEnrollmentKey(
  input: KeySourceInput,
  io: KeySourceIo = systemKeySourceIo,
): Promise<ResolvedKey | null> {
  const fromEnv = io.env.get(KEY_ENV);
  io.env.delete(KEY_ENV); // read once; the commands we run must not inherit it
  const given = [
    input.keyFile !== undefined ? (input.keyFile === "-" ? "--key-file -" : "--key-file") : null,
    fromEnv !== undefined ? KEY_ENV : null,
    input.argument !== undefined ? "the command-line argument" : null,
  ].filter((s): s is string => s !== null);
  if (given.length > 1) {
    throw new InputError(
      "usage",
      `Give the enrolment key one way only, not with ${given.join(" and ")}`,
    );
  }
  if (input.keyFile === "-") {
    return checked(firstLine(await io.readStdin()), "standard input");
  }
  if (input.keyFile !== undefined) {
    if (input.keyFile === "") {
      throw new InputError(
        "usage",
        'Missing file name for --key-file (use "-" for standard input)',
      );
    }
    return await fromFile(input.keyFile, io);
  }
  if (fromEnv !== undefined) return checked(fromEnv.trim(), `the ${KEY_ENV} environment variable`);
  if (input.argument !== undefined) {
    io.warn(ARGUMENT_WARNING);
    return checked(input.argument.trim(), "the command-line argument");
  }
  return null;
}
