/**
 * SAML 2.0 service provider (Web Browser SSO: HTTP-Redirect AuthnRequest out,
 * HTTP-POST Response back) over `@node-saml/node-saml`, which with xml-crypto
 * does every XML signature verification; nothing here verifies a signature by
 * hand.
 *
 * A posted response goes through four gates, each refusing with its own
 * {@link SamlError} code:
 *  1. envelope (saml_response.ts): size, strict base64/UTF-8/XML without DTD,
 *     depth, status, exactly one assertion, which carries its own RSA-SHA256 +
 *     exclusive-c14n signature (as does the response, if it is signed);
 *  2. node-saml: the assertion signature, and the response signature when
 *     there is one (a present signature must verify), against any of the
 *     IdP's certificates, with its wrapping defences (one assertion,
 *     reference = parent, unique IDs);
 *  3. the signed assertion's content (saml_assertion.ts) on our injected
 *     clock: issuer, validity with skew, audience, recipient, InResponseTo;
 *  4. state: the assertion ID not seen before, then the request ID issued by
 *     us, unexpired and unused.
 * node-saml's own clock, InResponseTo cache and audience check are turned
 * off because they read `new Date()` and its process memory; gate 3 and 4 do
 * those jobs against the injected clock and the caller's stores.
 *
 *   const sp = new SamlServiceProvider(spConfig, parseIdpMetadata(xml), { replay, requests, clock });
 *   const { url } = await sp.loginUrl(handle);          // 302 the browser to url
 *   const who = await sp.validatePostResponse(form);    // at the ACS URL; throws SamlError
 *
 * RelayState comes back unverified in `who.relayState`: use it as a lookup
 * handle for state kept server-side, never as a redirect target as is.
 */
import { randomBytes } from "node:crypto";
import { SAML, type SamlConfig, SamlStatusError, ValidateInResponseTo } from "@node-saml/node-saml";
import type { Clock } from "../clock.ts";
import { withDefaults } from "../defaults.ts";
import { checkAssertion, type CheckedAssertion } from "./saml_assertion.ts";
import { SamlError } from "./saml_errors.ts";
import {
  NAMEID_EMAIL,
  type ResolvedSpConfig,
  resolveIdpConfig,
  resolveSpConfig,
  type SamlIdpConfig,
  type SamlSpConfig,
  spMetadataXml,
} from "./saml_metadata.ts";
import { readResponseEnvelope } from "./saml_response.ts";
import { printable } from "./saml_xml.ts";
import type { SamlReplayCache, SamlRequestStore } from "./saml_stores.ts";

export * from "./saml_errors.ts";
export * from "./saml_metadata.ts";
export * from "./saml_stores.ts";
export { formatDuration } from "./saml_assertion.ts";
export { MAX_RESPONSE_CHARS } from "./saml_response.ts";

/** How long an issued AuthnRequest may be answered, by default (10 min). */
export const DEFAULT_REQUEST_TTL_MS = 10 * 60 * 1000;
/** SAML bindings §3.4.3: RelayState must not exceed 80 bytes. */
export const MAX_RELAY_STATE_BYTES = 80;
/** Longest group name taken from the IdP. */
export const MAX_GROUP_CHARS = 256;

/** Who signed in, from a verified assertion. */
export interface SamlIdentity {
  /** The IdP entity ID (Assertion/Issuer). */
  issuer: string;
  /** Subject/NameID as the IdP sent it. */
  nameId: string;
  /** NameID format URI, when the IdP gave one. */
  nameIdFormat?: string;
  /** From the e-mail attribute, else the NameID when its format is emailAddress. */
  email?: string;
  /** From the display-name attribute. */
  displayName?: string;
  /** Values of the group attribute (multi-valued), de-duplicated, in IdP order. */
  groups: string[];
  /** Assertion/@ID (already recorded in the replay cache). */
  assertionId: string;
  /** AuthnStatement/@SessionIndex, for logout. */
  sessionIndex?: string;
  /** When the assertion stops being valid (epoch ms). */
  notOnOrAfter?: number;
  /** When the IdP says the user's session ends (AuthnStatement/@SessionNotOnOrAfter, epoch ms). */
  sessionNotOnOrAfter?: number;
  /** How the user authenticated at the IdP (AuthnContextClassRef). */
  authnContextClassRef?: string;
  /** The AuthnRequest ID this answers (already consumed from the request store). */
  requestId: string;
  /** The RelayState posted with the response, unverified: compare it with what you issued. */
  relayState?: string;
  /** Every attribute, by Name (and FriendlyName), for display and mapping tests. */
  attributes: Record<string, string[]>;
}

