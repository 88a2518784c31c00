/**
 * Log records on disk, in the role's data directory: `<dir>/<name>.log`
 * plus `<name>.log.1` … `<name>.log.<keep-1>`, oldest last. When the current
 * file would pass `maxBytes` it is rotated (each file moves one number up,
 * the oldest is dropped), so the logs never take more than keep × maxBytes
 * and always hold the most recent records — what support needs after a
 * crash, when the in-memory ring is gone.
 *
 * Records are written as JSON lines with secrets stripped on the way in
 * (the same `stripSecrets` as the export bundle): a log file is read by more
 * people than the process that wrote it. Files are mode 0600 in a 0700
 * directory. Writes are synchronous appends (a record is on disk before the
 * next line of code runs, so a kill -9 loses nothing already logged); a
 * failing disk never takes the logger down with it.
 */
import { addLogSink, logger, type LogRecord, type LogSink, removeLogSink } from "../log.ts";
import { maskSecrets, stripSecrets } from "./export_bundle.ts";

/** Where and how much. */
export interface LogFilesOptions {
  /** Directory for the files (created 0700). */
  dir: string;
  /** File base name ("connector" → connector.log). */
  name: string;
  /** Largest size of one file (default 1 MiB). */
  maxBytes?: number;
  /** How many files to keep, the current one included (default 5). */
  keep?: number;
}

const enc = new TextEncoder();

/** A LogSink that appends to size-bounded rotating files. */
export class RotatingLogFiles implements LogSink {
  readonly dir: string;
  readonly name: string;
  readonly maxBytes: number;
  readonly keep: number;
  #file: Deno.FsFile | null = null;
  #size = 0;
  #broken = false;

  constructor(o: LogFilesOptions) {
    this.dir = o.dir;
    this.name = o.name.replace(/[^A-Za-z0-9_-]/g, "_");
    this.maxBytes = Math.max(4096, o.maxBytes ?? 1024 * 1024);
    this.keep = Math.min(50, Math.max(1, o.keep ?? 5));
    Deno.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.#open();
  }

  /** Path of file number `i` (0 = the current one). */
  path(i = 0): string {
    return `${this.dir}/${this.name}.log${i ? `.${i}` : ""}`;
  }

  #open(): void {
    this.#file = Deno.openSync(this.path(), { append: true, create: true, mode: 0o600 });
    this.#size = this.#file.statSync().size;
  }

  #rotate(): void {
    this.#file?.close();
    this.#file = null;
    try {
      Deno.removeSync(this.path(this.keep - 1));
    } catch { /* not there */ }
    for (let i = this.keep - 2; i >= 0; i--) {
      try {
        Deno.renameSync(this.path(i), this.path(i + 1));
      } catch { /* not there */ }
    }
    this.#open();
  }

  /** Appends one record (secrets stripped), rotating first when it would not fit. */
  write(rec: LogRecord): void {
    if (this.#broken) return;
    try {
      const line = enc.encode(JSON.stringify(stripSecrets(rec)) + "\n");
      if (this.#size > 0 && this.#size + line.length > this.maxBytes) this.#rotate();
      if (!this.#file) this.#open();
      let o = 0;
      while (o < line.length) o += this.#file!.writeSync(line.subarray(o));
      this.#size += line.length;
    } catch {
      // Disk full, directory removed: stop trying rather than fail every log call.
      this.#broken = true;
    }
  }

  /** Empties the current file and deletes the rotated ones ("Clear logs"). */
  clear(): void {
    for (let i = 1; i < this.keep; i++) {
      try {
        Deno.removeSync(this.path(i));
      } catch { /* not there */ }
    }
    this.#file?.close();
    this.#file = Deno.openSync(this.path(), {
      write: true,
      create: true,
      truncate: true,
      mode: 0o600,
    });
    this.#file.close();
    this.#broken = false;
    this.#open();
  }

  /** The files' contents, oldest first, for the export bundle (masked once more on the way out). */
  read(): { name: string; text: string }[] {
    const out: { name: string; text: string }[] = [];
    for (let i = this.keep - 1; i >= 0; i--) {
      try {
        const text = Deno.readTextFileSync(this.path(i));
        out.push({ name: `${this.name}.log${i ? `.${i}` : ""}`, text: maskSecrets(text) });
      } catch { /* not there */ }
    }
    return out;
  }

  /** Closes the current file. */
  close(): void {
    this.#file?.close();
    this.#file = null;
  }
}

/** Log files added as a log sink, and how to take them away again. */
export interface AttachedLogFiles {
  /** Null when the directory could not be used (logged; the role runs on without files). */
  files: RotatingLogFiles | null;
  /** Removes the sink and closes the file; idempotent. */
  detach(): void;
}

/**
 * Opens the role's log files and adds them as a log sink. A directory that
 * cannot be written (read-only, wrong owner) costs the files, not the start.
 */
export function attachLogFiles(o: LogFilesOptions): AttachedLogFiles {
  let files: RotatingLogFiles | null = null;
  try {
    files = new RotatingLogFiles(o);
  } catch (e) {
    logger("diag.logs").warn("Cannot write log files; logging to stderr only", {
      dir: o.dir,
      error: (e as Error).message,
    });
    return { files: null, detach() {} };
  }
  const f = files;
  addLogSink(f);
  let attached = true;
  return {
    files: f,
    detach() {
      if (!attached) return;
      attached = false;
      removeLogSink(f);
      f.close();
    },
  };
}
