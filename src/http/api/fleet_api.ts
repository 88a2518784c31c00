/**
 * The fleet API, mounted at /api/v1/admin/edges behind the admin
 * middleware: every edge registered on this database with its health, last
 * heartbeat and connected devices (GET), and forgetting a decommissioned
 * edge (DELETE, refused for a healthy one). GET also lists this edge's
 * mesh peers (the other edges its tunnel carries device-to-device traffic
 * to), with their last handshake and the devices routed to each.
 */
import { Hono } from "hono";
import { HEARTBEAT_MS, UNHEALTHY_AFTER_MS } from "../../fleet/edge_registry.ts";
import type { EdgeEnv, ResolvedDeps } from "./env.ts";

/** Builds the fleet sub-app. */
export function fleetAdminApi(deps: ResolvedDeps): Hono<EdgeEnv> {
  const { ctx } = deps;
  const app = new Hono<EdgeEnv>();
  app.get("/", (c) =>
    c.json({
      edges: ctx.fleet.views(),
      self: ctx.fleet.id,
      heartbeatMs: HEARTBEAT_MS,
      unhealthyAfterMs: UNHEALTHY_AFTER_MS,
      mesh: (ctx.mesh?.() ?? []).map((m) => ({
        ...m,
        lastHandshake: m.lastHandshake === null ? null : new Date(m.lastHandshake).toISOString(),
      })),
    }, 200));
  app.delete("/:id", (c) => {
    const id = c.req.param("id");
    const e = ctx.fleet.forget(id);
    ctx.store.audit.insert({
      at: ctx.clock.now(),
      actor: c.get("actor"),
      action: "edge.forget",
      target: id,
      detail: { name: e.name, region: e.region },
    });
    return c.body(null, 204);
  });
  return app;
}
