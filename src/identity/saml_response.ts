/**
 * The first look at a posted SAMLResponse, before any signature check: bound
 * its size, decode it strictly, parse it without DTDs and read its envelope
 * (status, the single assertion, whether that assertion carries a signature
 * and with which algorithms). Catching these shapes here gives each refusal
 * its own code (`saml_unsigned` rather than node-saml's generic "Invalid
 * signature"); the cryptographic verification itself is node-saml's.
 *
 * Everything read from the Response element is unsigned when only the
 * assertion is signed, so it is used only to *refuse* (Issuer, Destination,
 * InResponseTo must agree with the signed assertion), never to accept.
 */
import { Buffer } from "node:buffer";
import { SamlError } from "./saml_errors.ts";
import {
  attr,
  children,
  NS,
  onlyChild,
  parseXmlStrict,
  printable,
  text,
  XmlReadError,
} from "./saml_xml.ts";

/** Largest SAMLResponse form value accepted, in base64 characters (~190 KiB of XML). */
export const MAX_RESPONSE_CHARS = 256 * 1024;

/** XML-DSig algorithm URIs the assertion signature must use. */
export const ALG = {
  rsaSha256: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
  excC14n: "http://www.w3.org/2001/10/xml-exc-c14n#",
  enveloped: "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
  sha256: "http://www.w3.org/2001/04/xmlenc#sha256",
  sha512: "http://www.w3.org/2001/04/xmlenc#sha512",
} as const;

const STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success";

/** What the unsigned envelope of a response says, for cross-checks against the signed assertion. */
export interface ResponseEnvelope {
  /** The SAMLResponse with whitespace removed, as handed to node-saml. */
  base64: string;
  /** Response/Issuer, when present. */
  issuer?: string;
  /** Response/@Destination, when present. */
  destination?: string;
  /** Response/@InResponseTo, when present. */
  inResponseTo?: string;
  /** The Response carries its own signature (which must then verify too). */
  responseSigned: boolean;
}

function malformed(why: string, cause?: unknown): SamlError {
  return new SamlError(
    "saml_malformed",
    `Cannot read the SAML response: ${why}`,
    cause ? { cause } : undefined,
  );
}

/** IdP-supplied text, printable and quoted, for an error sentence. */
function quoted(value: string): string {
  return `"${printable(value.trim())}"`;
}

/** Decodes and parses a posted SAMLResponse and checks its envelope; throws {@link SamlError}. */
export function readResponseEnvelope(samlResponse: unknown): ResponseEnvelope {
  if (samlResponse === undefined || samlResponse === null || samlResponse === "") {
    throw malformed("the SAMLResponse field is missing");
  }
  if (typeof samlResponse !== "string") throw malformed("the SAMLResponse field is not text");
  if (samlResponse.length > MAX_RESPONSE_CHARS) {
    throw new SamlError(
      "saml_too_large",
      `Cannot read the SAML response: it is ${samlResponse.length} characters, more than the ${MAX_RESPONSE_CHARS} accepted`,
    );
  }
  const base64 = samlResponse.replace(/[\r\n\t ]+/g, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0) {
    throw malformed("the SAMLResponse field is not base64");
  }
  let xml: string;
  try {
    xml = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(base64, "base64"));
  } catch (e) {
    throw malformed("it is not UTF-8 text", e);
  }
  let doc: Document;
  try {
    doc = parseXmlStrict(xml);
  } catch (e) {
    if (e instanceof XmlReadError) throw malformed(e.message, e);
    throw e;
  }
  try {
    return checkEnvelope(doc.documentElement, base64);
  } catch (e) {
    if (e instanceof XmlReadError) throw malformed(e.message, e);
    throw e;
  }
}

