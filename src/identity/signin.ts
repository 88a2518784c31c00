/**
 * User sign-in on the edge, for connectors: the provider is chosen by the
 * user's email domain (providers.ts), the IdP does the authentication (OIDC
 * code flow with PKCE in the system browser, or the device authorization
 * grant on a headless box), and the edge turns the verified identity into a
 * user record (created on first sign-in; groups the IdP gave, mapped) and a
 * sign-in token the connector keeps.
 *
 * Browser flow:
 *   connector → GET edge /signin/start?email&return=http://127.0.0.1:P/…&state=S
 *     → 302 IdP (state, nonce, PKCE challenge kept here)
 *     → IdP login → 302 edge /signin/oidc/callback?code&state
 *     → exchange + ID token checks → 302 return?grant=G&state=S (loopback only)
 *   connector → POST /signin/redeem {grant: G} → {token, user, expiresAt}
 * The grant is one-time and short-lived, so what passes through the browser
 * is worth nothing a minute later; the token never passes through it.
 *
 * Every refusal is audited (`signin.refused`, with the code) and creates
 * nothing: no user, no token.
 */
import type { Clock } from "../clock.ts";
import { InputError, PortcullisError } from "../errors.ts";
import type { IdentityProviderRecord, SignInMethod, Store, UserRecord } from "../store/mod.ts";
import {
  type DeviceAuthorization,
  OidcError,
  type OidcIdentity,
  type OidcPending,
  type OidcRelyingParty,
} from "./oidc.ts";
import { emailDomain, type IdentityProviders, mapGroups } from "./providers.ts";
import { parseIdpMetadata, type SamlPostBody, SamlServiceProvider, spMetadataXml } from "./saml.ts";
import { randomId, randomToken, sha256Hex } from "./secrets.ts";
import { Lapsing } from "./lapsing.ts";
import { StoredLapsing, StoredReplayCache, StoredRequestStore } from "./signin_state.ts";
import { loopbackReturn, resolveSignIn, type SignedInUser, userGroups } from "./signin_users.ts";

export * from "./signin_users.ts";

/** How long a user stays signed in on a device without re-authenticating, by default (12 h). */
export const DEFAULT_SIGNIN_LIFETIME_MS = 12 * 3600_000;
/** How long a started browser sign-in may take to come back. */
export const PENDING_TTL_MS = 10 * 60_000;
/** How long a grant handed to the connector's loopback page may wait to be redeemed. */
export const GRANT_TTL_MS = 2 * 60_000;
/** Most sign-ins in flight at once (each is a few hundred bytes). */
export const MAX_PENDING = 10_000;
/**
 * Most device sign-ins polling the IdP at once: each is a background poll
 * the edge runs for an unauthenticated caller, so they are bounded apart.
 */
export const MAX_DEVICE_POLLS = 200;

/** Where this edge's SAML service provider lives (from the edge's own URL). */
export interface SamlSpUrls {
  /** Our entity ID, which is also where our metadata is served. */
  entityId: string;
  /** The assertion consumer service (HTTP-POST binding). */
  acsUrl: string;
}

interface SamlPending {
  providerId: string;
  returnTo: string;
  clientState: string;
  sp: SamlSpUrls;
  expiresAt: number;
}

interface Pending {
  providerId: string;
  oidc: OidcPending;
  returnTo: string;
  clientState: string;
  expiresAt: number;
}

interface Grant {
  userId: string;
  providerId: string | null;
  method: SignInMethod;
  expiresAt: number;
}

interface DeviceSignIn {
  providerId: string;
  auth: DeviceAuthorization;
  state: "pending" | "done" | "failed";
  grant?: string;
  error?: PortcullisError;
  expiresAt: number;
  abort: AbortController;
}

/** Dependencies of the sign-in service. */
export interface SignInDeps {
  store: Store;
  clock: Clock;
  providers: IdentityProviders;
  oidc: OidcRelyingParty;
  /** Sign-in lifetime (the profile's re-authentication interval). */
  lifetimeMs?: () => number;
  /** Allowed clock difference with a SAML IdP (the profile's), default 2 min. */
  clockSkewSec?: () => number;
}

/** Sign-in through the configured identity providers. */
export class SignInService {
  // In the store (signin_state.ts): a restart keeps flows in progress and the replay cache.
  #pending: StoredLapsing<Pending>;
  #grants: StoredLapsing<Grant>;
  #saml: StoredLapsing<SamlPending>;
  /** Accepted assertion IDs (a replayed assertion is refused) and issued request IDs. */
  #samlReplay: StoredReplayCache;
  #samlRequests: StoredRequestStore;
  /** In memory: each is a background poll of the IdP that a restart ends anyway. */
  #devices: Lapsing<DeviceSignIn>;

