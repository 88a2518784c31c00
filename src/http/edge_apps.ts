/**
 * The edge's HTTP apps as one set for `startEdge` (src/edge/run.ts), which
 * main.ts composes: the REST API, the same API for the public listener
 * (without /metrics), the bootstrap app, the "am I protected" page and,
 * optionally, the admin console around the API.
 */
import { Hono } from "hono";
import type { EdgeApps } from "../edge/run.ts";
import type { EdgeEnv } from "./api/env.ts";
import { createEdgeApp } from "./app_edge.ts";
import { createBootstrapApp } from "./bootstrap_app.ts";
import { createProtectedApp } from "./protected_app.ts";
import type { LogRecord } from "../log.ts";

/** Builds the standard set; `console` mounts the admin console on the console listener. */
export function edgeApps(
  o: {
    console?: EdgeApps<Hono<EdgeEnv>>["console"];
    /** Product version and recent log records, for the diagnostics bundle. */
    productVersion?: string;
    logs?: () => LogRecord[];
  } = {},
): EdgeApps<Hono<EdgeEnv>> {
  return {
    api: (cp) => createEdgeApp({ ctx: cp.ctx, productVersion: o.productVersion, logs: o.logs }),
    publicApi: (api) => {
      const app = new Hono();
      app.get(
        "/metrics",
        (c) =>
          c.json({
            error: {
              code: "not_found",
              message: "Metrics are served on the console listener only.",
            },
          }, 404),
      );
      app.all("*", (c) => api.fetch(c.req.raw, c.env));
      return app;
    },
    bootstrap: (ca) => createBootstrapApp({ caCertPem: ca.caCertPem, caSha256: ca.caSha256 }),
    protectedPage: (ctx, remoteOf) => createProtectedApp(ctx, remoteOf),
    console: o.console,
  };
}