function checkEnvelope(root: Element, base64: string): ResponseEnvelope {
  if (root.namespaceURI !== NS.samlp || root.localName !== "Response") {
    throw malformed(
      `its root element is ${quoted(root.localName ?? "?")}, not a SAML 2.0 Response`,
    );
  }
  if (attr(root, "Version") !== "2.0") throw malformed("it is not SAML version 2.0");
  checkStatus(root);
  if (children(root, NS.saml, "EncryptedAssertion").length) {
    throw malformed(
      "encrypted assertions are not supported (this service provider publishes no encryption key)",
    );
  }
  const assertions = children(root, NS.saml, "Assertion");
  if (assertions.length === 0) throw malformed("it contains no assertion");
  if (assertions.length > 1) {
    throw new SamlError(
      "saml_signature_invalid",
      `The SAML response contains ${assertions.length} assertions; exactly one is accepted, so none was (signature wrapping)`,
    );
  }
  const assertionSigs = children(assertions[0], NS.ds, "Signature");
  if (assertionSigs.length === 0) {
    throw new SamlError(
      "saml_unsigned",
      "The SAML assertion is not signed; a signed assertion is required",
    );
  }
  checkSignatureShape(assertionSigs, "assertion");
  const responseSigs = children(root, NS.ds, "Signature");
  if (responseSigs.length) checkSignatureShape(responseSigs, "response");
  const issuer = onlyChild(root, NS.saml, "Issuer");
  return {
    base64,
    issuer: issuer ? text(issuer) : undefined,
    destination: attr(root, "Destination"),
    inResponseTo: attr(root, "InResponseTo"),
    responseSigned: responseSigs.length > 0,
  };
}

function checkStatus(root: Element): void {
  const status = onlyChild(root, NS.samlp, "Status");
  const code = status && onlyChild(status, NS.samlp, "StatusCode");
  const value = code && attr(code, "Value");
  if (!value) throw malformed("it has no status code");
  if (value === STATUS_SUCCESS) return;
  const sub = onlyChild(code, NS.samlp, "StatusCode");
  const subValue = sub && attr(sub, "Value");
  const message = onlyChild(status, NS.samlp, "StatusMessage");
  const short = (v: string) => v.slice(v.lastIndexOf(":") + 1);
  const detail = [short(value), subValue ? short(subValue) : ""].filter(Boolean).join("/");
  throw new SamlError(
    "saml_status",
    `The identity provider refused the sign-in: ${quoted(detail)}` +
      (message && text(message) ? ` (${quoted(text(message))})` : ""),
  );
}

/**
 * A signature (the assertion's, and the response's when it has one) must be
 * the only one on its element and made with RSA-SHA256 over exclusive c14n.
 * node-saml verifies exactly these elements (the single ds:Signature child of
 * the Response and of its single Assertion), so the algorithm attributes read
 * here are the ones its verification covers.
 */
function checkSignatureShape(sigs: Element[], what: "assertion" | "response"): void {
  const subject = `The SAML ${what}`;
  if (sigs.length > 1) {
    throw new SamlError(
      "saml_signature_invalid",
      `${subject} carries ${sigs.length} signatures; one is accepted`,
    );
  }
  const incomplete = () =>
    new SamlError(
      "saml_signature_invalid",
      `${subject}'s signature is incomplete (no SignedInfo, method or reference)`,
    );
  const signedInfo = onlyChild(sigs[0], NS.ds, "SignedInfo");
  if (!signedInfo) throw incomplete();
  const c14n = onlyChild(signedInfo, NS.ds, "CanonicalizationMethod");
  const method = onlyChild(signedInfo, NS.ds, "SignatureMethod");
  const refs = children(signedInfo, NS.ds, "Reference");
  if (!c14n || !method || refs.length === 0) throw incomplete();
  if (refs.length > 1) {
    throw new SamlError(
      "saml_signature_invalid",
      `${subject}'s signature has ${refs.length} references; one is accepted`,
    );
  }
  const refuse = (kind: string, got: string | undefined) =>
    new SamlError(
      "saml_signature_algorithm",
      `${subject} is signed with ${kind} ${
        quoted(got ?? "none")
      }; RSA-SHA256 with exclusive canonicalisation is required`,
    );
  if (attr(method, "Algorithm") !== ALG.rsaSha256) {
    throw refuse("signature method", attr(method, "Algorithm"));
  }
  if (attr(c14n, "Algorithm") !== ALG.excC14n) {
    throw refuse("canonicalisation", attr(c14n, "Algorithm"));
  }
  const digest = onlyChild(refs[0], NS.ds, "DigestMethod");
  const digestAlg = digest && attr(digest, "Algorithm");
  if (digestAlg !== ALG.sha256 && digestAlg !== ALG.sha512) throw refuse("digest", digestAlg);
  const transforms = onlyChild(refs[0], NS.ds, "Transforms");
  for (const t of transforms ? children(transforms, NS.ds, "Transform") : []) {
    const a = attr(t, "Algorithm");
    if (a !== ALG.enveloped && a !== ALG.excC14n) throw refuse("transform", a);
  }
}
