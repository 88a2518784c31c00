/**
 * Shared ground for the crafted-response SAML tests: this run's test keys,
 * the SP and IdP configuration, a fresh service provider with one issued
 * request, signing helpers and the refusal assertion.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import {
  MemoryReplayCache,
  MemoryRequestStore,
  SamlError,
  type SamlErrorCode,
  type SamlIdpConfig,
  SamlServiceProvider,
  type SamlSpConfig,
} from "../../src/identity/saml.ts";
import {
  assertionXml,
  type CraftBase,
  type CraftFields,
  defaultFields,
  makeTestKey,
  responseXml,
  sign,
  type SignOptions,
  type TestKey,
} from "./saml_craft.ts";

/** Keys made for this run: the IdP's, its rotation successor, and an attacker's. */
export const [idpKey, nextKey, attacker] = await Promise.all([
  makeTestKey("test idp"),
  makeTestKey("test idp next"),
  makeTestKey("attacker"),
]);

/** The service provider under test. */
export const SP: SamlSpConfig = {
  entityId: "https://edge.corp.example/saml/sp",
  acsUrl: "https://edge.corp.example/saml/acs",
  groupAttribute: "groups",
  emailAttribute: "email",
  displayNameAttribute: "displayName",
  wantAssertionsSigned: true,
};
/** The IdP it trusts (both keys, as during a rotation). */
export const IDP: SamlIdpConfig = {
  entityId: "https://idp.corp.example/saml",
  ssoUrl: "https://idp.corp.example/saml/sso",
  certificates: [idpKey.certificate, nextKey.certificate],
};
/** Wall-clock start of every fixture. */
export const START = Date.UTC(2026, 0, 1, 12, 0, 0);

/** One service provider with its own stores and clock, and one issued request. */
export async function fixture(spOverrides: Partial<SamlSpConfig> = {}, idp: SamlIdpConfig = IDP) {
  const clock = new ManualClock(START);
  const replay = new MemoryReplayCache(clock);
  const requests = new MemoryRequestStore(clock);
  const sp = new SamlServiceProvider({ ...SP, ...spOverrides }, idp, { replay, requests, clock });
  const { requestId } = await sp.loginUrl("rs-1");
  const base: CraftBase = {
    idpEntityId: idp.entityId,
    spEntityId: sp.sp.entityId,
    acsUrl: sp.sp.acsUrl,
    now: clock.now(),
  };
  return { sp, clock, replay, requests, requestId, base, fields: defaultFields(base, requestId) };
}

/** A response whose assertion (and optionally the response) is signed. */
export function signed(
  f: CraftFields,
  o: {
    key?: TestKey;
    responseKey?: TestKey;
    sign?: SignOptions;
    edit?: (assertion: string) => string;
  } = {},
): string {
  const unsigned = o.edit ? o.edit(assertionXml(f)) : assertionXml(f);
  const assertion = sign(unsigned, "Assertion", o.key ?? idpKey, o.sign);
  const response = responseXml(f, assertion);
  return o.responseKey ? sign(response, "Response", o.responseKey) : response;
}

/** The ds:Signature element of a signed document (crafted text, so a plain search will do). */
export function signatureOf(xml: string): string {
  const start = xml.indexOf("<ds:Signature");
  return xml.slice(start, xml.indexOf("</ds:Signature>", start) + "</ds:Signature>".length);
}

/** Asserts that `body` is refused with `code` and a proper sentence; returns the error. */
export async function refused(
  sp: SamlServiceProvider,
  body: { SAMLResponse?: unknown; RelayState?: unknown },
  code: SamlErrorCode,
  what: string,
): Promise<SamlError> {
  let err: unknown;
  try {
    await sp.validatePostResponse(body);
  } catch (e) {
    err = e;
  }
  assert.ok(
    err instanceof SamlError,
    `${what}: expected SamlError ${code}, got ${err ?? "success"}`,
  );
  assert.equal(err.code, code, `${what}: ${err.message}`);
  assert.ok(err.status >= 400 && err.status < 500, `${what}: status ${err.status}`);
  assert.match(err.message, /^[A-Z].*[^.]$/s, `${what}: a sentence without a trailing period`);
  assert.doesNotMatch(err.message, /undefined|\[object/, what);
  return err;
}

/** What {@link fixture} returns. */
export type Fixture = Awaited<ReturnType<typeof fixture>>;
