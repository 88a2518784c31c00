/**
 * The OpenAPI entries of the SaaS tenant API (saas_api.ts), from the same
 * zod schemas its handlers validate with.
 */
import type { z } from "zod";
import {
  CreateTenantRequest,
  ReauthorizeRequest,
  StartConsentRequest,
  StartScanRequest,
  UpdateTenantRequest,
} from "./saas_schemas.ts";

/** One documented route (the shape openapi.ts renders). */
export interface SaasRouteDoc {
  method: "get" | "post" | "put" | "patch" | "delete";
  path: string;
  summary: string;
  auth: "none" | "admin";
  request?: z.ZodType;
  status?: number;
  errors?: number[];
}

const SAAS = "/api/v1/admin/saas";

/** The SaaS routes. */
export const SAAS_ROUTES: SaasRouteDoc[] = [
  {
    method: "get",
    path: `${SAAS}/apps`,
    summary:
      "The permission table of each Microsoft application (API, permission, type, actions it enables)",
    auth: "admin",
  },
  { method: "get", path: `${SAAS}/tenants`, summary: "List SaaS tenants", auth: "admin" },
  {
    method: "post",
    path: `${SAAS}/tenants`,
    summary:
      "Authorize and add a tenant: 201 Validation Successful; 422 permissions_missing when saved as Validation Failed; 400 when the issuer refuses the credentials (nothing saved); 502 when it cannot be reached",
    auth: "admin",
    request: CreateTenantRequest,
    status: 201,
    errors: [400, 401, 403, 409, 413, 415, 422, 502],
  },
  { method: "get", path: `${SAAS}/tenants/{id}`, summary: "One SaaS tenant", auth: "admin" },
  {
    method: "patch",
    path: `${SAAS}/tenants/{id}`,
    summary: "Change remediation settings and the secret's expiry date",
    auth: "admin",
    request: UpdateTenantRequest,
    errors: [400, 401, 403, 404, 415],
  },
  {
    method: "post",
    path: `${SAAS}/tenants/{id}/reauthorize`,
    summary:
      "Validate again (Reauthorize), optionally with a new secret or key file, kept only when the issuer accepts it",
    auth: "admin",
    request: ReauthorizeRequest,
    errors: [400, 401, 403, 404, 415, 422, 502],
  },
  {
    method: "delete",
    path: `${SAAS}/tenants/{id}`,
    summary: "Delete a tenant (its DLP incidents stay)",
    auth: "admin",
    errors: [401, 403, 404],
  },
  {
    method: "get",
    path: `${SAAS}/tenants/{id}/scans`,
    summary: "A tenant's data-at-rest scans, newest first",
    auth: "admin",
  },
  {
    method: "post",
    path: `${SAAS}/tenants/{id}/scans`,
    summary: "Start a data-at-rest scan (OneDrive, SharePoint); full: forget every cursor first",
    auth: "admin",
    request: StartScanRequest,
    status: 202,
    errors: [400, 401, 403, 404, 409, 502],
  },
  {
    method: "get",
    path: `${SAAS}/tenants/{id}/incidents`,
    summary: "DLP incidents a tenant's scans found",
    auth: "admin",
  },
  {
    method: "post",
    path: `${SAAS}/consents`,
    summary:
      "Start admin consent for a tenant being added: returns the identity platform's adminconsent URL",
    auth: "admin",
    request: StartConsentRequest,
    status: 201,
    errors: [400, 401, 403, 409, 415],
  },
  { method: "get", path: `${SAAS}/consents/{id}`, summary: "One consent request", auth: "admin" },
  {
    method: "get",
    path: "/api/v1/saas/consent",
    summary:
      "The admin-consent redirect (admin_consent, tenant, state or error): accepted once for a state this edge issued",
    auth: "none",
    errors: [400],
  },
];
