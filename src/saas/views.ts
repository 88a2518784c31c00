/**
 * What the API and console are shown of stored tenants and consent
 * requests: every field but the client secret and the private key, with
 * expiry flags worked out at `now`.
 */
import type { SaasConsentRecord, SaasTenantRecord } from "../store/mod.ts";
import { isSaasApp, requirementsFor, type SaasApp, SCANNABLE_APPS } from "./apps.ts";
import { expiryState } from "./fields.ts";
import { evaluate, grantMap } from "./permissions.ts";
import {
  type ConsentView,
  DEFAULT_REMEDIATION,
  type Remediation,
  type StoredValidation,
  type TenantView,
} from "./types.ts";

/** The stored tenant's application (the table CHECK keeps it one of SAAS_APPS). */
export function appOf(t: SaasTenantRecord): SaasApp {
  return isSaasApp(t.app) ? t.app : "onedrive";
}

/** The stored remediation settings, with defaults for anything missing. */
export function remediationOf(t: SaasTenantRecord): Remediation {
  const r = (t.remediation ?? {}) as Partial<Remediation>;
  return {
    quarantine: r.quarantine === true,
    removeSharingLinks: r.removeSharingLinks === true,
    quarantineFolder: typeof r.quarantineFolder === "string"
      ? r.quarantineFolder
      : DEFAULT_REMEDIATION.quarantineFolder,
  };
}

/**
 * The stored validation, evaluated again against the current tables: the
 * grants are facts from the issuer, the rows are this program's, so a
 * table change applies without asking the issuer again.
 */
export function validationOf(t: SaasTenantRecord): StoredValidation {
  const v = (t.validation ?? {}) as Partial<StoredValidation>;
  const grants = Array.isArray(v.grants) ? v.grants : [];
  const app = appOf(t);
  return {
    grants,
    evaluation: evaluate(app, grantMap(grants)),
    source: requirementsFor(app).source,
  };
}

/** A consent request's view. */
export function consentView(c: SaasConsentRecord): ConsentView {
  return {
    id: c.id,
    name: c.name,
    app: isSaasApp(c.app) ? c.app : "onedrive",
    tenantId: c.tenantId,
    clientId: c.clientId,
    redirectUri: c.redirectUri,
    createdAt: c.createdAt,
    expiresAt: c.expiresAt,
    result: c.result,
    resultAt: c.resultAt,
    error: c.error,
    consentedTenant: c.consentedTenant,
  };
}

/** A tenant's view at `now`. */
export function tenantView(
  t: SaasTenantRecord,
  consent: SaasConsentRecord | undefined,
  now: number,
): TenantView {
  const validation = validationOf(t);
  const app = appOf(t);
  return {
    id: t.id,
    name: t.name,
    app,
    tenantId: t.tenantId,
    clientId: t.clientId,
    clientSecretSet: true,
    secretExpiry: { at: t.secretExpiresAt, state: expiryState(t.secretExpiresAt, now) },
    certificate: t.certThumbprint
      ? {
        subject: t.certSubject ?? "",
        thumbprintSha256: t.certThumbprint,
        expiry: { at: t.certNotAfter, state: expiryState(t.certNotAfter, now) },
      }
      : null,
    status: validation.evaluation.status,
    validatedAt: t.validatedAt,
    validation,
    consent: consent
      ? {
        status: consent.result ?? "not_recorded",
        at: consent.resultAt,
        error: consent.error,
      }
      : { status: "not_recorded", at: null, error: null },
    remediation: remediationOf(t),
    scanIntervalMinutes: t.scanIntervalMin,
    scannable: SCANNABLE_APPS.includes(app),
    enabledActions: validation.evaluation.enabledActions,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
  };
}
