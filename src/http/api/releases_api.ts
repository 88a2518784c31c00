/**
 * Connector releases and update rules over REST.
 *
 * Admin (mounted at /api/v1/admin/updates behind the admin middleware):
 * releases (POST a bundle as application/octet-stream, list, delete), rules
 * (create, change — pause, percentage, target, rollback with its signed
 * authorisation — delete) and the
 * dashboard's versions by rule.
 *
 * Device (mounted at /api/v1/update, with the device's credentials): the
 * release it should run (GET), the program's bytes (GET /program/:version)
 * and its report on an update (POST /report).
 */
import { Hono, type MiddlewareHandler } from "hono";
import { z } from "zod";
import { RELEASE_LIMIT } from "../../edge/releases.ts";
import { NotFoundError } from "../../errors.ts";
import { parseVersion } from "../../version.ts";
import { iso, readBodyLimited, readJson, requireContentType } from "./common.ts";
import type { EdgeEnv, ResolvedDeps } from "./env.ts";

const Version = z.string().min(1).max(32).refine((v) => parseVersion(v) !== null, {
  message: "expected a version such as 1.2.0",
});

const RollbackText = z.string().trim().min(2).max(8192);

/** POST /admin/updates/rules. */
export const CreateUpdateRule = z.object({
  name: z.string().trim().min(1).max(64),
  group: z.string().trim().min(1).max(128).nullable().default(null),
  percent: z.number().int().min(0).max(100),
  targetVersion: Version,
  paused: z.boolean().default(false),
  rollback: z.boolean().default(false),
  /** The text of a `portcullis release rollback` file; a rollback rule needs one. */
  rollbackAuthorisation: RollbackText.nullable().default(null),
  position: z.number().int().min(0).max(10_000).optional(),
}).strict();

/** PATCH /admin/updates/rules/:id. */
export const UpdateUpdateRule = z.object({
  name: z.string().trim().min(1).max(64).optional(),
  group: z.string().trim().min(1).max(128).nullable().optional(),
  percent: z.number().int().min(0).max(100).optional(),
  targetVersion: Version.optional(),
  paused: z.boolean().optional(),
  rollback: z.boolean().optional(),
  rollbackAuthorisation: RollbackText.nullable().optional(),
  position: z.number().int().min(0).max(10_000).optional(),
}).strict();

/** POST /update/report: what the connector did with a release. */
export const UpdateReportRequest = z.object({
  version: z.string().min(1).max(32),
  outcome: z.enum(["installed", "rolled_back", "refused", "failed"]),
  reason: z.string().max(500).default(""),
}).strict();

/** Builds the admin sub-app. */
export function releasesAdminApi(deps: ResolvedDeps): Hono<EdgeEnv> {
  const { ctx } = deps;
  const r = ctx.releases;
  const app = new Hono<EdgeEnv>();
  const rule = (x: ReturnType<typeof r.rules>[number]) => ({
    ...x,
    createdAt: iso(x.createdAt),
    updatedAt: iso(x.updatedAt),
  });
  app.get("/releases", (c) =>
    c.json({
      releases: r.list().map((x) => ({ ...x, uploadedAt: iso(x.uploadedAt) })),
    }, 200));
  app.post("/releases", async (c) => {
    requireContentType(c, "application/octet-stream");
    const bytes = await readBodyLimited(c, RELEASE_LIMIT);
    const out = r.upload(bytes, c.get("actor"));
    return c.json({ release: { ...out, uploadedAt: iso(out.uploadedAt) } }, 201);
  });
  app.delete("/releases/:version", async (c) => {
    await r.delete(c.req.param("version"), c.get("actor"));
    return c.body(null, 204);
  });
  app.get("/rules", (c) => c.json({ rules: r.rules().map(rule) }, 200));
  app.post("/rules", async (c) => {
    const body = await readJson(c, CreateUpdateRule);
    return c.json({ rule: rule(r.createRule(body, c.get("actor"))) }, 201);
  });
  app.patch("/rules/:id", async (c) => {
    const body = await readJson(c, UpdateUpdateRule);
    return c.json({ rule: rule(r.updateRule(c.req.param("id"), body, c.get("actor"))) }, 200);
  });
  app.delete("/rules/:id", (c) => {
    r.deleteRule(c.req.param("id"), c.get("actor"));
    return c.body(null, 204);
  });
  app.get("/overview", (c) => {
    const names = new Map(ctx.store.devices.list().map((d) => [d.id, d.hostname]));
    return c.json({
      rules: r.overview().map((o) => ({ ...o, rule: o.rule && rule(o.rule) })),
      reports: r.reports().slice(0, 100).map((x) => ({
        ...x,
        hostname: names.get(x.deviceId) ?? null,
        at: iso(x.at),
      })),
    }, 200);
  });
  return app;
}

/** Builds the device sub-app; `auth` is the device API's credential check. */
export function releasesDeviceApi(
  deps: ResolvedDeps,
  auth: MiddlewareHandler<EdgeEnv>,
): Hono<EdgeEnv> {
  const { ctx } = deps;
  const app = new Hono<EdgeEnv>();
  app.get("/", auth, (c) => {
    const device = c.get("device");
    ctx.store.devices.touch(device.id, ctx.clock.now());
    const offer = ctx.releases.offer(device.id);
    return c.json({ update: offer, serverTime: iso(ctx.clock.now()) }, 200);
  });
  app.get("/program/:version", auth, (c) => {
    const version = c.req.param("version");
    const p = ctx.releases.program(version);
    if (!p) {
      throw new NotFoundError(
        "release_not_found",
        `No release ${JSON.stringify(version.slice(0, 40))} on this edge`,
      );
    }
    // Streamed from the store a chunk at a time; cut off if it is not the manifest's program.
    return c.body(p.stream, 200, {
      "Content-Type": "application/octet-stream",
      "Content-Length": String(p.size),
    });
  });
  app.post("/report", auth, async (c) => {
    const body = await readJson(c, UpdateReportRequest);
    ctx.releases.report(c.get("device"), body);
    return c.json({ ok: true, serverTime: iso(ctx.clock.now()) }, 200);
  });
  return app;
}
