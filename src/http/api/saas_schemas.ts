/**
 * Wire schemas of the SaaS tenant API (strict: an unknown field is an
 * error). Formats come from the domain (src/saas/fields.ts) so the API and
 * the service refuse the same values; a secret is never quoted back.
 */
import { z } from "zod";
import {
  CLIENT_SECRET,
  CLIENT_SECRET_MSG,
  GUID,
  GUID_MSG,
  KEY_FILE_LIMIT,
  MAX_SCAN_INTERVAL_MIN,
  SAAS_APPS,
  TENANT_NAME,
  TENANT_NAME_MSG,
} from "../../saas/mod.ts";

const Guid = z.string().trim().regex(GUID, GUID_MSG);

/** A date (YYYY-MM-DD) or an ISO time, or null; becomes ms. */
const Expiry = z.union([
  z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "expected a date YYYY-MM-DD or an ISO time")
    .transform((d) => Date.parse(`${d}T00:00:00Z`)),
  z.iso.datetime({ offset: true, message: "expected a date YYYY-MM-DD or an ISO time" })
    .transform((d) => Date.parse(d)),
]).refine((ms) => Number.isFinite(ms), "expected a real date").nullable();

/** What a blocking finding triggers (any field may be left out). */
export const RemediationInput = z.object({
  quarantine: z.boolean().optional(),
  removeSharingLinks: z.boolean().optional(),
  quarantineFolder: z.string().min(1).max(128).optional(),
}).strict();

/** Minutes between scheduled scans: 0 (none) or 15 to a week. */
const ScanInterval = z.number().int().refine(
  (n) => n === 0 || (n >= 15 && n <= MAX_SCAN_INTERVAL_MIN),
  `expected 0 (no schedule) or a whole number of minutes from 15 to ${MAX_SCAN_INTERVAL_MIN}`,
);

const Secret = z.string().regex(CLIENT_SECRET, CLIENT_SECRET_MSG);
const KeyJson = z.string().min(1).max(KEY_FILE_LIMIT, `expected at most ${KEY_FILE_LIMIT} bytes`);

/** POST /api/v1/admin/saas/tenants. */
export const CreateTenantRequest = z.object({
  app: z.enum(SAAS_APPS),
  name: z.string().trim().regex(TENANT_NAME, TENANT_NAME_MSG),
  tenantId: Guid,
  clientId: Guid,
  clientSecret: Secret,
  secretExpiresAt: Expiry.default(null),
  /** SharePoint: the private-key JSON file's text. */
  privateKeyJson: KeyJson.nullable().default(null),
  consentId: z.string().regex(/^consent_[0-9a-f]{18}$/, "expected a consent request id")
    .nullable().default(null),
  remediation: RemediationInput.optional(),
  scanIntervalMinutes: ScanInterval.optional(),
}).strict();

/** POST /api/v1/admin/saas/tenants/:id/reauthorize (every field optional). */
export const ReauthorizeRequest = z.object({
  clientSecret: Secret.optional(),
  secretExpiresAt: Expiry.optional(),
  privateKeyJson: KeyJson.optional(),
}).strict();

/** PATCH /api/v1/admin/saas/tenants/:id. */
export const UpdateTenantRequest = z.object({
  remediation: RemediationInput.optional(),
  secretExpiresAt: Expiry.optional(),
  scanIntervalMinutes: ScanInterval.optional(),
}).strict();

/** POST /api/v1/admin/saas/tenants/:id/scans. */
export const StartScanRequest = z.object({
  /** Forget every cursor and scanned file first. */
  full: z.boolean().default(false),
}).strict();

/** POST /api/v1/admin/saas/consents. */
export const StartConsentRequest = z.object({
  app: z.enum(SAAS_APPS),
  name: z.string().trim().regex(TENANT_NAME, TENANT_NAME_MSG),
  tenantId: Guid,
  clientId: Guid,
  redirectUri: z.url().max(500),
}).strict();

/** The redirect's query (GET /api/v1/saas/consent). */
export const ConsentRedirectQuery = z.object({
  state: z.string().max(400).optional(),
  admin_consent: z.string().max(16).optional(),
  tenant: z.string().max(64).optional(),
  error: z.string().max(200).optional(),
  error_description: z.string().max(2000).optional(),
  error_uri: z.string().max(500).optional(),
  scope: z.string().max(2000).optional(),
}).strip();
