/**
 * The troubleshooting bundle: one zip with the recent log records, a state
 * snapshot, the configuration, recent notifications and the packet
 * captures, for "Export Logs" and for the support request sent to the edge.
 *
 * Nothing secret may leave the machine in it. Every JSON part goes through
 * `stripSecrets`, which drops fields whose names say they hold secrets
 * (private keys, passwords and their hashes, credentials, tokens, TOTP
 * secrets, enrolment keys) and masks secret-looking values wherever they
 * appear (PEM private keys, enrolment key strings, API tokens), including
 * inside log messages.
 */
import { type Zippable, zipSync } from "fflate";
import type { LogRecord } from "../log.ts";

/** What a bundle is made of. */
export interface BundleInput {
  /** Role that made the bundle ("connector" or "edge"). */
  role: string;
  /** Product version. */
  version: string;
  /** Recent log records, oldest first (e.g. `RingSink.records()`). */
  logs: LogRecord[];
  /** A snapshot of the service's state. */
  state: unknown;
  /** The configuration in effect. */
  config: unknown;
  /** Recent notifications. */
  notifications: unknown[];
  /** Packet captures, newest first; included while they fit `captureBudget`. */
  captures?: { name: string; bytes: Uint8Array }[];
  /** Most capture bytes to include (default 6 MiB, so a bundle fits a support upload). */
  captureBudget?: number;
  /** Creation time (ms). */
  now?: number;
  /** The on-disk log files (src/diag/log_files.ts `read()`), written under logs/ with secrets masked. */
  logFiles?: { name: string; text: string }[];
  /** More record sets, each written as `<name>.jsonl` with secrets removed (e.g. decisions). */
  records?: Record<string, unknown[]>;
}

/** Replacement for a removed secret. */
export const REDACTED = "[redacted]";

/** Field names whose values are secrets (matched case-insensitively, ignoring "_" and "-"). */
const SECRET_NAME =
  /(password|passwd|passphrase|secret|privatekey|presharedkey|psk|credential|token|totp|cookie|authorization|apikey|enrollmentkey|enrolmentkey|sealed|ciphertext|passwordhash|credentialhash|secrethash|csrf|^key$|^keys$|seed)/;

/** Values that are secrets wherever they appear. */
const SECRET_VALUES: RegExp[] = [
  // Bearer credentials of any kind in logged headers or messages.
  /\bBearer\s+[A-Za-z0-9._~+/=-]{8,}/gi,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g,
  /\bpc1\.[A-Za-z0-9_-]{16,}/g,
  /\bpca_[A-Za-z0-9_-]{16,}/g,
  // Device credentials (pcd_ + base64url).
  /\bpcd_[A-Za-z0-9_-]{16,}/g,
  // scrypt hashes, both "$scrypt$…" and the stored "scrypt$N$r$p$salt$hash".
  /\$scrypt\$[^\s"']+/g,
  /\bscrypt\$\d+\$\d+\$\d+\$[^\s"']+/g,
  /\botpauth:\/\/[^\s"']+/g,
];

/** True when a field name says its value is secret. */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name.toLowerCase().replace(/[_-]/g, ""));
}

/** Masks secret-looking substrings of a string. */
export function maskSecrets(text: string): string {
  let out = text;
  for (const re of SECRET_VALUES) out = out.replace(re, REDACTED);
  return out;
}

/** A deep copy of `value` without secret fields and with secret-looking strings masked. */
export function stripSecrets(value: unknown, depth = 0): unknown {
  if (depth > 32) return REDACTED;
  if (typeof value === "string") return maskSecrets(value);
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Uint8Array) return `[${value.length} bytes]`;
  if (Array.isArray(value)) return value.map((v) => stripSecrets(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (isSecretName(k)) {
      if (v !== undefined && v !== null && v !== "") out[k] = REDACTED;
      continue;
    }
    out[k] = stripSecrets(v, depth + 1);
  }
  return out;
}

const enc = new TextEncoder();

/** Builds the zip. Captures beyond the budget are listed in the manifest as skipped. */
export function buildBundle(input: BundleInput): Uint8Array {
  const now = input.now ?? Date.now();
  const budget = input.captureBudget ?? 6 * 1024 * 1024;
  const files: Zippable = {};
  const json = (v: unknown) => enc.encode(JSON.stringify(stripSecrets(v), null, 2) + "\n");

  files["logs.jsonl"] = enc.encode(
    input.logs.map((r) => JSON.stringify(stripSecrets(r))).join("\n") +
      (input.logs.length ? "\n" : ""),
  );
  files["state.json"] = json(input.state);
  files["config.json"] = json(input.config);
  files["notifications.json"] = json(input.notifications);
  const recordSets: Record<string, number> = {};
  for (const [name, rows] of Object.entries(input.records ?? {})) {
    const file = `${name.replace(/[^A-Za-z0-9_-]/g, "_")}.jsonl`;
    files[file] = enc.encode(
      rows.map((r) => JSON.stringify(stripSecrets(r))).join("\n") + (rows.length ? "\n" : ""),
    );
    recordSets[file] = rows.length;
  }

  const logFiles: string[] = [];
  for (const f of input.logFiles ?? []) {
    const name = f.name.replace(/[^A-Za-z0-9_.-]/g, "_");
    files[`logs/${name}`] = enc.encode(maskSecrets(f.text));
    logFiles.push(`logs/${name}`);
  }

  const included: string[] = [];
  const skipped: string[] = [];
  let used = 0;
  for (const c of input.captures ?? []) {
    const name = c.name.replace(/[^A-Za-z0-9_.-]/g, "_");
    if (used + c.bytes.length > budget) {
      skipped.push(name);
      continue;
    }
    used += c.bytes.length;
    included.push(name);
    files[`captures/${name}`] = [c.bytes, { level: 1 }];
  }
  files["manifest.json"] = json({
    product: "Portcullis",
    role: input.role,
    version: input.version,
    createdAt: new Date(now).toISOString(),
    logRecords: input.logs.length,
    ...(logFiles.length ? { logFiles } : {}),
    notifications: input.notifications.length,
    ...(Object.keys(recordSets).length ? { records: recordSets } : {}),
    captures: included,
    capturesSkipped: skipped,
    note: "Secrets (keys, passwords, credentials, tokens, TOTP secrets) are removed.",
  });
  return zipSync(files, { level: 6, mtime: new Date(now) });
}

/** A file name for a bundle made at `now`: "portcullis-connector-20260101T120000Z.zip". */
export function bundleFileName(role: string, now: number): string {
  const stamp = new Date(now).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `portcullis-${role.replace(/[^a-z]/g, "")}-${stamp}.zip`;
}
