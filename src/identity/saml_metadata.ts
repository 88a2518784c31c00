/**
 * SAML configuration values and metadata: what an admin types or imports
 * about an identity provider (entity ID, HTTP-Redirect SSO URL, signing
 * certificates), what we publish about ourselves (SP metadata through
 * node-saml's generator), and the validation both go through so a bad value
 * is refused when it is saved, with its name, not at the first sign-in.
 */
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import { generateServiceProviderMetadata } from "@node-saml/node-saml";
import { SamlError } from "./saml_errors.ts";
import { attr, children, elements, NS, parseXmlStrict, text, XmlReadError } from "./saml_xml.ts";

/** SAML 2.0 HTTP-Redirect binding URI (how we send the AuthnRequest). */
export const BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/** NameID format URI for e-mail addresses. */
export const NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/** Default allowed clock difference with the IdP, in seconds (issue 10: 2 min). */
export const DEFAULT_CLOCK_SKEW_SEC = 120;
/** Largest clock skew an admin may allow, in seconds. */
export const MAX_CLOCK_SKEW_SEC = 1800;
/** Largest IdP metadata document we read (one entity, not a federation aggregate). */
export const MAX_METADATA_BYTES = 2 * 1024 * 1024;
const MAX_CERTIFICATES = 10;

/** This service provider, as configured on the edge. */
export interface SamlSpConfig {
  /** Our entity ID; the audience the IdP must restrict assertions to. */
  entityId: string;
  /** Our assertion consumer service (HTTP-POST) URL; the Recipient/Destination the IdP must name. */
  acsUrl: string;
  /** Allowed clock difference with the IdP in seconds (default 120, at most 1800). */
  clockSkewSec?: number;
  /** Attribute (Name or FriendlyName) whose values are the user's groups. */
  groupAttribute: string;
  /** Attribute holding the e-mail address; without it an emailAddress NameID is used. */
  emailAttribute?: string;
  /** Attribute holding the display name. */
  displayNameAttribute?: string;
  /** Always true: an assertion without its own valid signature is refused. */
  wantAssertionsSigned: true;
  /** NameID format to request and publish; unset lets the IdP choose. */
  nameIdFormat?: string;
}

/** An identity provider, as imported from its metadata or typed by an admin. */
export interface SamlIdpConfig {
  /** The IdP's entity ID; assertions must carry it as Issuer. */
  entityId: string;
  /** SingleSignOnService location for the HTTP-Redirect binding. */
  ssoUrl: string;
  /** PEM signing certificates; several during a key rotation, any one may sign. */
  certificates: string[];
}

/** {@link SamlSpConfig} with defaults applied, as the validator uses it. */
export type ResolvedSpConfig = SamlSpConfig & { clockSkewSec: number };

function bad(message: string): SamlError {
  return new SamlError("saml_config_invalid", message);
}

// Control characters are never part of an identifier an admin means.
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function checkName(what: string, value: unknown, max: number): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw bad(`Cannot use ${what}: it is empty`);
  }
  if (value !== value.trim()) throw bad(`Cannot use ${what} "${value}": it has surrounding spaces`);
  if (value.length > max) throw bad(`Cannot use ${what}: it is longer than ${max} characters`);
  if (CONTROL.test(value)) {
    throw bad(`Cannot use ${what} "${value}": it contains control characters`);
  }
  return value;
}

function checkUrl(what: string, value: unknown): string {
  const s = checkName(what, value, 2048);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw bad(`Cannot use ${what} "${s}": it is not an absolute URL`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") {
    throw bad(`Cannot use ${what} "${s}": only http and https URLs are allowed`);
  }
  if (u.hash) throw bad(`Cannot use ${what} "${s}": it must not have a fragment`);
  if (u.username || u.password) {
    throw bad(`Cannot use ${what} "${s}": it must not carry credentials`);
  }
  return s;
}