/** State and time the service provider works with. */
export interface SamlDeps {
  /** Accepted assertion IDs. */
  replay: SamlReplayCache;
  /** Issued AuthnRequest IDs. */
  requests: SamlRequestStore;
  /** Time for validity windows and expiry. */
  clock: Clock;
  /** How long an AuthnRequest may be answered (default {@link DEFAULT_REQUEST_TTL_MS}). */
  requestTtlMs?: number;
  /**
   * The allowed clock skew in seconds, read at every validation so a policy
   * change applies to the next sign-in (the edge hands in its policy's
   * tolerance, `PolicyService.signInClockSkewSec`); overrides `sp.clockSkewSec`.
   */
  clockSkewSec?: () => number;
}

/** A login redirect for the browser. */
export interface SamlLoginRequest {
  /** The IdP SSO URL with SAMLRequest (deflated AuthnRequest) and RelayState. */
  url: string;
  /** The AuthnRequest ID, recorded in the request store. */
  requestId: string;
  /** When the request stops being answerable (epoch ms). */
  expiresAt: number;
}

/** Options of one login redirect. */
export interface SamlLoginOptions {
  /** Ask the IdP to authenticate the user again even inside its session (re-authentication every N hours). */
  forceAuthn?: boolean;
}

/** The form fields of an HTTP-POST binding response. */
export interface SamlPostBody {
  /** Base64 SAML Response. */
  SAMLResponse?: unknown;
  /** Opaque value we sent with the request. */
  RelayState?: unknown;
}

function checkRelayState(value: unknown, action: string): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const code = action === "post" ? "saml_malformed" : "saml_config_invalid";
  const prefix = action === "post"
    ? "Cannot read the SAML response: its RelayState"
    : "Cannot start a SAML sign-in: the RelayState";
  if (typeof value !== "string") throw new SamlError(code, `${prefix} is not text`);
  const bytes = new TextEncoder().encode(value).length;
  if (bytes > MAX_RELAY_STATE_BYTES) {
    throw new SamlError(
      code,
      `${prefix} is ${bytes} bytes, more than the ${MAX_RELAY_STATE_BYTES} SAML allows`,
    );
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new SamlError(code, `${prefix} contains control characters`);
  }
  return value;
}

/** Maps a node-saml failure (after our envelope checks passed) to a coded error. */
function fromNodeSaml(e: unknown): SamlError {
  if (e instanceof SamlError) return e;
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof SamlStatusError) {
    return new SamlError("saml_status", `The identity provider refused the sign-in: ${message}`, {
      cause: e,
    });
  }
  if (/signature|reference|ID cannot refer|transforms/i.test(message)) {
    return new SamlError(
      "saml_signature_invalid",
      `The SAML response's signature does not verify against the identity provider's certificates (${message})`,
      { cause: e },
    );
  }
  return new SamlError("saml_malformed", `Cannot read the SAML response: ${message}`, { cause: e });
}

/** One SAML service provider facing one identity provider. */
export class SamlServiceProvider {
  /** This SP's configuration with defaults applied. */
  readonly sp: ResolvedSpConfig;
  /** The IdP, certificates normalised. */
  readonly idp: SamlIdpConfig;
  readonly #deps: SamlDeps;
  readonly #verifier: SAML;
  readonly #verifierSignedResponse: SAML;

  constructor(sp: SamlSpConfig, idp: SamlIdpConfig, deps: SamlDeps) {
    this.sp = resolveSpConfig(sp);
    this.idp = resolveIdpConfig(idp);
    const ttl = deps.requestTtlMs ?? DEFAULT_REQUEST_TTL_MS;
    if (!Number.isInteger(ttl) || ttl < 1000 || ttl > 24 * 3600_000) {
      throw new SamlError(
        "saml_config_invalid",
        `Cannot use a request lifetime of ${ttl} ms: it must be from 1 s to 24 h`,
      );
    }
    this.#deps = { ...deps, requestTtlMs: ttl };
    this.#verifier = new SAML(this.#options());
    // A signature that is there must verify: node-saml otherwise treats a
    // response whose own signature fails as merely unsigned.
    this.#verifierSignedResponse = new SAML(this.#options({ wantAuthnResponseSigned: true }));
  }

