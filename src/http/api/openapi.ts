/**
 * The OpenAPI 3.1 document of the edge API, generated from the same zod
 * schemas the handlers validate with (z.toJSONSchema), so the document and
 * the behaviour cannot drift apart. Only the route list is written here.
 */
import { z } from "zod";
import { ClientToClient } from "../../policy/types.ts";
import {
  CreateKeyRequest,
  CreateTokenRequest,
  CreateUserRequest,
  ExplainRequest,
  HeartbeatResponse,
  LoginRequest,
  LoginResponse,
  PostureResponse,
  SetClockSkewRequest,
  SetPasswordsRequest,
  SetSignInLifetimeRequest,
} from "./admin_schemas.ts";
import {
  C2cRegisterRequest,
  C2cRegisterResponse,
  EnrollRequest,
  EnrollResponse,
  ErrorBody,
  HeartbeatRequest,
  PolicyResponse,
  PostureReport,
  ReauthRequest,
  ReauthResponse,
  ZdxReport,
} from "./schemas.ts";
import { POLICY_COLLECTIONS } from "../../edge/policy.ts";
import { VERSION } from "../../version.ts";
import { DictionaryDef, DlpRule } from "../../dlp/types.ts";
import { SignedIncident } from "../../dlp/report.ts";
import { SAAS_ROUTES } from "./openapi_saas.ts";
import { WEB_ROUTES } from "./openapi_web.ts";
import { UPDATE_ROUTES } from "./openapi_updates.ts";

const DLP = "/api/v1/admin/dlp";
/** The DLP routes (src/http/api/dlp_api.ts). */
const DLP_ROUTES: RouteDoc[] = [
  { method: "get", path: `${DLP}/dictionaries`, summary: "List DLP dictionaries", auth: "admin" },
  {
    method: "put",
    path: `${DLP}/dictionaries/{name}`,
    summary: "Create or replace a DLP dictionary",
    auth: "admin",
    request: DictionaryDef,
    errors: [400, 401, 403, 409, 413, 415],
  },
  {
    method: "post",
    path: `${DLP}/dictionaries/{name}/edm`,
    summary: "Upload the CSV of an exact-data-match dictionary (hashed on arrival, never stored)",
    auth: "admin",
    requestType: "text/csv",
    errors: [400, 401, 403, 404, 409, 413, 415],
  },
  {
    method: "delete",
    path: `${DLP}/dictionaries/{name}`,
    summary: "Delete a DLP dictionary no rule uses",
    auth: "admin",
    errors: [401, 403, 404, 409],
  },
  { method: "get", path: `${DLP}/rules`, summary: "List DLP rules in order", auth: "admin" },
  {
    method: "put",
    path: `${DLP}/rules`,
    summary: "Replace the DLP rules",
    auth: "admin",
    request: z.object({ items: z.array(DlpRule) }),
    errors: [400, 401, 403, 413, 415],
  },
  {
    method: "get",
    path: `${DLP}/incidents`,
    summary: "DLP incidents, newest first (?channel, ?action, ?device, ?before, ?limit)",
    auth: "admin",
  },
  {
    method: "get",
    path: `${DLP}/incidents/export`,
    summary: "Export DLP incidents as JSON",
    auth: "admin",
  },
  { method: "get", path: `${DLP}/incidents/{id}`, summary: "One DLP incident", auth: "admin" },
  {
    method: "post",
    path: `${DLP}/inspect`,
    summary: "Inspect a file against the DLP policy without recording anything",
    auth: "admin",
    requestType: "multipart/form-data",
    errors: [400, 401, 403, 413, 415],
  },
  {
    method: "get",
    path: "/api/v1/pac",
    summary:
      "The device's PAC file (its app profile's template with its variables, or the generated one; ETag / If-None-Match; 409 without the web proxy)",
    auth: "device",
  },
  {
    method: "get",
    path: "/api/v1/dlp/policy",
    summary: "The device's DLP bundle: its rules and their dictionaries (ETag / If-None-Match)",
    auth: "device",
  },
  {
    method: "post",
    path: "/api/v1/dlp/incidents",
    summary: "Report a DLP incident, signed with the device key",
    auth: "device",
    request: SignedIncident,
    status: 201,
    errors: [400, 401, 403, 413, 415],
  },
];

