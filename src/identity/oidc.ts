/**
 * The edge as an OpenID Connect relying party, over `openid-client`: it
 * does discovery, the authorization code grant with PKCE (S256), the device
 * authorization grant, and every ID token check — signature against the
 * issuer's JWKS (refetched when a key it does not know appears, so a key
 * rotation is followed), issuer, audience, nonce, expiry. Nothing here
 * parses a JWT or builds an OAuth request by hand.
 *
 * Tokens are judged on the injected clock (openid-client's `clockSkew` is
 * set to its offset from the system clock), with a tolerance of
 * {@link OIDC_CLOCK_TOLERANCE_SEC}. Every refusal becomes an {@link OidcError}
 * with its own code and a sentence a person can act on.
 */
import * as client from "openid-client";
import type { Clock } from "../clock.ts";
import { InputError, PortcullisError } from "../errors.ts";
import type { IdentityProviderRecord } from "../store/mod.ts";

/** Allowed clock difference with the IdP when checking token times (2 min). */
export const OIDC_CLOCK_TOLERANCE_SEC = 120;
/** Scopes the edge asks for. */
export const OIDC_SCOPE = "openid email profile groups";
/** How long discovery or a token request may take. */
export const OIDC_TIMEOUT_SEC = 15;

/** Why an OIDC sign-in was refused. */
export type OidcErrorCode =
  | "oidc_state_unknown"
  | "oidc_idp_error"
  | "oidc_code_rejected"
  | "oidc_signature_invalid"
  | "oidc_issuer_mismatch"
  | "oidc_audience_mismatch"
  | "oidc_nonce_mismatch"
  | "oidc_token_expired"
  | "oidc_token_invalid"
  | "oidc_email_missing"
  | "oidc_idp_unreachable";

/** A refused OIDC response or an IdP that cannot be reached. */
export class OidcError extends InputError {
  constructor(code: OidcErrorCode, message: string, status = 403, options?: ErrorOptions) {
    super(code, message, status, options);
  }
}

/** Who the IdP says signed in. */
export interface OidcIdentity {
  subject: string;
  email: string;
  name: string | null;
  /** Values of the provider's groups claim, as given. */
  groups: string[];
}

/** What an authorization request needs to be finished later. */
export interface OidcPending {
  state: string;
  nonce: string;
  codeVerifier: string;
  redirectUri: string;
}

/** A device authorization in progress (the IdP's response, kept for polling). */
export type DeviceAuthorization = client.DeviceAuthorizationResponse;

/** Maps what openid-client throws to an {@link OidcError}. */
export function oidcRefusal(e: unknown): PortcullisError {
  if (e instanceof PortcullisError) return e;
  const err = e as { code?: string; error?: string; error_description?: string; cause?: any };
  // openid-client wraps oauth4webapi's error: the detail is on the cause.
  const inner = err.cause instanceof Error ? err.cause as Error & { cause?: any } : undefined;
  const message = [(e as Error)?.message ?? String(e), inner?.message].filter(Boolean).join(": ");
  if (err.code === "OAUTH_AUTHORIZATION_RESPONSE_ERROR") {
    return new OidcError(
      "oidc_idp_error",
      `The identity provider refused the sign-in: ${err.error ?? "error"}${
        err.error_description ? ` (${String(err.error_description).slice(0, 200)})` : ""
      }`,
    );
  }
  if (err.code === "OAUTH_RESPONSE_BODY_ERROR") {
    return new OidcError(
      "oidc_code_rejected",
      `The identity provider refused the code exchange: ${err.error ?? "error"}${
        err.error_description ? ` (${String(err.error_description).slice(0, 200)})` : ""
      }`,
    );
  }
  if (err.code === "OAUTH_JWT_CLAIM_COMPARISON_FAILED") {
    const claim = err.cause?.claim ?? inner?.cause?.claim;
    if (claim === "nonce") {
      return new OidcError(
        "oidc_nonce_mismatch",
        "The ID token's nonce is not the one this sign-in sent",
      );
    }
    if (claim === "iss") {
      return new OidcError(
        "oidc_issuer_mismatch",
        `The ID token's issuer is not the configured issuer: ${message}`,
      );
    }
    if (claim === "aud" || claim === "azp") {
      return new OidcError(
        "oidc_audience_mismatch",
        "The ID token was issued for another client (audience mismatch)",
      );
    }
  }
  if (err.code === "OAUTH_JWT_TIMESTAMP_CHECK_FAILED") {
    return new OidcError(
      "oidc_token_expired",
      `The ID token is expired or not yet valid: ${message}`,
    );
  }
  if (
    err.code === "OAUTH_KEY_SELECTION_FAILED" || /signature/i.test(message)
  ) {
    return new OidcError(
      "oidc_signature_invalid",
      "The ID token is not signed by a key of the identity provider",
    );
  }
  if (e instanceof TypeError || (e as Error)?.name === "TimeoutError") {
    return new OidcError(
      "oidc_idp_unreachable",
      `Cannot reach the identity provider: ${message}`,
      502,
    );
  }
  return new OidcError(
    "oidc_token_invalid",
    `The identity provider's answer was refused: ${message}`,
  );
}

function isLoopback(issuer: string): boolean {
  const h = new URL(issuer).hostname;
  return h === "127.0.0.1" || h === "localhost" || h === "[::1]";
}

/** OIDC for every configured provider; discovery results are cached per provider version. */
export class OidcRelyingParty {
  #configs = new Map<string, { stamp: string; config: Promise<client.Configuration> }>();

