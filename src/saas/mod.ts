/**
 * Microsoft SaaS custom connectors: tenants of Exchange, MIP labels,
 * OneDrive, SharePoint, Azure Blob Storage and Teams connected with a
 * minimal-permission app registration (client ID, sealed client secret,
 * tenant ID; a certificate for SharePoint), admin consent, validation of
 * the granted permissions against the connector guide's tables, and
 * data-at-rest scanning of OneDrive and SharePoint through the DLP engine.
 */
export * from "./apps.ts";
export * from "./types.ts";
export {
  actionEnabled,
  type ApiGrant,
  describeMissing,
  evaluate,
  type Evaluation,
  grantMap,
  type MissingPermission,
  rowsEnabling,
} from "./permissions.ts";
export {
  checkField,
  CLIENT_SECRET,
  CLIENT_SECRET_MSG,
  EXPIRY_WARNING_DAYS,
  type ExpiryState,
  expiryState,
  GUID,
  GUID_MSG,
  KEY_FILE_LIMIT,
  MAX_SCAN_INTERVAL_MIN,
  TENANT_NAME,
  TENANT_NAME_MSG,
} from "./fields.ts";
export { parseSharePointKey, type SharePointKey } from "./sharepoint_key.ts";
export {
  adminConsentUrl,
  CONSENT_REDIRECT_PATH,
  CONSENT_TTL_MS,
  consentAnswer,
} from "./consent.ts";
export {
  type ClientCredential,
  DEFAULT_AUTHORITY_URL,
  type IssuedToken,
  MsalTokenSource,
  TokenError,
  type TokenRequest,
  type TokenSource,
} from "./token_client.ts";
export type { FetchFn } from "./fetch_network.ts";
export { DEFAULT_GRAPH_URL, GraphClient, GraphError, parseRetryAfter } from "./graph_client.ts";
export {
  type ContentInspector,
  FINDING_OUTCOMES,
  type FindingOutcome,
  MAX_SCAN_BYTES,
  type Verdict,
} from "./drive_scan.ts";
export { dlpInspector } from "./dlp_inspector.ts";
export { SaasService, type SaasServiceDeps } from "./service.ts";
export { SaasScanner, type ScannerDeps, scanView } from "./scans.ts";