/** Who may call a route. */
export type Auth = "none" | "device" | "admin" | "session";

/** One documented route. */
export interface RouteDoc {
  method: "get" | "post" | "put" | "patch" | "delete";
  path: string;
  summary: string;
  auth: Auth;
  request?: z.ZodType;
  requestType?: string;
  response?: z.ZodType;
  status?: number;
  errors?: number[];
}

/** Every documented route. */
export const ROUTES: RouteDoc[] = [
  { method: "get", path: "/api/v1/health", summary: "Liveness and server time", auth: "none" },
  {
    method: "post",
    path: "/api/v1/enroll",
    summary: "Enrol a device with an enrolment key",
    auth: "none",
    request: EnrollRequest,
    response: EnrollResponse,
    errors: [400, 401, 403, 409, 410, 413, 415],
  },
  {
    method: "get",
    path: "/api/v1/policy",
    summary: "Fetch the policy bundle (ETag / If-None-Match; ?wait=N long-polls up to 60 s)",
    auth: "device",
    response: PolicyResponse,
    errors: [304, 400, 401, 403],
  },
  {
    method: "get",
    path: "/api/v1/policy/stream",
    summary: "Server-sent events: `policy` with each new bundle, keepalive comments every 15 s",
    auth: "device",
  },
  {
    method: "post",
    path: "/api/v1/posture",
    summary: "Store a posture report",
    auth: "device",
    request: PostureReport,
    response: PostureResponse,
  },
  {
    method: "post",
    path: "/api/v1/zdx",
    summary:
      "Send a batch of digital-experience probe results (scored against the device's history)",
    auth: "device",
    request: ZdxReport,
    errors: [400, 401, 403, 413, 415],
  },
  {
    method: "post",
    path: "/api/v1/c2c/register",
    summary: "Register the device's FQDN for client-to-client",
    auth: "device",
    request: C2cRegisterRequest,
    response: C2cRegisterResponse,
  },
  {
    method: "post",
    path: "/api/v1/heartbeat",
    summary: "Report connector state",
    auth: "device",
    request: HeartbeatRequest,
    response: HeartbeatResponse,
  },
  {
    method: "post",
    path: "/api/v1/reauth",
    summary:
      "Hand the user's new sign-in over after the last one ended (signin_expired): the same device is back in the tunnel",
    auth: "device",
    request: ReauthRequest,
    response: ReauthResponse,
  },
  {
    method: "post",
    path: "/api/v1/support",
    summary: "Send a support request: multipart fields `message` and `bundle` (zip, up to 10 MiB)",
    auth: "device",
    requestType: "multipart/form-data",
    status: 201,
  },
  {
    method: "post",
    path: "/api/v1/auth/login",
    summary: "Log in to the console",
    auth: "none",
    request: LoginRequest,
    response: LoginResponse,
    errors: [400, 401, 429],
  },
  { method: "post", path: "/api/v1/auth/logout", summary: "Log out", auth: "session" },
  { method: "get", path: "/api/v1/auth/session", summary: "Current session", auth: "session" },
  { method: "get", path: "/api/v1/admin/users", summary: "List users", auth: "admin" },
  {
    method: "post",
    path: "/api/v1/admin/users",
    summary: "Create a user (returns the TOTP enrolment URI once)",
    auth: "admin",
    request: CreateUserRequest,
    status: 201,
  },
  { method: "delete", path: "/api/v1/admin/users/{id}", summary: "Delete a user", auth: "admin" },
  { method: "get", path: "/api/v1/admin/tokens", summary: "List API tokens", auth: "admin" },
  {
    method: "post",
    path: "/api/v1/admin/tokens",
    summary: "Create an API token (shown once)",
    auth: "admin",
    request: CreateTokenRequest,
    status: 201,
  },
  { method: "delete", path: "/api/v1/admin/tokens/{id}", summary: "Delete a token", auth: "admin" },
  {
    method: "get",
    path: "/api/v1/admin/enrollment-keys",
    summary: "List enrolment keys",
    auth: "admin",
  },
  {
    method: "post",
    path: "/api/v1/admin/enrollment-keys",
    summary: "Create an enrolment key (shown once)",
    auth: "admin",
    request: CreateKeyRequest,
    status: 201,
  },
  {
    method: "post",
    path: "/api/v1/admin/enrollment-keys/{id}/revoke",
    summary: "Revoke an enrolment key",
    auth: "admin",
  },
  { method: "get", path: "/api/v1/admin/devices", summary: "List devices", auth: "admin" },
  {
    method: "get",
    path: "/api/v1/admin/edges",
    summary:
      "The fleet's edges: endpoints, health, last heartbeat, devices connected; this edge's mesh peers",
    auth: "admin",
  },
  {
    method: "delete",
    path: "/api/v1/admin/edges/{id}",
    summary: "Forget a stopped or unhealthy edge (409 edge_healthy for a healthy one)",
    auth: "admin",
    status: 204,
  },
  {
    method: "get",
    path: "/api/v1/admin/zdx",
    summary: "Digital experience of the fleet (?hours=1..168): per app, device, edge, and hops",
    auth: "admin",
  },
  { method: "get", path: "/api/v1/admin/devices/{id}", summary: "Device detail", auth: "admin" },
  {
    method: "post",
    path: "/api/v1/admin/devices/{id}/disable",
    summary: "Disable a device (its tunnel is torn down)",
    auth: "admin",
  },
  {
    method: "post",
    path: "/api/v1/admin/devices/{id}/enable",
    summary: "Enable a device",
    auth: "admin",
  },
  {
    method: "delete",
    path: "/api/v1/admin/devices/{id}",
    summary: "Delete a device (its address is released)",
    auth: "admin",
  },
  {
    method: "get",
    path: "/api/v1/admin/policy/client-to-client",
    summary: "Client-to-client settings",
    auth: "admin",
    response: ClientToClient,
  },
  {
    method: "put",
    path: "/api/v1/admin/policy/client-to-client",
    summary: "Replace client-to-client settings",
    auth: "admin",
    request: ClientToClient,
    response: ClientToClient,
  },
  {
    method: "get",
    path: "/api/v1/admin/policy/passwords",
    summary: "Which connector actions each app profile guards with a password (never the hashes)",
    auth: "admin",
  },
  {
    method: "put",
    path: "/api/v1/admin/policy/app-profiles/{name}/passwords",
    summary:
      "Set (plain text, stored as an scrypt hash), remove (null) or keep (absent) the logout / disable / exit / uninstall passwords of an app profile",
    auth: "admin",
    request: SetPasswordsRequest,
  },
  {
    method: "put",
    path: "/api/v1/admin/policy/app-profiles/{name}/signin-lifetime",
    summary:
      "Set how long a user's sign-in lasts on devices of an app profile (hours, 1 to 720): past it, the user signs in again",
    auth: "admin",
    request: SetSignInLifetimeRequest,
  },
  {
    method: "put",
    path: "/api/v1/admin/policy/app-profiles/{name}/clock-skew",
    summary:
      "Set the sign-in clock tolerance of an app profile (s, 0 to 1800): what the edge accepts, and when connectors warn",
    auth: "admin",
    request: SetClockSkewRequest,
  },
  ...Object.entries(POLICY_COLLECTIONS).flatMap(([name, { schema }]): RouteDoc[] => [
    {
      method: "get",
      path: `/api/v1/admin/policy/${name}`,
      summary: `List ${name}`,
      auth: "admin",
    },
    {
      method: "put",
      path: `/api/v1/admin/policy/${name}`,
      summary: `Replace all ${name} (bumps the policy version)`,
      auth: "admin",
      request: z.object({ items: z.array(schema) }).strict(),
    },
  ]),
  {
    method: "get",
    path: "/api/v1/admin/notifications",
    summary: "List notifications",
    auth: "admin",
  },
  {
    method: "get",
    path: "/api/v1/admin/notifications/stream",
    summary: "Server-sent events of new notifications",
    auth: "admin",
  },
  {
    method: "post",
    path: "/api/v1/admin/notifications/{id}/read",
    summary: "Mark a notification read",
    auth: "admin",
  },
  { method: "get", path: "/api/v1/admin/audit", summary: "Audit log", auth: "admin" },
  {
    method: "get",
    path: "/api/v1/admin/support-requests",
    summary: "List support requests",
    auth: "admin",
  },
  {
    method: "get",
    path: "/api/v1/admin/support-requests/{id}/bundle",
    summary: "Download a support bundle (zip)",
    auth: "admin",
  },
  ...DLP_ROUTES,

  {
    method: "get",
    path: "/api/v1/admin/decisions",
    summary:
      "Access decision log, newest first (filters: device, user, dst, verdict, rule, since, until; paging: before, limit)",
    auth: "admin",
  },
  {
    method: "post",
    path: "/api/v1/admin/access/explain",
    summary: "Why can a device reach (or not reach) a destination: the deciding rule and reason",
    auth: "admin",
    request: ExplainRequest,
  },
  {
    method: "get",
    path: "/api/v1/admin/diagnostics",
    summary: "Download the edge's diagnostics bundle (zip, secrets removed, with the decisions)",
    auth: "admin",
  },
  ...SAAS_ROUTES,
  ...WEB_ROUTES,
  ...UPDATE_ROUTES,
  { method: "get", path: "/metrics", summary: "Prometheus metrics", auth: "none" },
];

