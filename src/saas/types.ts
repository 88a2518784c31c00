/**
 * The SaaS domain's types: what adding or changing a tenant takes (the HTTP
 * layer maps its wire schemas onto these), what is stored of a validation,
 * and what the API and console are shown of a tenant — never its secret
 * or private key.
 */
import type { SaasAction, SaasApp } from "./apps.ts";
import type { ExpiryState } from "./fields.ts";
import type { ApiGrant, Evaluation } from "./permissions.ts";

/** What a blocking finding triggers. */
export interface Remediation {
  quarantine: boolean;
  removeSharingLinks: boolean;
  /** Folder at the root of the file's drive that quarantined files move into. */
  quarantineFolder: string;
}

/** The default: report only; quarantine needs an admin's choice. */
export const DEFAULT_REMEDIATION: Remediation = {
  quarantine: false,
  removeSharingLinks: false,
  quarantineFolder: "Quarantine",
};

/** A tenant to add. */
export interface NewTenant {
  app: SaasApp;
  name: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** When the client secret expires (ms), as the app registration shows it; null when not given. */
  secretExpiresAt: number | null;
  /** SharePoint: the private-key JSON file's text. */
  privateKeyJson: string | null;
  /** The admin-consent request this tenant follows, if consent was given through the edge. */
  consentId: string | null;
  remediation?: Partial<Remediation>;
  /** Minutes between scheduled scans (OneDrive, SharePoint); 0 or absent: none. */
  scanIntervalMinutes?: number;
}

/** Changes to a tenant; credentials changes are validated before they are kept. */
export interface TenantChanges {
  clientSecret?: string;
  secretExpiresAt?: number | null;
  privateKeyJson?: string;
  remediation?: Partial<Remediation>;
  scanIntervalMinutes?: number;
}

/** The stored outcome of the last validation. */
export interface StoredValidation {
  grants: ApiGrant[];
  evaluation: Evaluation;
  /** Where the rows came from ("onedrive" for SharePoint, see apps.ts). */
  source: SaasApp;
}

/** An expiry and its state. */
export interface ExpiryView {
  at: number | null;
  state: ExpiryState;
}

/** A tenant as the API shows it. */
export interface TenantView {
  id: string;
  name: string;
  app: SaasApp;
  tenantId: string;
  clientId: string;
  /** Always true: the secret is write-only and never shown again. */
  clientSecretSet: true;
  secretExpiry: ExpiryView;
  certificate: { subject: string; thumbprintSha256: string; expiry: ExpiryView } | null;
  status: "successful" | "failed";
  validatedAt: number;
  validation: StoredValidation;
  consent: {
    status: "granted" | "denied" | "not_recorded";
    at: number | null;
    error: string | null;
  };
  remediation: Remediation;
  /** Minutes between scheduled scans; 0: only when started. */
  scanIntervalMinutes: number;
  scannable: boolean;
  enabledActions: SaasAction[];
  createdAt: number;
  updatedAt: number;
}

/** A consent request as the API shows it (the state is returned once, in its URL). */
export interface ConsentView {
  id: string;
  name: string;
  app: SaasApp;
  tenantId: string;
  clientId: string;
  redirectUri: string;
  createdAt: number;
  expiresAt: number;
  result: "granted" | "denied" | null;
  resultAt: number | null;
  error: string | null;
  consentedTenant: string | null;
}

/** A scan as the API shows it. */
export interface ScanView {
  id: string;
  state: "running" | "completed" | "failed";
  startedBy: string;
  startedAt: number;
  finishedAt: number | null;
  drives: number;
  pages: number;
  filesSeen: number;
  filesScanned: number;
  findings: number;
  remediations: number;
  throttled: number;
  error: string | null;
}

/** What the SaaS scanner hands the DLP service for one finding. */
export interface SaasIncident {
  tenantName: string;
  user: string;
  fileName: string;
  fileSha256: string;
  fileSize: number;
  fileType: string;
  rule: string | null;
  action: "notify" | "block";
  outcome: string;
  matches: { dictionary: string; kind: string; count: number; samples: string[] }[];
}
