/**
 * The identity provider API (mounted at /api/v1/admin/identity-providers
 * behind the admin middleware): list, add, change and delete the OIDC and
 * SAML providers users sign in through. Wire schemas (idp_schemas.ts) are
 * mapped onto the domain's types here; times go out as ISO strings and the
 * client secret never goes out at all.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { ProviderView } from "../../identity/providers.ts";
import { iso, readJson } from "./common.ts";
import type { EdgeEnv, ResolvedDeps } from "./env.ts";
import {
  CreateProviderRequest,
  PROVIDER_BODY_LIMIT,
  UpdateProviderRequest,
} from "./idp_schemas.ts";

/** A provider on the wire. */
export function providerJson(p: ProviderView) {
  return { ...p, createdAt: iso(p.createdAt), updatedAt: iso(p.updatedAt) };
}

/** The admin routes for identity providers. */
export function identityProviderApi(deps: ResolvedDeps): Hono<EdgeEnv> {
  const idps = deps.identityProviders;
  const app = new Hono<EdgeEnv>();
  const id = (c: Context) => c.req.param("id") ?? "";

  app.get("/", (c) => c.json({ providers: idps.list().map(providerJson) }, 200));
  app.post("/", async (c) => {
    const req = await readJson(c, CreateProviderRequest, PROVIDER_BODY_LIMIT);
    const p = await idps.create(req, c.get("actor"));
    return c.json(providerJson(p), 201);
  });
  app.get("/:id", (c) => c.json(providerJson(idps.get(id(c))), 200));
  app.patch("/:id", async (c) => {
    const req = await readJson(c, UpdateProviderRequest, PROVIDER_BODY_LIMIT);
    return c.json(providerJson(await idps.update(id(c), req, c.get("actor"))), 200);
  });
  app.delete("/:id", (c) => {
    idps.delete(id(c), c.get("actor"));
    return c.json({ deleted: true }, 200);
  });
  return app;
}