function jsonSchema(s: z.ZodType, io: "input" | "output"): unknown {
  return z.toJSONSchema(s, { io, unrepresentable: "any", target: "draft-2020-12" });
}

/** Builds the OpenAPI 3.1 document. */
export function openApiDocument(version = VERSION): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const security: Record<Auth, unknown[]> = {
    none: [],
    device: [{ deviceCredential: [], deviceFingerprint: [] }],
    admin: [{ sessionCookie: [], csrfToken: [] }, { apiToken: [] }],
    session: [{ sessionCookie: [], csrfToken: [] }],
  };
  for (const r of ROUTES) {
    const op: Record<string, unknown> = {
      summary: r.summary,
      security: security[r.auth],
      responses: {
        [String(r.status ?? 200)]: {
          description: "Success",
          ...(r.response
            ? { content: { "application/json": { schema: jsonSchema(r.response, "output") } } }
            : {}),
        },
        ...Object.fromEntries((r.errors ?? [400, 401, 403, 404]).map((s) => [String(s), {
          description: s === 304 ? "Not modified" : "Error",
          ...(s === 304 ? {} : {
            content: {
              "application/json": { schema: { $ref: "#/components/schemas/ErrorBody" } },
            },
          }),
        }])),
      },
    };
    const params = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    if (params.length) op.parameters = params;
    if (r.request) {
      op.requestBody = {
        required: true,
        content: { "application/json": { schema: jsonSchema(r.request, "input") } },
      };
    } else if (r.requestType) {
      op.requestBody = {
        required: true,
        content: { [r.requestType]: { schema: { type: "object" } } },
      };
    }
    (paths[r.path] ??= {})[r.method] = op;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Portcullis edge API",
      version,
      description:
        'Every response carries X-Server-Time. Errors are {"error": {"code", "message"}}.',
    },
    paths,
    components: {
      schemas: { ErrorBody: jsonSchema(ErrorBody, "output") },
      securitySchemes: {
        deviceCredential: { type: "http", scheme: "bearer" },
        deviceFingerprint: { type: "apiKey", in: "header", name: "X-Device-Fingerprint" },
        sessionCookie: { type: "apiKey", in: "cookie", name: "pc_session" },
        csrfToken: { type: "apiKey", in: "header", name: "X-CSRF-Token" },
        apiToken: { type: "http", scheme: "bearer" },
      },
    },
  };
}
