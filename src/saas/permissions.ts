/**
 * Pure comparison of what a tenant was granted with what its application
 * needs (apps.ts): which rows are missing, which actions they disable, and
 * the status the console shows — Validation Successful when nothing is
 * missing, Validation Failed otherwise.
 */
import {
  type ApiKey,
  type PermissionRow,
  requirementsFor,
  rowActions,
  rowLabel,
  type SaasAction,
  type SaasApp,
} from "./apps.ts";

/** What the issuer answered for one API. */
export interface ApiGrant {
  api: ApiKey;
  /** True when a token was issued for the API. */
  issued: boolean;
  /** Application permissions in the token (`roles`). */
  roles: string[];
  /** Delegated permissions in the token (`scp`), or null when it has none. */
  scopes: string[] | null;
  /** The issuer's refusal when no token was issued (code and sentence). */
  error?: { code: string; message: string };
}

/** A missing row and the actions it disables. */
export interface MissingPermission {
  api: ApiKey;
  permission: string;
  type: PermissionRow["type"];
  /** "Sites.ReadWrite.All (Microsoft Graph)". */
  label: string;
  actions: SaasAction[];
}

/** The outcome of comparing grants with requirements. */
export interface Evaluation {
  status: "successful" | "failed";
  missing: MissingPermission[];
  /** Actions at least one missing row lists. */
  disabledActions: SaasAction[];
  /** Actions the application's rows list that no missing row disables. */
  enabledActions: SaasAction[];
}

/** True when `grant` covers `row`. */
export function rowGranted(row: PermissionRow, grant: ApiGrant | undefined): boolean {
  if (!grant?.issued) return false;
  if (row.type === "Application") return grant.roles.includes(row.permission);
  return grant.scopes === null || grant.scopes.includes(row.permission);
}

/** Compares `grants` (by API) with what `app` needs. */
export function evaluate(app: SaasApp, grants: ReadonlyMap<ApiKey, ApiGrant>): Evaluation {
  const { rows } = requirementsFor(app);
  const missing: MissingPermission[] = [];
  const all = new Set<SaasAction>();
  const disabled = new Set<SaasAction>();
  for (const row of rows) {
    const actions = rowActions(row);
    for (const a of actions) all.add(a);
    if (rowGranted(row, grants.get(row.api))) continue;
    for (const a of actions) disabled.add(a);
    missing.push({
      api: row.api,
      permission: row.permission,
      type: row.type,
      label: rowLabel(row),
      actions,
    });
  }
  return {
    status: missing.length ? "failed" : "successful",
    missing,
    disabledActions: [...disabled],
    enabledActions: [...all].filter((a) => !disabled.has(a)),
  };
}

/** Grants from a list (the stored form), keyed by API. */
export function grantMap(grants: readonly ApiGrant[]): Map<ApiKey, ApiGrant> {
  return new Map(grants.map((g) => [g.api, g]));
}

/** True when `action` is enabled for `app` by `grants`. */
export function actionEnabled(
  app: SaasApp,
  grants: ReadonlyMap<ApiKey, ApiGrant>,
  action: SaasAction,
): boolean {
  return evaluate(app, grants).enabledActions.includes(action);
}

/** The rows that would have to be granted to enable `action` for `app`. */
export function rowsEnabling(app: SaasApp, action: SaasAction): PermissionRow[] {
  return requirementsFor(app).rows.filter((r) => rowActions(r).includes(action));
}

/**
 * "Missing Sites.ReadWrite.All (Microsoft Graph), Files.ReadWrite.All
 * (Microsoft Graph): disables quarantine, remove sharing" — the sentence
 * the API answers with (the console shows it as a list, translated).
 */
export function describeMissing(ev: Evaluation): string {
  const perms = ev.missing.map((m) => m.label).join(", ");
  const actions = ev.disabledActions.map((a) => a.replace(/_/g, " ")).join(", ");
  return `missing ${perms}, which disables ${actions || "nothing"}`;
}
