/**
 * The fields of a SaaS tenant and their formats, shared by the domain's own
 * checks and the HTTP schemas (src/http/api/saas_schemas.ts), so the API
 * and the service refuse the same values with the same sentences.
 */
import { InputError } from "../errors.ts";
import { isSaasApp, type SaasApp } from "./apps.ts";
import type { Remediation } from "./types.ts";

/** A tenant name: unique, shown in incidents and policies. */
export const TENANT_NAME = /^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$/;
/** What TENANT_NAME expects, for messages. */
export const TENANT_NAME_MSG =
  "expected 1-64 letters, digits, spaces, '.', '-' or '_', starting with a letter or digit";

/** A directory (tenant) or application (client) ID as Entra shows it: a GUID. */
export const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** What GUID expects, for messages. */
export const GUID_MSG = "expected a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47";

/**
 * A client secret: Entra's generated values are 40 printable characters;
 * any printable ASCII up to 1024 is accepted (no spaces at the ends, no
 * control characters that would break a form post or a log line).
 */
export const CLIENT_SECRET = /^[\x21-\x7e](?:[\x20-\x7e]{0,1022}[\x21-\x7e])?$/;
/** What CLIENT_SECRET expects, for messages. */
export const CLIENT_SECRET_MSG = "expected 1-1024 printable ASCII characters";

/** Largest SharePoint private-key JSON file accepted (64 KiB). */
export const KEY_FILE_LIMIT = 64 * 1024;

/** Days before a secret's or certificate's expiry from which it is flagged. */
export const EXPIRY_WARNING_DAYS = 30;

/**
 * Throws an InputError naming `field` unless `value` matches `re`. The
 * value is quoted in the sentence unless `secret` (a client secret is
 * never repeated, not even in an error).
 */
export function checkField(
  field: string,
  value: string,
  re: RegExp,
  msg: string,
  secret = false,
): string {
  if (!re.test(value)) {
    throw new InputError(
      "invalid_request",
      `Invalid request: ${field}: ${msg}${
        secret ? "" : `, got ${JSON.stringify(value.slice(0, 80))}`
      }`,
    );
  }
  return value;
}

/** Lowercase GUID after checking its format. */
export function normaliseGuid(field: string, value: string): string {
  return checkField(field, value.trim(), GUID, GUID_MSG).toLowerCase();
}

/** Expiry state of a secret or certificate at `now`. */
export type ExpiryState = "unknown" | "ok" | "expiring" | "expired";

/** Whether `at` (ms, or null when unknown) is past, near or far from `now`. */
export function expiryState(at: number | null, now: number): ExpiryState {
  if (at === null) return "unknown";
  if (at <= now) return "expired";
  if (at - now <= EXPIRY_WARNING_DAYS * 86_400_000) return "expiring";
  return "ok";
}

/** The application, or a 400 naming the unknown one. */
export function checkApp(app: unknown): SaasApp {
  if (!isSaasApp(app)) {
    throw new InputError(
      "invalid_request",
      `Invalid request: app: unknown application "${String(app).slice(0, 40)}"`,
    );
  }
  return app;
}

/** Longest scan interval (a week, in minutes). */
export const MAX_SCAN_INTERVAL_MIN = 10_080;

/** A scan interval in whole minutes: 0 (no schedule) or 15 to a week. */
export function checkScanInterval(min: number | undefined, fallback: number): number {
  if (min === undefined) return fallback;
  if (!Number.isInteger(min) || (min !== 0 && (min < 15 || min > MAX_SCAN_INTERVAL_MIN))) {
    throw new InputError(
      "invalid_request",
      `Invalid request: scanIntervalMinutes: expected 0 (no schedule) or a whole number of minutes from 15 to ${MAX_SCAN_INTERVAL_MIN}, got ${
        JSON.stringify(min)
      }`,
    );
  }
  return min;
}

/** A tenant name, trimmed. */
export function checkName(name: string): string {
  return checkField("name", name.trim(), TENANT_NAME, TENANT_NAME_MSG);
}

/** A client secret (never quoted back). */
export function checkSecret(secret: string): string {
  return checkField("clientSecret", secret, CLIENT_SECRET, CLIENT_SECRET_MSG, true);
}

/** `r` over `base`; the quarantine folder is one name at a drive's root. */
export function checkRemediation(
  base: Remediation,
  r: Partial<Remediation> | undefined,
): Remediation {
  const out = { ...base, ...(r ?? {}) };
  const folder = out.quarantineFolder.trim();
  // No path separators, nothing Graph forbids in a name, not hidden.
  // deno-lint-ignore no-control-regex
  if (!/^[^"*:<>?/\\|#%\x00-\x1f]{1,128}$/.test(folder) || folder.startsWith(".")) {
    throw new InputError(
      "invalid_request",
      `Invalid request: remediation.quarantineFolder: expected a folder name of 1-128 characters without / \\ " * : < > ? | # %, got ${
        JSON.stringify(folder.slice(0, 80))
      }`,
    );
  }
  return { ...out, quarantineFolder: folder };
}