/** Checks a service-provider configuration and fills in defaults. */
export function resolveSpConfig(sp: SamlSpConfig): ResolvedSpConfig {
  if (!sp || typeof sp !== "object") {
    throw bad("Cannot use the SAML service provider: no configuration");
  }
  checkName("the SP entity ID", sp.entityId, 1024);
  checkUrl("the ACS URL", sp.acsUrl);
  checkName("the group attribute", sp.groupAttribute, 256);
  if (sp.emailAttribute !== undefined) checkName("the e-mail attribute", sp.emailAttribute, 256);
  if (sp.displayNameAttribute !== undefined) {
    checkName("the display-name attribute", sp.displayNameAttribute, 256);
  }
  if (sp.nameIdFormat !== undefined) {
    const f = checkName("the NameID format", sp.nameIdFormat, 256);
    if (!f.startsWith("urn:")) throw bad(`Cannot use the NameID format "${f}": it is not a URN`);
  }
  if (sp.wantAssertionsSigned !== true) {
    throw bad("Cannot turn off signed assertions: every assertion must be signed");
  }
  const skew = sp.clockSkewSec ?? DEFAULT_CLOCK_SKEW_SEC;
  if (!Number.isInteger(skew) || skew < 0 || skew > MAX_CLOCK_SKEW_SEC) {
    throw bad(
      `Cannot use a clock skew of ${skew} s: it must be a whole number from 0 to ${MAX_CLOCK_SKEW_SEC}`,
    );
  }
  return { ...sp, clockSkewSec: skew };
}

/** Parses a certificate (PEM or bare base64 DER) and returns it as normalised PEM. */
export function normalizeCertificate(value: string, what = "the IdP certificate"): string {
  if (typeof value !== "string") throw bad(`Cannot use ${what}: it is not text`);
  const body = value
    .replace(/-----BEGIN CERTIFICATE-----|-----END CERTIFICATE-----/g, "")
    .replace(/\s+/g, "");
  if (!body || !/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) {
    throw bad(`Cannot use ${what}: it is not a PEM or base64 certificate`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(body, "base64"));
  } catch (e) {
    throw bad(`Cannot use ${what}: it is not an X.509 certificate (${(e as Error).message})`);
  }
  const b64 = cert.raw.toString("base64");
  return `-----BEGIN CERTIFICATE-----\n${
    b64.match(/.{1,64}/g)!.join("\n")
  }\n-----END CERTIFICATE-----\n`;
}

/** Checks an IdP configuration; returns it with certificates normalised and de-duplicated. */
export function resolveIdpConfig(idp: SamlIdpConfig): SamlIdpConfig {
  if (!idp || typeof idp !== "object") {
    throw bad("Cannot use the identity provider: no configuration");
  }
  const entityId = checkName("the IdP entity ID", idp.entityId, 1024);
  const ssoUrl = checkUrl("the IdP SSO URL", idp.ssoUrl);
  if (!Array.isArray(idp.certificates) || idp.certificates.length === 0) {
    throw bad(`Cannot use the identity provider "${entityId}": it has no signing certificate`);
  }
  if (idp.certificates.length > MAX_CERTIFICATES) {
    throw bad(
      `Cannot use the identity provider "${entityId}": more than ${MAX_CERTIFICATES} certificates`,
    );
  }
  const certificates = [
    ...new Set(idp.certificates.map((c, i) => normalizeCertificate(c, `IdP certificate ${i + 1}`))),
  ];
  return { entityId, ssoUrl, certificates };
}

function metadataError(message: string, cause?: unknown): SamlError {
  return new SamlError("saml_metadata_invalid", message, cause ? { cause } : undefined);
}

/**
 * Reads SAML 2.0 IdP metadata: the one IDPSSODescriptor's entity ID, its
 * HTTP-Redirect SingleSignOnService and every signing certificate (all of
 * them, so a rotation published in advance keeps working). The metadata's own
 * signature is not checked: an admin imports it over a channel they trust.
 */