  #options(extra: Partial<SamlConfig> = {}): SamlConfig {
    // An override given as undefined keeps the setting (a spread would drop it).
    return withDefaults(extra, {
      issuer: this.sp.entityId,
      callbackUrl: this.sp.acsUrl,
      entryPoint: this.idp.ssoUrl,
      idpCert: this.idp.certificates,
      idpIssuer: this.idp.entityId,
      identifierFormat: this.sp.nameIdFormat ?? null,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: false,
      // Checked in saml_assertion.ts against the injected clock instead.
      acceptedClockSkewMs: -1,
      audience: false,
      // Checked against the caller's request store instead of node-saml's memory cache.
      validateInResponseTo: ValidateInResponseTo.never,
      disableRequestedAuthnContext: true,
      authnRequestBinding: "HTTP-Redirect",
    });
  }

  /** Our SP metadata document. */
  metadataXml(): string {
    return spMetadataXml(this.sp);
  }

  /** Builds the HTTP-Redirect URL of a new AuthnRequest and records its ID. */
  async loginUrl(relayState: string, options: SamlLoginOptions = {}): Promise<SamlLoginRequest> {
    const relay = checkRelayState(relayState, "login");
    const requestId = "_" + randomBytes(20).toString("hex");
    // One node-saml instance per request so the ID we record is the one it sends.
    const saml = new SAML(
      this.#options({ generateUniqueId: () => requestId, forceAuthn: options.forceAuthn === true }),
    );
    const url = await saml.getAuthorizeUrlAsync(relay ?? "", undefined, {});
    const expiresAt = this.#deps.clock.now() + this.#deps.requestTtlMs!;
    await this.#deps.requests.issued(requestId, expiresAt);
    return { url, requestId, expiresAt };
  }

  /** Validates an HTTP-POST response and returns who signed in; throws {@link SamlError}. */
  async validatePostResponse(body: SamlPostBody): Promise<SamlIdentity> {
    if (!body || typeof body !== "object") {
      throw new SamlError("saml_malformed", "Cannot read the SAML response: the form is empty");
    }
    const envelope = readResponseEnvelope(body.SAMLResponse);
    const relayState = checkRelayState(body.RelayState, "post");
    let assertionXml: string;
    try {
      const verifier = envelope.responseSigned ? this.#verifierSignedResponse : this.#verifier;
      const { profile, loggedOut } = await verifier.validatePostResponseAsync({
        SAMLResponse: envelope.base64,
      });
      if (!profile || loggedOut || typeof profile.getAssertionXml !== "function") {
        throw new SamlError(
          "saml_malformed",
          "Cannot read the SAML response: it is not a sign-in response",
        );
      }
      assertionXml = profile.getAssertionXml();
    } catch (e) {
      throw fromNodeSaml(e);
    }
    let a: CheckedAssertion;
    try {
      const skew = this.#deps.clockSkewSec;
      const sp = skew ? resolveSpConfig({ ...this.sp, clockSkewSec: skew() }) : this.sp;
      a = checkAssertion(assertionXml, envelope, sp, this.idp, this.#deps.clock.now());
    } catch (e) {
      // Whatever the signed content holds, the answer is a coded refusal.
      if (e instanceof SamlError) throw e;
      throw new SamlError(
        "saml_malformed",
        `Cannot read the SAML assertion: ${(e as Error)?.message ?? e}`,
        { cause: e },
      );
    }
    // Mapped before any state changes, so a refusal here burns nothing.
    const identity = this.#identity(a, relayState);
    // Replay before the request: a second post of one response must say "replayed".
    if (await this.#deps.replay.seen(`${a.issuer} ${a.id}`, a.acceptableUntil)) {
      throw new SamlError(
        "saml_replayed",
        `The SAML assertion "${printable(a.id, 100)}" was already used to sign in; it is refused`,
      );
    }
    if (!(await this.#deps.requests.consume(a.inResponseTo))) {
      throw new SamlError(
        "saml_in_response_to",
        `The SAML response answers request "${
          printable(a.inResponseTo, 100)
        }", which this service provider did not issue, has expired or was already answered`,
      );
    }
    return identity;
  }

  #identity(a: CheckedAssertion, relayState: string | undefined): SamlIdentity {
    const first = (name: string | undefined) => (name ? a.attributes.get(name)?.[0] : undefined);
    const groups = a.attributes.get(this.sp.groupAttribute) ?? [];
    const long = groups.find((g) => g.length > MAX_GROUP_CHARS);
    if (long !== undefined) {
      throw new SamlError(
        "saml_malformed",
        `Cannot read the SAML assertion: group "${
          printable(long, 40)
        }" is longer than ${MAX_GROUP_CHARS} characters`,
      );
    }
    const email = first(this.sp.emailAttribute) ??
      (a.nameIdFormat === NAMEID_EMAIL ? a.nameId : undefined);
    return {
      issuer: a.issuer,
      nameId: a.nameId,
      nameIdFormat: a.nameIdFormat,
      email,
      displayName: first(this.sp.displayNameAttribute),
      groups: [...groups],
      assertionId: a.id,
      sessionIndex: a.sessionIndex,
      notOnOrAfter: a.notOnOrAfter,
      sessionNotOnOrAfter: a.sessionNotOnOrAfter,
      authnContextClassRef: a.authnContextClassRef,
      requestId: a.inResponseTo,
      relayState,
      attributes: Object.fromEntries(a.attributes),
    };
  }
}
