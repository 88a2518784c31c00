/**
 * The OpenAPI entries of the Internet security API (web_api.ts), from the
 * same zod schemas its handlers validate with.
 */
import { z } from "zod";
import { UrlRule } from "../../proxy/url_policy.ts";
import { InspectionSettings } from "../../edge/web_security.ts";
import type { SaasRouteDoc } from "./openapi_saas.ts";
import { PacTestRequest, SetPacTemplateRequest } from "./web_api.ts";

const WEB = "/api/v1/admin/web";

/** The Internet security routes. */
export const WEB_ROUTES: SaasRouteDoc[] = [
  { method: "get", path: `${WEB}/url-rules`, summary: "URL rules in order", auth: "admin" },
  {
    method: "put",
    path: `${WEB}/url-rules`,
    summary:
      "Replace the URL rules (first match decides; hosts exact, *.below or .and-below, categories, path prefixes, methods, users, groups; block, caution, allow, allow_log)",
    auth: "admin",
    request: z.object({ items: z.array(UrlRule) }),
    errors: [400, 401, 403, 413, 415],
  },
  {
    method: "get",
    path: `${WEB}/categories`,
    summary: "URL categories with their domain counts",
    auth: "admin",
  },
  {
    method: "get",
    path: `${WEB}/inspection`,
    summary: "SSL inspection settings and the inspection CA (certificate and SHA-256)",
    auth: "admin",
  },
  {
    method: "put",
    path: `${WEB}/inspection`,
    summary: "Turn SSL inspection on or off and set the Do-Not-Inspect names and categories",
    auth: "admin",
    request: InspectionSettings,
    errors: [400, 401, 403, 415],
  },
  {
    method: "get",
    path: `${WEB}/pac`,
    summary:
      "The PAC file a machine device of a group gets (query: group): the profile's template or the generated file, PROXY the edge proxy through the tunnel; 409 without the web proxy",
    auth: "admin",
    errors: [401, 403, 409],
  },
  {
    method: "get",
    path: `${WEB}/pac-templates`,
    summary: "Every app profile's PAC template (null: the generated file)",
    auth: "admin",
  },
  {
    method: "put",
    path: `${WEB}/pac-templates/{profile}`,
    summary:
      "Set an app profile's PAC template (variables ${PROXY}, ${EDGE}, ${DEVICE_HOSTNAME}, ${USER}, ${GROUPS} become JSON literals; checked in the sandbox before it is stored), or null for the generated file",
    auth: "admin",
    request: SetPacTemplateRequest,
    errors: [400, 401, 403, 404, 413, 415],
  },
  {
    method: "post",
    path: `${WEB}/pac-test`,
    summary:
      "Evaluate a PAC file for a URL in the sandbox (fresh VM, time and memory limit): the proxy list, or the error and its line",
    auth: "admin",
    request: PacTestRequest,
    errors: [400, 401, 403, 413, 415],
  },
  {
    method: "get",
    path: `${WEB}/log`,
    summary:
      "The web log, newest first (query: host substring, user, device, action, rule, since, before, limit)",
    auth: "admin",
  },
];
