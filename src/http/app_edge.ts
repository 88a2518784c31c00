/**
 * The edge's HTTP application: device API, login and admin API, OpenAPI
 * document and Prometheus metrics, behind one error handler. main.ts serves
 * it (this module never listens). Every response carries `X-Server-Time` so
 * connectors can measure clock skew.
 */
import { Hono } from "hono";
import { routePath } from "hono/route";
import { LoginRateLimiter } from "../identity/rate_limit.ts";
import { SessionManager } from "../identity/sessions.ts";
import { IdentityProviders } from "../identity/providers.ts";
import { OidcRelyingParty } from "../identity/oidc.ts";
import { SignInService } from "../identity/signin.ts";
import { signInApi } from "./api/signin_api.ts";
import { adminApi, authApi } from "./api/admin_api.ts";
import { errorResponse, iso } from "./api/common.ts";
import { deviceApi } from "./api/device_api.ts";
import { dlpDeviceApi } from "./api/dlp_api.ts";
import { saasPublicApi } from "./api/saas_api.ts";
import type { EdgeAppDeps, EdgeEnv, ResolvedDeps } from "./api/env.ts";
import { EdgeMetrics } from "./api/metrics.ts";
import { openApiDocument } from "./api/openapi.ts";

export type { EdgeAppDeps } from "./api/env.ts";

/** Builds the edge Hono app from its dependencies. */
export function createEdgeApp(deps: EdgeAppDeps): Hono<EdgeEnv> {
  const { ctx } = deps;
  const identityProviders = deps.identityProviders ?? new IdentityProviders(ctx.store, ctx.clock);
  const resolved: ResolvedDeps = {
    ctx,
    sessions: deps.sessions ?? new SessionManager(ctx.store, ctx.clock),
    rateLimiter: deps.rateLimiter ?? new LoginRateLimiter(ctx.clock),
    sseKeepaliveMs: deps.sseKeepaliveMs ?? 15_000,
    scrypt: deps.scrypt,
    metrics: deps.metrics ?? new EdgeMetrics(),
    supportQuota: deps.supportQuota,
    productVersion: deps.productVersion,
    logs: deps.logs,
    identityProviders,
    signIn: deps.signIn ?? new SignInService({
      store: ctx.store,
      clock: ctx.clock,
      providers: identityProviders,
      oidc: new OidcRelyingParty(ctx.clock, undefined, () => ctx.policy.signInClockSkewSec()),
      lifetimeMs: () => ctx.policy.signInLifetimeMs(),
      clockSkewSec: () => ctx.policy.signInClockSkewSec(),
    }),
  };
  const app = new Hono<EdgeEnv>();

  app.use("*", async (c, next) => {
    await next();
    c.res.headers.set("X-Server-Time", iso(ctx.clock.now()));
    const route = routePath(c);
    resolved.metrics.request(c.req.method, route === "/*" ? "(unmatched)" : route, c.res.status);
  });

  app.get("/api/v1/health", (c) => c.json({ status: "ok", serverTime: iso(ctx.clock.now()) }));
  let openapi: Record<string, unknown> | undefined;
  app.get("/api/v1/openapi.json", (c) => c.json(openapi ??= openApiDocument()));
  app.get("/metrics", (c) =>
    c.text(resolved.metrics.render(ctx), 200, {
      "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
    }));

  app.route("/api/v1/dlp", dlpDeviceApi(resolved));
  app.route("/api/v1/saas", saasPublicApi(resolved));
  app.route("/api/v1/signin", signInApi(resolved));
  app.route("/api/v1", deviceApi(resolved));
  app.route("/api/v1/auth", authApi(resolved));
  app.route("/api/v1/admin", adminApi(resolved));

  app.notFound((c) =>
    c.json({
      error: {
        code: "not_found",
        message: `No route for ${c.req.method} ${c.req.path.slice(0, 200)}`,
      },
    }, 404)
  );
  app.onError((err, c) => errorResponse(c, err));
  return app;
}