  constructor(private deps: SignInDeps) {
    const { store, clock } = deps;
    this.#saml = new StoredLapsing(store, clock, "saml", MAX_PENDING);
    this.#samlReplay = new StoredReplayCache(store, clock);
    this.#samlRequests = new StoredRequestStore(store, clock);
    this.#pending = new StoredLapsing(store, clock, "oidc", MAX_PENDING);
    this.#grants = new StoredLapsing(store, clock, "grant", MAX_PENDING);
    this.#devices = new Lapsing(clock, MAX_PENDING);
  }

  /** Audits a refused sign-in and hands the error back to be thrown. */
  refused(e: unknown, detail: Record<string, unknown>): unknown {
    const code = e instanceof PortcullisError ? e.code : "internal_error";
    this.deps.store.audit.insert({
      at: this.deps.clock.now(),
      actor: "signin",
      action: "signin.refused",
      target: typeof detail.provider === "string" ? detail.provider : null,
      detail: {
        ...detail,
        code,
        message: e instanceof Error ? e.message.slice(0, 300) : String(e).slice(0, 300),
      },
    });
    return e;
  }

  #provider(email: string): IdentityProviderRecord {
    const p = this.deps.providers.forEmail(email);
    if (!p) {
      throw new InputError(
        "no_identity_provider",
        `No identity provider serves "${
          emailDomain(email) ?? email.slice(0, 100)
        }"; sign in as a local user`,
        404,
      );
    }
    return p;
  }

  /** The SAML service provider of this edge facing provider `p`. */
  #samlSp(p: IdentityProviderRecord, urls: SamlSpUrls): SamlServiceProvider {
    return new SamlServiceProvider(
      {
        entityId: urls.entityId,
        acsUrl: urls.acsUrl,
        groupAttribute: p.groupsClaim,
        emailAttribute: "email",
        displayNameAttribute: "displayName",
        wantAssertionsSigned: true,
        clockSkewSec: this.deps.clockSkewSec?.(),
      },
      parseIdpMetadata(p.saml!.metadataXml),
      { replay: this.#samlReplay, requests: this.#samlRequests, clock: this.deps.clock },
    );
  }

  /** Our SAML SP metadata (the IdP admin imports it). */
  samlMetadata(urls: SamlSpUrls): string {
    return spMetadataXml({
      ...urls,
      groupAttribute: "groups",
      wantAssertionsSigned: true,
    });
  }

  /** Finishes a SAML sign-in at the ACS URL; returns where to send the browser (with the grant). */
  async finishSaml(body: SamlPostBody): Promise<URL> {
    const handle = typeof body.RelayState === "string" ? body.RelayState : "";
    const pending = handle ? this.#saml.get(handle) : undefined;
    if (!pending) {
      throw new InputError(
        "saml_relay_state_unknown",
        "This SAML response does not belong to a sign-in this edge started (unknown, used or expired RelayState); start again",
        400,
      );
    }
    const p = this.deps.providers.record(pending.providerId);
    const who = await this.#samlSp(p, pending.sp).validatePostResponse(body);
    const email = (who.email ?? "").trim().toLowerCase();
    if (!email.includes("@")) {
      throw new InputError(
        "saml_email_missing",
        "The SAML assertion carries no email address (an email attribute or an emailAddress NameID)",
        403,
      );
    }
    const grant = this.#grant(p, {
      subject: who.nameId,
      email,
      name: who.displayName ?? null,
      groups: who.groups,
    }, "saml");
    const out = new URL(pending.returnTo);
    out.searchParams.set("grant", grant);
    out.searchParams.set("state", pending.clientState);
    return out;
  }

  /** Starts a browser sign-in; returns the IdP URL to send the browser to. */
  async start(
    o: {
      email: string;
      redirectUri: string;
      returnTo: string;
      clientState: string;
      saml?: SamlSpUrls;
    },
  ): Promise<URL> {
    loopbackReturn(o.returnTo);
    const p = this.#provider(o.email);
    if (p.kind === "saml") {
      if (!o.saml) throw new InputError("unsupported_provider", `"${p.name}" is a SAML provider`);
      const handle = randomToken(24);
      const login = await this.#samlSp(p, o.saml).loginUrl(handle);
      this.#saml.set(handle, {
        providerId: p.id,
        returnTo: o.returnTo,
        clientState: o.clientState,
        sp: o.saml,
        expiresAt: login.expiresAt,
      });
      return new URL(login.url);
    }
    const { url, pending } = await this.deps.oidc.authorizationUrl(p, o.redirectUri);
    this.#pending.set(pending.state, {
      providerId: p.id,
      oidc: pending,
      returnTo: o.returnTo,
      clientState: o.clientState,
      expiresAt: this.deps.clock.now() + PENDING_TTL_MS,
    });
    return url;
  }

  /** Finishes a browser sign-in at the callback; returns where to send the browser (with the grant). */
  async finish(callbackUrl: URL): Promise<URL> {
    const state = callbackUrl.searchParams.get("state") ?? "";
    const pending = state ? this.#pending.take(state) : undefined;
    if (!pending) {
      throw new OidcError(
        "oidc_state_unknown",
        "This sign-in answer does not belong to a sign-in this edge started (unknown, used or expired state); start again",
        400,
      );
    }
    const p = this.deps.providers.record(pending.providerId);
    const who = await this.deps.oidc.exchange(p, callbackUrl, pending.oidc);
    const grant = this.#grant(p, who, "oidc_code");
    const out = new URL(pending.returnTo);
    out.searchParams.set("grant", grant);
    out.searchParams.set("state", pending.clientState);
    return out;
  }

  /** Starts a device sign-in (headless box): the user code and where to enter it. */
  async deviceStart(email: string): Promise<{
    handle: string;
    userCode: string;
    verificationUri: string;
    verificationUriComplete: string | null;
    expiresIn: number;
    interval: number;
  }> {
    const p = this.#provider(email);
    if (p.kind !== "oidc") {
      throw new InputError(
        "unsupported_provider",
        `"${p.name}" is a SAML provider; the device flow needs an OIDC provider`,
        400,
      );
    }
    let polling = 0;
    const now = this.deps.clock.now();
    for (const e of this.#devices.values()) {
      if (e.state === "pending" && e.expiresAt > now) polling++;
    }
    if (polling >= MAX_DEVICE_POLLS) {
      throw new InputError(
        "too_many_signins",
        `${polling} device sign-ins are waiting for their users already; try again in a minute`,
        429,
      );
    }
    const auth = await this.deps.oidc.deviceStart(p);
    const handle = randomToken(24);
    const entry: DeviceSignIn = {
      providerId: p.id,
      auth,
      state: "pending",
      expiresAt: this.deps.clock.now() + auth.expires_in * 1000,
      abort: new AbortController(),
    };
    this.#devices.set(sha256Hex(handle), entry);
    // Poll in the background (at the IdP's interval); the connector asks us.
    this.deps.oidc.devicePoll(p, auth, entry.abort.signal).then((who) => {
      entry.grant = this.#grant(p, who, "oidc_device");
      entry.state = "done";
    }, (e) => {
      entry.error = this.refused(e, { provider: p.id, flow: "device" }) as PortcullisError;
      entry.state = "failed";
    });
    return {
      handle,
      userCode: auth.user_code,
      verificationUri: auth.verification_uri,
      verificationUriComplete: auth.verification_uri_complete ?? null,
      expiresIn: auth.expires_in,
      interval: auth.interval ?? 5,
    };
  }

  /** Where a device sign-in stands; "done" hands out its grant once. */
  devicePoll(handle: string): { status: "pending" } | { status: "done"; grant: string } {
    const key = sha256Hex(handle);
    const e = this.#devices.get(key);
    if (!e) {
      throw new InputError(
        "device_signin_unknown",
        "No device sign-in with this handle (unknown, finished or expired); start again",
        404,
      );
    }
    if (e.state === "pending") return { status: "pending" };
    this.#devices.take(key);
    if (e.state === "failed") {
      throw e.error ?? new OidcError("oidc_token_invalid", "The device sign-in failed");
    }
    return { status: "done", grant: e.grant! };
  }

  /** Stops every background device poll (edge shutdown). */
  close(): void {
    for (const e of this.#devices.values()) e.abort.abort();
  }

  /** The user record for a verified identity (created at first sign-in), and a one-time grant. */
  #grant(p: IdentityProviderRecord, who: OidcIdentity, method: SignInMethod): string {
    const { store, clock } = this.deps;
    // The provider must be the one that serves the address it vouches for:
    // a provider for one domain cannot sign in users of another.
    const serving = this.deps.providers.forEmail(who.email);
    if (serving?.id !== p.id) {
      throw new OidcError(
        "oidc_token_invalid",
        `"${p.name}" does not serve "${emailDomain(who.email)}": it cannot sign in ${who.email}`,
      );
    }
    const groups = mapGroups(who.groups, p.groupMap).filter((g) =>
      /^[A-Za-z0-9_.-]{1,64}$/.test(g)
    );
    const now = clock.now();
    const user = store.transaction(() => {
      let u = store.users.byUsername(who.email);
      if (u && u.providerId !== null && u.providerId !== p.id) {
        throw new OidcError(
          "oidc_token_invalid",
          `User "${who.email}" signs in through another identity provider`,
        );
      }
      if (u?.disabled) {
        throw new InputError("user_disabled", `User "${who.email}" is disabled`, 403);
      }
      if (!u) {
        store.users.insert({
          id: randomId("usr"),
          username: who.email,
          passwordHash: "!",
          totpSecret: "",
          totpLastStep: 0,
          role: "user",
          groups: [],
          createdAt: now,
        });
        u = store.users.byUsername(who.email)!;
      }
      store.users.recordSignIn(u.id, {
        providerId: p.id,
        email: who.email,
        idpGroups: groups,
        at: now,
      });
      store.audit.insert({
        at: now,
        actor: `user:${who.email}`,
        action: "signin.success",
        target: u.id,
        detail: { provider: p.id, method, groups },
      });
      return u;
    });
    const grant = randomToken(24);
    this.#grants.set(sha256Hex(grant), {
      userId: user.id,
      providerId: p.id,
      method,
      expiresAt: now + GRANT_TTL_MS,
    });
    return grant;
  }

  /**
   * A local user (password + TOTP) signs in on a device: for small sites
   * without an IdP, and never for an address a provider serves (that user
   * signs in there). `authenticated` is the checked user, or null.
   */
  localToken(
    username: string,
    authenticated: UserRecord | null,
  ): { token: string; user: SignedInUser; expiresAt: number } {
    const served = emailDomain(username) ? this.deps.providers.forEmail(username) : null;
    if (served) {
      throw new InputError(
        "use_identity_provider",
        `"${
          username.slice(0, 100)
        }" signs in through the identity provider "${served.name}", not with a local password`,
        403,
      );
    }
    if (!authenticated || authenticated.providerId !== null) {
      throw new InputError(
        "invalid_credentials",
        "Cannot sign in: wrong username, password or one-time code",
        401,
      );
    }
    this.deps.store.audit.insert({
      at: this.deps.clock.now(),
      actor: `user:${authenticated.username}`,
      action: "signin.success",
      target: authenticated.id,
      detail: { method: "local" },
    });
    return this.#issue({
      userId: authenticated.id,
      providerId: null,
      method: "local",
      expiresAt: 0,
    });
  }

  /** Redeems a one-time grant for a sign-in token. */
  redeem(grant: string): { token: string; user: SignedInUser; expiresAt: number } {
    const g = this.#grants.take(sha256Hex(grant));
    if (!g) {
      throw new InputError(
        "grant_invalid",
        "This sign-in grant is unknown, used or expired; sign in again",
        400,
      );
    }
    return this.#issue(g);
  }

  /** A sign-in token for the grant's user (the profile's lifetime). */
  #issue(g: Grant): { token: string; user: SignedInUser; expiresAt: number } {
    const { store, clock } = this.deps;
    const u = store.users.byId(g.userId);
    if (!u || u.disabled) {
      throw new InputError("user_disabled", "The user of this sign-in is disabled or gone", 403);
    }
    const token = `pcs_${randomToken(32)}`;
    const now = clock.now();
    const expiresAt = now + (this.deps.lifetimeMs?.() ?? DEFAULT_SIGNIN_LIFETIME_MS);
    store.userSignIns.insert({
      tokenHash: sha256Hex(token),
      userId: u.id,
      providerId: g.providerId,
      method: g.method,
      deviceId: null,
      createdAt: now,
      expiresAt,
    });
    return { token, user: this.userView(u), expiresAt };
  }

  /** The user behind a live sign-in token, or undefined. */
  resolve(token: string): { user: UserRecord; tokenHash: string; expiresAt: number } | undefined {
    return resolveSignIn(this.deps.store, this.deps.clock.now(), token);
  }

  /** A user as a connector sees it. */
  userView(u: UserRecord): SignedInUser {
    const p = u.providerId ? this.deps.store.identityProviders.get(u.providerId) : undefined;
    return {
      id: u.id,
      username: u.username,
      email: u.email,
      provider: p?.name ?? null,
      groups: userGroups(u),
    };
  }
}
