/**
 * Structured logging: one JSON object per line on stderr, or human lines when
 * stderr is a terminal. Secrets must never be passed as fields; `redact`
 * masks the usual suspects anyway as a second line of defence.
 */

/** Severity, in increasing order. */
export type Level = "debug" | "info" | "warn" | "error";

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A log record as written and as kept in the in-memory ring for exports. */
export interface LogRecord {
  ts: string;
  level: Level;
  component: string;
  msg: string;
  [field: string]: unknown;
}

const SECRET_KEYS =
  /(^|_)(password|secret|private_?key|preshared_?key|token|credential|totp|cookie|authorization)$/i;

/** Replaces values of secret-looking fields with "[redacted]". */
export function redact(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = SECRET_KEYS.test(k) ? "[redacted]" : v;
  }
  return out;
}

/** Where records go; swapped in tests and by the log exporter. */
export interface LogSink {
  write(rec: LogRecord): void;
}

/** Keeps the last `capacity` records in memory (for log export and the console). */
export class RingSink implements LogSink {
  #buf: LogRecord[] = [];
  constructor(readonly capacity = 5000) {}
  /** Appends a record, dropping the oldest when full. */
  write(rec: LogRecord): void {
    this.#buf.push(rec);
    if (this.#buf.length > this.capacity) this.#buf.splice(0, this.#buf.length - this.capacity);
  }
  /** Returns a copy of the kept records, oldest first. */
  records(): LogRecord[] {
    return this.#buf.slice();
  }
  /** Drops every kept record. */
  clear(): void {
    this.#buf = [];
  }
}

const encoder = new TextEncoder();

/** Writes records to stderr as JSON lines. */
export const stderrSink: LogSink = {
  write(rec) {
    try {
      Deno.stderr.writeSync(encoder.encode(JSON.stringify(rec) + "\n"));
    } catch {
      // stderr closed: nothing sensible left to do.
    }
  },
};

const state = {
  level: (Deno.env.get("PORTCULLIS_LOG_LEVEL") as Level | undefined) ?? "info",
  sinks: [stderrSink] as LogSink[],
};

/** Sets the minimum level written by every logger. */
export function setLogLevel(level: Level): void {
  state.level = level;
}

/** Returns the current minimum level. */
export function logLevel(): Level {
  return state.level;
}

/** Replaces the sinks every logger writes to. */
export function setLogSinks(sinks: LogSink[]): void {
  state.sinks = sinks;
}

/** Adds one sink (e.g. a RingSink for exports). */
export function addLogSink(sink: LogSink): void {
  state.sinks.push(sink);
}

/** Removes a sink added with addLogSink (a role's log files when it stops). */
export function removeLogSink(sink: LogSink): void {
  state.sinks = state.sinks.filter((s) => s !== sink);
}

/** A logger bound to a component name. */
export class Logger {
  constructor(readonly component: string) {}
  /** Logs at debug level. */
  debug(msg: string, fields: Record<string, unknown> = {}): void {
    this.#emit("debug", msg, fields);
  }
  /** Logs at info level. */
  info(msg: string, fields: Record<string, unknown> = {}): void {
    this.#emit("info", msg, fields);
  }
  /** Logs at warn level. */
  warn(msg: string, fields: Record<string, unknown> = {}): void {
    this.#emit("warn", msg, fields);
  }
  /** Logs at error level. */
  error(msg: string, fields: Record<string, unknown> = {}): void {
    this.#emit("error", msg, fields);
  }
  #emit(level: Level, msg: string, fields: Record<string, unknown>): void {
    if (ORDER[level] < ORDER[state.level]) return;
    const rec: LogRecord = {
      ts: new Date().toISOString(),
      level,
      component: this.component,
      msg,
      ...redact(fields),
    };
    for (const s of state.sinks) s.write(rec);
  }
}

/** Returns a logger for `component`. */
export function logger(component: string): Logger {
  return new Logger(component);
}
