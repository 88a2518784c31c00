/**
 * User sign-in for connectors (mounted at /api/v1/signin; no session: the
 * IdP authenticates the user). The browser flow starts and ends here
 * (start → IdP → oidc/callback → the connector's loopback console), the
 * device flow is started and polled by `portcullis connect`, and a grant is
 * redeemed for a sign-in token. Every refusal is a 4xx with a code and a
 * sentence, and an audit entry (SignInService.refused).
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { clientIp, iso, readJson } from "./common.ts";
import type { EdgeEnv, ResolvedDeps } from "./env.ts";
import {
  DevicePollRequest,
  DeviceStartRequest,
  RedeemRequest,
  StartQuery,
} from "./signin_schemas.ts";

/** Path of the OIDC redirect URI on the edge (register `<edge API URL>` + this at the IdP). */
export const OIDC_CALLBACK_PATH = "/api/v1/signin/oidc/callback";

/** The sign-in routes. */
export function signInApi(deps: ResolvedDeps): Hono<EdgeEnv> {
  const signIn = deps.signIn;
  const app = new Hono<EdgeEnv>();
  const refusing = async <T>(c: Context, flow: string, fn: () => Promise<T> | T): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw signIn.refused(e, { flow, ip: clientIp(c) });
    }
  };

  app.get("/start", (c) =>
    refusing(c, "code", async () => {
      const q = StartQuery.parse(c.req.query());
      const origin = new URL(c.req.url).origin;
      const url = await signIn.start({
        email: q.email,
        redirectUri: `${origin}${OIDC_CALLBACK_PATH}`,
        returnTo: q.return,
        clientState: q.state,
      });
      return c.redirect(url.href, 302);
    }));

  app.get("/oidc/callback", (c) =>
    refusing(c, "code", async () => {
      const back = await signIn.finish(new URL(c.req.url));
      return c.redirect(back.href, 302);
    }));

  app.post("/device", (c) =>
    refusing(c, "device", async () => {
      const req = await readJson(c, DeviceStartRequest);
      return c.json(await signIn.deviceStart(req.email), 200);
    }));

  app.post("/device/poll", (c) =>
    refusing(c, "device", async () => {
      const req = await readJson(c, DevicePollRequest);
      return c.json(signIn.devicePoll(req.handle), 200);
    }));

  app.post("/redeem", (c) =>
    refusing(c, "redeem", async () => {
      const req = await readJson(c, RedeemRequest);
      const r = signIn.redeem(req.grant);
      return c.json({ token: r.token, user: r.user, expiresAt: iso(r.expiresAt) }, 200);
    }));
  return app;
}