  constructor(
    private clock: Clock,
    private fetchFn?: (url: string, init: RequestInit) => Promise<Response>,
    /** Allowed clock difference with the IdP (the profile's), default 2 min. */
    private toleranceSec: () => number = () => OIDC_CLOCK_TOLERANCE_SEC,
  ) {}

  /** The openid-client configuration of provider `p` (discovered once per change). */
  async config(p: IdentityProviderRecord): Promise<client.Configuration> {
    if (!p.oidc) {
      throw new InputError("invalid_identity_provider", `"${p.name}" is not an OIDC provider`);
    }
    // Token times are judged on our clock: openid-client takes the offset
    // from the system clock at discovery, so a change of offset rediscovers.
    const skew = Math.round((this.clock.now() - Date.now()) / 1000);
    const tolerance = this.toleranceSec();
    const stamp = `${p.updatedAt}:${p.oidc.issuer}:${p.oidc.clientId}:${skew}:${tolerance}`;
    const hit = this.#configs.get(p.id);
    if (hit && hit.stamp === stamp) return await hit.config;
    const opts: client.DiscoveryRequestOptions = {
      timeout: OIDC_TIMEOUT_SEC,
      // http only for an issuer on loopback (checked when the provider was saved).
      execute: isLoopback(p.oidc.issuer) ? [client.allowInsecureRequests] : [],
    };
    if (this.fetchFn) opts[client.customFetch] = this.fetchFn as never;
    const config = client.discovery(
      new URL(p.oidc.issuer),
      p.oidc.clientId,
      {
        client_secret: p.oidc.clientSecret,
        [client.clockSkew]: skew,
        [client.clockTolerance]: tolerance,
      },
      client.ClientSecretBasic(p.oidc.clientSecret),
      opts,
    ).then((c) => {
      c.timeout = OIDC_TIMEOUT_SEC;
      // Verify every ID token's signature against the issuer's JWKS, even one
      // from the token endpoint (which OIDC would let a client trust unsigned).
      client.enableNonRepudiationChecks(c);
      if (this.fetchFn) c[client.customFetch] = this.fetchFn as never;
      return c;
    });
    this.#configs.set(p.id, { stamp, config });
    try {
      return await config;
    } catch (e) {
      this.#configs.delete(p.id);
      throw new OidcError(
        "oidc_idp_unreachable",
        `Cannot read the discovery document of "${p.oidc.issuer}": ${(e as Error).message}`,
        502,
      );
    }
  }

  /** Starts a code flow: the IdP URL to send the browser to, and what finishing needs. */
  async authorizationUrl(
    p: IdentityProviderRecord,
    redirectUri: string,
  ): Promise<{ url: URL; pending: OidcPending }> {
    const cfg = await this.config(p);
    const codeVerifier = client.randomPKCECodeVerifier();
    const pending: OidcPending = {
      state: client.randomState(),
      nonce: client.randomNonce(),
      codeVerifier,
      redirectUri,
    };
    const url = client.buildAuthorizationUrl(cfg, {
      redirect_uri: redirectUri,
      scope: OIDC_SCOPE,
      response_type: "code",
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
      prompt: "login",
    });
    return { url, pending };
  }

  /** Finishes a code flow at the redirect URI: exchanges the code and checks the ID token. */
  async exchange(
    p: IdentityProviderRecord,
    callbackUrl: URL,
    pending: OidcPending,
  ): Promise<OidcIdentity> {
    const cfg = await this.config(p);
    try {
      const tokens = await client.authorizationCodeGrant(cfg, callbackUrl, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      }, { redirect_uri: pending.redirectUri });
      return this.#identity(p, tokens.claims());
    } catch (e) {
      throw oidcRefusal(e);
    }
  }

  /** Starts a device authorization: the user code and where to enter it. */
  async deviceStart(p: IdentityProviderRecord): Promise<DeviceAuthorization> {
    const cfg = await this.config(p);
    try {
      return await client.initiateDeviceAuthorization(cfg, { scope: OIDC_SCOPE });
    } catch (e) {
      throw oidcRefusal(e);
    }
  }

  /** Polls until the user finished (or the code expired, or `signal` aborts). */
  async devicePoll(
    p: IdentityProviderRecord,
    auth: DeviceAuthorization,
    signal?: AbortSignal,
  ): Promise<OidcIdentity> {
    const cfg = await this.config(p);
    try {
      const tokens = await client.pollDeviceAuthorizationGrant(cfg, auth, undefined, { signal });
      return this.#identity(p, tokens.claims());
    } catch (e) {
      throw oidcRefusal(e);
    }
  }

  #identity(p: IdentityProviderRecord, claims: client.IDToken | undefined): OidcIdentity {
    if (!claims) {
      throw new OidcError("oidc_token_invalid", "The identity provider sent no ID token");
    }
    const email = typeof claims.email === "string" ? claims.email.trim().toLowerCase() : "";
    if (!email || email.length > 254 || !email.includes("@")) {
      throw new OidcError(
        "oidc_email_missing",
        `The ID token carries no email address; add the "email" scope to the client at the IdP`,
      );
    }
    const raw = claims[p.groupsClaim];
    const groups = Array.isArray(raw)
      ? raw.filter((g): g is string => typeof g === "string" && g.length > 0 && g.length <= 256)
      : typeof raw === "string" && raw
      ? [raw]
      : [];
    return {
      subject: claims.sub,
      email,
      name: typeof claims.name === "string" ? claims.name.slice(0, 200) : null,
      groups: groups.slice(0, 2000),
    };
  }
}
