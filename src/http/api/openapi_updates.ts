/**
 * The OpenAPI entries of connector releases and update rules
 * (releases_api.ts), from the same zod schemas its handlers validate with.
 */
import type { RouteDoc } from "./openapi.ts";
import { CreateUpdateRule, UpdateReportRequest, UpdateUpdateRule } from "./releases_api.ts";
import { UpdateCheckResponse } from "./schemas.ts";

const U = "/api/v1/admin/updates";

/** The update routes, admin and device. */
export const UPDATE_ROUTES: RouteDoc[] = [
  { method: "get", path: `${U}/releases`, summary: "Connector releases", auth: "admin" },
  {
    method: "post",
    path: `${U}/releases`,
    summary:
      "Upload a release bundle (portcullis release sign); its program must match the manifest's size and SHA-256",
    auth: "admin",
    requestType: "application/octet-stream",
    status: 201,
    errors: [400, 401, 403, 409, 413, 415],
  },
  {
    method: "delete",
    path: `${U}/releases/{version}`,
    summary: "Delete a release no rule targets (409 release_in_use)",
    auth: "admin",
    status: 204,
  },
  { method: "get", path: `${U}/rules`, summary: "Update rules by position", auth: "admin" },
  {
    method: "post",
    path: `${U}/rules`,
    summary: "Create an update rule: group, percentage, target version, pause, rollback",
    auth: "admin",
    request: CreateUpdateRule,
    status: 201,
    errors: [400, 401, 403, 409, 415],
  },
  {
    method: "patch",
    path: `${U}/rules/{id}`,
    summary: "Change an update rule (pause, percentage, target, rollback, position)",
    auth: "admin",
    request: UpdateUpdateRule,
    errors: [400, 401, 403, 404, 409, 415],
  },
  {
    method: "delete",
    path: `${U}/rules/{id}`,
    summary: "Delete an update rule",
    auth: "admin",
    status: 204,
  },
  {
    method: "get",
    path: `${U}/overview`,
    summary: "Versions by rule (devices, selected, on target, versions run) and devices' reports",
    auth: "admin",
  },
  {
    method: "get",
    path: "/api/v1/update",
    summary: "The connector release this device should run, or null",
    auth: "device",
    response: UpdateCheckResponse,
  },
  {
    method: "get",
    path: "/api/v1/update/program/{version}",
    summary: "A release's program (application/octet-stream)",
    auth: "device",
  },
  {
    method: "post",
    path: "/api/v1/update/report",
    summary: "What the connector did with a release: installed, rolled_back, refused, failed",
    auth: "device",
    request: UpdateReportRequest,
  },
];
