/**
 * The SaaS tenant API: tenants of the six Microsoft applications (add =
 * authorize and save, Reauthorize, settings, delete), admin consent, the
 * permission tables, data-at-rest scans and their incidents — mounted at
 * /api/v1/admin/saas behind the admin middleware — and the consent
 * redirect handler at /api/v1/saas/consent, which the identity platform's
 * redirect reaches without a session (its state authenticates it).
 *
 * Wire schemas (saas_schemas.ts) are mapped onto the domain's types here;
 * times go out as ISO strings. A tenant saved with permissions missing is
 * answered 422 `permissions_missing` with the tenant, so an API client
 * cannot take it for a working one; nothing else is half-done.
 */
import type { Context } from "hono";
import { Hono } from "hono";
import {
  APIS,
  type ConsentView,
  describeMissing,
  REFERENCE_TABLES,
  requirementsFor,
  rowActions,
  SAAS_ACTIONS,
  SAAS_APPS,
  type ScanView,
  type TenantView,
} from "../../saas/mod.ts";
import { iso, queryInt, readJson } from "./common.ts";
import type { EdgeEnv, ResolvedDeps } from "./env.ts";
import {
  ConsentRedirectQuery,
  CreateTenantRequest,
  ReauthorizeRequest,
  StartConsentRequest,
  StartScanRequest,
  UpdateTenantRequest,
} from "./saas_schemas.ts";

/** Largest tenant body: the fields plus a 64 KiB private-key file, escaped. */
export const TENANT_BODY_LIMIT = 256 * 1024;

const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

/** A tenant on the wire. */
export function tenantJson(t: TenantView) {
  return {
    ...t,
    secretExpiry: { ...t.secretExpiry, at: isoOrNull(t.secretExpiry.at) },
    certificate: t.certificate
      ? {
        ...t.certificate,
        expiry: { ...t.certificate.expiry, at: isoOrNull(t.certificate.expiry.at) },
      }
      : null,
    validatedAt: iso(t.validatedAt),
    consent: { ...t.consent, at: isoOrNull(t.consent.at) },
    createdAt: iso(t.createdAt),
    updatedAt: iso(t.updatedAt),
  };
}

function consentJson(c: ConsentView) {
  return {
    ...c,
    createdAt: iso(c.createdAt),
    expiresAt: iso(c.expiresAt),
    resultAt: isoOrNull(c.resultAt),
  };
}

function scanJson(s: ScanView) {
  return { ...s, startedAt: iso(s.startedAt), finishedAt: isoOrNull(s.finishedAt) };
}

/** The permission tables as data, for the console and API clients. */
export function tablesJson() {
  return SAAS_APPS.map((app) => {
    const req = requirementsFor(app);
    return {
      app,
      source: req.source,
      listedInReference: REFERENCE_TABLES[app].length > 0,
      rows: req.rows.map((r) => ({
        api: r.api,
        apiName: APIS[r.api].name,
        apiAppId: APIS[r.api].appId,
        permission: r.permission,
        type: r.type,
        actions: rowActions(r),
        reference: r.reference,
      })),
    };
  });
}

/** 201 for a working tenant, 422 with the tenant for one saved with permissions missing. */
function answerTenant(c: Context, t: TenantView, ok: 200 | 201) {
  if (t.status === "successful") return c.json(tenantJson(t), ok);
  return c.json({
    error: {
      code: "permissions_missing",
      message: `SaaS tenant "${t.name}" was saved but its validation failed: ${
        describeMissing(t.validation.evaluation)
      }. Grant them in Entra and reauthorize.`,
    },
    tenant: tenantJson(t),
  }, 422);
}