export function parseIdpMetadata(xml: string): SamlIdpConfig {
  if (typeof xml !== "string" || xml.trim() === "") {
    throw metadataError("Cannot read the IdP metadata: it is empty");
  }
  if (xml.length > MAX_METADATA_BYTES) {
    throw metadataError(
      `Cannot read the IdP metadata: it is larger than ${MAX_METADATA_BYTES} bytes`,
    );
  }
  let doc: Document;
  try {
    doc = parseXmlStrict(xml);
  } catch (e) {
    if (e instanceof XmlReadError) {
      throw metadataError(`Cannot read the IdP metadata: ${e.message}`);
    }
    throw e;
  }
  const root = doc.documentElement;
  if (
    root.namespaceURI !== NS.md ||
    !["EntityDescriptor", "EntitiesDescriptor"].includes(root.localName)
  ) {
    throw metadataError(
      `Cannot read the IdP metadata: the root element is ${root.localName}, not a SAML 2.0 EntityDescriptor`,
    );
  }
  const idps = elements(doc, "//md:EntityDescriptor[md:IDPSSODescriptor]");
  if (idps.length === 0) {
    throw metadataError(
      "Cannot read the IdP metadata: it describes no identity provider (no IDPSSODescriptor)",
    );
  }
  if (idps.length > 1) {
    throw metadataError(
      `Cannot read the IdP metadata: it describes ${idps.length} identity providers; import one`,
    );
  }
  const entity = idps[0];
  const entityId = attr(entity, "entityID")?.trim();
  if (!entityId) {
    throw metadataError("Cannot read the IdP metadata: the EntityDescriptor has no entityID");
  }
  const what = `the IdP metadata of "${entityId}"`;
  const descriptor = children(entity, NS.md, "IDPSSODescriptor").find((d) =>
    (attr(d, "protocolSupportEnumeration") ?? "").split(/\s+/).includes(NS.samlp)
  );
  if (!descriptor) {
    throw metadataError(`Cannot read ${what}: its IDPSSODescriptor does not support SAML 2.0`);
  }
  if (attr(descriptor, "WantAuthnRequestsSigned") === "true") {
    throw metadataError(
      `Cannot use ${what}: it requires signed authentication requests, which this service provider does not send`,
    );
  }
  const sso = children(descriptor, NS.md, "SingleSignOnService")
    .find((s) => attr(s, "Binding") === BINDING_REDIRECT);
  const ssoUrl = sso && attr(sso, "Location")?.trim();
  if (!ssoUrl) {
    throw metadataError(`Cannot read ${what}: it has no HTTP-Redirect SingleSignOnService`);
  }
  const certs: string[] = [];
  for (const kd of children(descriptor, NS.md, "KeyDescriptor")) {
    const use = attr(kd, "use");
    if (use !== undefined && use !== "signing") continue;
    for (const c of elements(kd, "ds:KeyInfo/ds:X509Data/ds:X509Certificate")) certs.push(text(c));
  }
  if (certs.length === 0) throw metadataError(`Cannot read ${what}: it has no signing certificate`);
  try {
    return resolveIdpConfig({ entityId, ssoUrl, certificates: certs });
  } catch (e) {
    if (e instanceof SamlError) {
      throw metadataError(
        `Cannot read ${what}: ${e.message[0].toLowerCase()}${e.message.slice(1)}`,
        e,
      );
    }
    throw e;
  }
}

/** Our SP metadata (EntityDescriptor with SPSSODescriptor) for the admin to give the IdP. */
export function spMetadataXml(sp: SamlSpConfig): string {
  const c = resolveSpConfig(sp);
  return generateServiceProviderMetadata({
    issuer: c.entityId,
    callbackUrl: c.acsUrl,
    identifierFormat: c.nameIdFormat ?? null,
    wantAssertionsSigned: true,
  });
}
