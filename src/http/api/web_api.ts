/**
 * Internet security over REST (mounted under /api/v1/admin/web, behind the
 * admin authentication): URL rules (ordered; PUT replaces the list), the
 * category lists they can name, SSL inspection settings (with the
 * inspection CA's certificate) and the searchable web log.
 */
import { Hono } from "hono";
import { z } from "zod";
import { URL_ACTIONS } from "../../proxy/url_policy.ts";
import { evaluatePac } from "../../proxy/pac_eval.ts";
import { MAX_PAC_TEMPLATE } from "../../policy/pac_template.ts";
import { pacTemplates, setPacTemplate } from "../../edge/pac_files.ts";
import { iso, readJson } from "./common.ts";
import { InputError } from "../../errors.ts";
import type { EdgeEnv, ResolvedDeps } from "./env.ts";

/** GET /api/v1/admin/web/log query. */
export const WebLogQuery = z.object({
  host: z.string().trim().min(1).max(253).optional(),
  user: z.string().trim().min(1).max(256).optional(),
  device: z.string().min(1).max(128).optional(),
  action: z.enum(URL_ACTIONS).optional(),
  rule: z.string().min(1).max(100).optional(),
  since: z.string().datetime({ offset: true }).optional(),
  before: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
}).strict();

/** POST /api/v1/admin/web/pac-test: "where would this URL go?" */
export const PacTestRequest = z.object({
  pac: z.string().min(1).max(256 * 1024),
  url: z.string().min(1).max(2048),
  myIp: z.string().regex(/^\d{1,3}(?:\.\d{1,3}){3}$/, { error: "expected an IPv4 address" })
    .optional(),
}).strict();

/** PUT /api/v1/admin/web/pac-templates/:profile: the profile's PAC template (null: the generated file). */
export const SetPacTemplateRequest = z.object({
  template: z.string().min(1, { error: "expected a PAC template, or null for the generated file" })
    .max(MAX_PAC_TEMPLATE, { error: "expected at most 64 KiB" }).nullable(),
}).strict();

/** The admin web security routes. */
export function webAdminApi(deps: ResolvedDeps): Hono<EdgeEnv> {
  const web = deps.ctx.web;
  const app = new Hono<EdgeEnv>();
  app.get("/url-rules", (c) => c.json({ items: web.rules() }, 200));
  app.put("/url-rules", async (c) => {
    const body = await readJson(c, z.object({ items: z.unknown() }).strict(), 1024 * 1024);
    try {
      return c.json({ items: web.replaceRules(body.items, c.get("actor")) }, 200);
    } catch (err) {
      if (err instanceof z.ZodError) { for (const i of err.issues) i.path.unshift("items"); }
      throw err;
    }
  });
  app.get("/inspection", (c) =>
    c.json({
      ...web.inspection(),
      ca: web.ca ? { sha256: web.ca.sha256, certificate: web.ca.certPem } : null,
    }, 200));
  app.put("/inspection", async (c) => {
    const body = await readJson(c, z.unknown(), 256 * 1024);
    return c.json(web.setInspection(body, c.get("actor")), 200);
  });
  // The PAC file a machine device of the group gets (409 without the web proxy).
  app.get("/pac", (c) => {
    const text = deps.ctx.policy.pacForGroup(c.req.query("group") || null);
    if (text === null) {
      throw new InputError(
        "pac_unavailable",
        "Cannot show a PAC file: this edge runs no web proxy (--web-proxy-port)",
        409,
      );
    }
    return c.text(text, 200, { "content-type": "application/x-ns-proxy-autoconfig" });
  });
  app.get("/pac-templates", (c) => c.json({ items: pacTemplates(deps.ctx.policy) }, 200));
  app.put("/pac-templates/:profile", async (c) => {
    const body = await readJson(c, SetPacTemplateRequest, MAX_PAC_TEMPLATE * 2);
    const name = c.req.param("profile");
    await setPacTemplate(deps.ctx.policy, name, body.template, c.get("actor"));
    return c.json({
      profile: name,
      template: body.template,
      revision: deps.ctx.policy.revision(),
    }, 200);
  });
  app.post("/pac-test", async (c) => {
    const body = await readJson(c, PacTestRequest, 300 * 1024);
    return c.json(await evaluatePac(body.pac, body.url, { myIp: body.myIp }), 200);
  });
  app.get("/categories", (c) => c.json({ items: web.categoryList() }, 200));
  app.get("/log", (c) => {
    const q = WebLogQuery.parse(c.req.query());
    const rows = web.webLog({
      host: q.host,
      user: q.user,
      deviceId: q.device,
      action: q.action,
      rule: q.rule,
      since: q.since ? Date.parse(q.since) : undefined,
      beforeId: q.before,
      limit: q.limit,
    });
    return c.json({ entries: rows.map((e) => ({ ...e, at: iso(e.at) })) }, 200);
  });
  return app;
}