/** The admin routes (mounted at /api/v1/admin/saas). */
export function saasAdminApi(deps: ResolvedDeps): Hono<EdgeEnv> {
  const { ctx } = deps;
  const { tenants, scanner } = ctx.saas;
  const app = new Hono<EdgeEnv>();
  const id = (c: Context) => c.req.param("id") ?? "";

  app.get("/apps", (c) =>
    c.json({
      apps: tablesJson(),
      actions: SAAS_ACTIONS,
      authorityUrl: ctx.saas.authorityUrl,
      graphUrl: ctx.saas.graphUrl,
    }, 200));

  app.get("/tenants", (c) => c.json({ tenants: tenants.tenants().map(tenantJson) }, 200));
  app.post("/tenants", async (c) => {
    const req = await readJson(c, CreateTenantRequest, TENANT_BODY_LIMIT);
    const t = await tenants.create({
      app: req.app,
      name: req.name,
      tenantId: req.tenantId,
      clientId: req.clientId,
      clientSecret: req.clientSecret,
      secretExpiresAt: req.secretExpiresAt,
      privateKeyJson: req.privateKeyJson,
      consentId: req.consentId,
      remediation: req.remediation,
      scanIntervalMinutes: req.scanIntervalMinutes,
    }, c.get("actor"));
    return answerTenant(c, t, 201);
  });
  app.get("/tenants/:id", (c) => c.json(tenantJson(tenants.tenant(id(c))), 200));
  app.patch("/tenants/:id", async (c) => {
    const req = await readJson(c, UpdateTenantRequest);
    return c.json(tenantJson(tenants.update(id(c), req, c.get("actor"))), 200);
  });
  app.post("/tenants/:id/reauthorize", async (c) => {
    // A Reauthorize without changes may come without a body.
    const req = c.req.header("content-type") !== undefined
      ? await readJson(c, ReauthorizeRequest, TENANT_BODY_LIMIT)
      : {};
    const t = await tenants.reauthorize(id(c), c.get("actor"), req);
    return answerTenant(c, t, 200);
  });
  app.delete("/tenants/:id", async (c) => {
    tenants.tenant(id(c)); // 404 before anything stops
    await scanner.stop(id(c));
    tenants.delete(id(c), c.get("actor"));
    return c.json({ deleted: true }, 200);
  });

  app.get("/tenants/:id/scans", (c) => {
    const limit = queryInt(c, "limit", 1, 100, 10);
    return c.json({
      scans: scanner.scans(id(c), limit).map(scanJson),
      running: scanner.running(id(c)),
    }, 200);
  });
  app.post("/tenants/:id/scans", async (c) => {
    const req = c.req.header("content-type") !== undefined
      ? await readJson(c, StartScanRequest)
      : { full: false };
    const s = await scanner.start(id(c), c.get("actor"), { full: req.full });
    return c.json(scanJson(s), 202);
  });
  app.get("/tenants/:id/incidents", (c) => {
    const t = tenants.tenant(id(c));
    const limit = queryInt(c, "limit", 1, 500, 100);
    const incidents = ctx.store.dlpIncidents.list({
      channel: "saas_at_rest",
      source: "saas",
      hostname: t.name,
      limit,
    });
    return c.json({
      incidents: incidents.map((i) => ({
        ...i,
        occurredAt: iso(i.occurredAt),
        receivedAt: iso(i.receivedAt),
      })),
    }, 200);
  });

  app.post("/consents", async (c) => {
    const req = await readJson(c, StartConsentRequest);
    const { consent, url } = tenants.consents.start(req, c.get("actor"));
    return c.json({ consent: consentJson(consent), url }, 201);
  });
  app.get("/consents/:id", (c) => c.json(consentJson(tenants.consents.get(id(c))), 200));
  return app;
}

/** The consent redirect handler (mounted at /api/v1/saas; no session: the state is checked). */
export function saasPublicApi(deps: ResolvedDeps): Hono<EdgeEnv> {
  const app = new Hono<EdgeEnv>();
  app.get("/consent", (c) => {
    const q = ConsentRedirectQuery.parse(c.req.query());
    const consent = deps.ctx.saas.tenants.consents.complete(q);
    return c.json(consentJson(consent), 200);
  });
  return app;
}
