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
import { clientIp, iso, readBodyLimited, readJson, requireContentType } from "./common.ts";
import { MAX_RESPONSE_CHARS } from "../../identity/saml.ts";
import type { EdgeEnv, ResolvedDeps } from "./env.ts";
import {
  DevicePollRequest,
  DeviceStartRequest,
  LocalSignInRequest,
  RedeemRequest,
  StartQuery,
} from "./signin_schemas.ts";
import { authenticate } from "../../identity/users.ts";
import { InputError } from "../../errors.ts";

/** Path of the OIDC redirect URI on the edge (register `<edge API URL>` + this at the IdP). */
export const OIDC_CALLBACK_PATH = "/api/v1/signin/oidc/callback";

/** Path of our SAML metadata (also our entity ID) and of the ACS. */
export const SAML_METADATA_PATH = "/api/v1/signin/saml/metadata";
/** @see SAML_METADATA_PATH */
export const SAML_ACS_PATH = "/api/v1/signin/saml/acs";
/** Largest ACS form (a base64 SAML response is at most MAX_RESPONSE_CHARS). */
const SAML_FORM_LIMIT = MAX_RESPONSE_CHARS * 2;

function samlUrls(origin: string) {
  return { entityId: `${origin}${SAML_METADATA_PATH}`, acsUrl: `${origin}${SAML_ACS_PATH}` };
}

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
        saml: samlUrls(origin),
      });
      return c.redirect(url.href, 302);
    }));

  app.get("/oidc/callback", (c) =>
    refusing(c, "code", async () => {
      const back = await signIn.finish(new URL(c.req.url));
      return c.redirect(back.href, 302);
    }));

  // SAML: our SP metadata, and the ACS (HTTP-POST binding; the IdP's form posts here).
  app.get(
    "/saml/metadata",
    (c) =>
      c.body(signIn.samlMetadata(samlUrls(new URL(c.req.url).origin)), 200, {
        "content-type": "application/samlmetadata+xml",
      }),
  );
  app.post("/saml/acs", (c) =>
    refusing(c, "saml", async () => {
      requireContentType(c, "application/x-www-form-urlencoded");
      const raw = new TextDecoder().decode(await readBodyLimited(c, SAML_FORM_LIMIT));
      const form = new URLSearchParams(raw);
      const back = await signIn.finishSaml({
        SAMLResponse: form.get("SAMLResponse") ?? undefined,
        RelayState: form.get("RelayState") ?? undefined,
      });
      return c.redirect(back.href, 303);
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

  app.post("/local", (c) =>
    refusing(c, "local", async () => {
      const req = await readJson(c, LocalSignInRequest);
      const ip = clientIp(c);
      const r = deps.rateLimiter.reserve(req.username, ip);
      if (!r.ok) {
        const secs = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
        c.header("Retry-After", String(secs));
        throw new InputError(
          "too_many_attempts",
          `Too many sign-ins for this user or address; try again in ${secs} seconds`,
          429,
        );
      }
      let out;
      try {
        const user = await authenticate(
          deps.ctx.store,
          deps.ctx.clock,
          req.username,
          req.password,
          req.totp,
        );
        out = signIn.localToken(req.username, user);
      } catch (e) {
        r.reservation.fail();
        throw e;
      }
      r.reservation.succeed();
      return c.json({ token: out.token, user: out.user, expiresAt: iso(out.expiresAt) }, 200);
    }));

  app.post("/redeem", (c) =>
    refusing(c, "redeem", async () => {
      const req = await readJson(c, RedeemRequest);
      const r = signIn.redeem(req.grant);
      return c.json({ token: r.token, user: r.user, expiresAt: iso(r.expiresAt) }, 200);
    }));
  return app;
}
