/**
 * Crafted SAML responses for the refusal tables: an assertion template with
 * every field a row may bend (times, audience, recipient, InResponseTo,
 * issuer, attributes), signed with xml-crypto (the library node-saml
 * verifies with) by a test key made with openssl for this run. Signing here
 * is test-only; the product never signs or verifies XML by hand.
 */
import { SignedXml } from "xml-crypto";
import { sh } from "../e2e/netns.ts";

/** An RSA key pair with a self-signed certificate (PEM). */
export interface TestKey {
  privateKey: string;
  certificate: string;
}

/** Makes a fresh RSA-2048 key and self-signed certificate with openssl. */
export async function makeTestKey(name: string): Promise<TestKey> {
  const dir = await Deno.makeTempDir({ prefix: "pcl-saml-key-" });
  try {
    await sh([
      "openssl",
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-sha256",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      `${dir}/k.pem`,
      "-out",
      `${dir}/c.pem`,
    ]);
    return {
      privateKey: await Deno.readTextFile(`${dir}/k.pem`),
      certificate: await Deno.readTextFile(`${dir}/c.pem`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** XML-DSig algorithm URIs for crafted signatures. */
export const SIG = {
  rsaSha256: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
  rsaSha1: "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
  excC14n: "http://www.w3.org/2001/10/xml-exc-c14n#",
  c14n: "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
  enveloped: "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
  sha256: "http://www.w3.org/2001/04/xmlenc#sha256",
  sha1: "http://www.w3.org/2000/09/xmldsig#sha1",
} as const;

/** Fields of a crafted response; unset ones get valid defaults from {@link CraftBase}. */
export interface CraftFields {
  responseId: string;
  assertionId: string;
  /** Assertion/Issuer. */
  issuer: string;
  /** Response/Issuer; `null` leaves it out. */
  responseIssuer: string | null;
  /** Response/@Destination; `null` leaves it out. */
  destination: string | null;
  /** Audience values (one AudienceRestriction); `null` leaves Conditions' restriction out. */
  audience: string[] | null;
  /** SubjectConfirmationData/@Recipient; `null` leaves it out. */
  recipient: string | null;
  /** SubjectConfirmationData/@InResponseTo; `null` leaves it out (unsolicited). */
  inResponseTo: string | null;
  /** Response/@InResponseTo; `null` leaves it out. */
  responseInResponseTo: string | null;
  nameId: string;
  nameIdFormat: string;
  /** Times in epoch ms. */
  issueInstant: number;
  notBefore: number;
  notOnOrAfter: number;
  subjectNotOnOrAfter: number;
  sessionNotOnOrAfter: number | null;
  attributes: Record<string, string[]>;
  /** samlp:StatusCode/@Value. */
  status: string;
}

/** Configuration values a crafted response is made for. */
export interface CraftBase {
  idpEntityId: string;
  spEntityId: string;
  acsUrl: string;
  now: number;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function esc(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll('"', "&quot;");
}

let seq = 0;

/** A unique XML ID for crafted messages. */
export function craftId(tag = "c"): string {
  return `_${tag}${Date.now().toString(36)}${(seq++).toString(36)}${
    crypto.randomUUID().slice(0, 8)
  }`;
}

/** Default, valid fields for `base`: answers `inResponseTo`, valid for 5 minutes from `base.now`. */
export function defaultFields(base: CraftBase, inResponseTo: string | null): CraftFields {
  return {
    responseId: craftId("r"),
    assertionId: craftId("a"),
    issuer: base.idpEntityId,
    responseIssuer: base.idpEntityId,
    destination: base.acsUrl,
    audience: [base.spEntityId],
    recipient: base.acsUrl,
    inResponseTo,
    responseInResponseTo: inResponseTo,
    nameId: "ana@corp.example",
    nameIdFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    issueInstant: base.now,
    notBefore: base.now - 30_000,
    notOnOrAfter: base.now + 300_000,
    subjectNotOnOrAfter: base.now + 300_000,
    sessionNotOnOrAfter: base.now + 8 * 3600_000,
    attributes: {
      groups: ["engineering", "staff"],
      email: ["ana@corp.example"],
      displayName: ["Ana Lima"],
    },
    status: "urn:oasis:names:tc:SAML:2.0:status:Success",
  };
}

/** The assertion element alone (unsigned). */
export function assertionXml(f: CraftFields): string {
  const irt = f.inResponseTo === null ? "" : ` InResponseTo="${esc(f.inResponseTo)}"`;
  const recipient = f.recipient === null ? "" : ` Recipient="${esc(f.recipient)}"`;
  const audience = f.audience === null
    ? ""
    : `<saml:AudienceRestriction>${
      f.audience.map((a) => `<saml:Audience>${esc(a)}</saml:Audience>`).join("")
    }</saml:AudienceRestriction>`;
  const session = f.sessionNotOnOrAfter === null
    ? ""
    : ` SessionNotOnOrAfter="${iso(f.sessionNotOnOrAfter)}"`;
  const attrs = Object.entries(f.attributes).map(([name, values]) =>
    `<saml:Attribute Name="${
      esc(name)
    }" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">` +
    values.map((v) => `<saml:AttributeValue xsi:type="xs:string">${esc(v)}</saml:AttributeValue>`)
      .join("") +
    `</saml:Attribute>`
  ).join("");
  return `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="${
    esc(f.assertionId)
  }" Version="2.0" IssueInstant="${iso(f.issueInstant)}">` +
    `<saml:Issuer>${esc(f.issuer)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="${esc(f.nameIdFormat)}">${esc(f.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${
      iso(f.subjectNotOnOrAfter)
    }"${recipient}${irt}/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${iso(f.notBefore)}" NotOnOrAfter="${
      iso(f.notOnOrAfter)
    }">${audience}</saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${
      iso(f.issueInstant)
    }" SessionIndex="_s${f.assertionId}"${session}>` +
    `<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    (attrs ? `<saml:AttributeStatement>${attrs}</saml:AttributeStatement>` : "") +
    `</saml:Assertion>`;
}

/** A Response around `inner` (one or more assertion elements, or nothing). */
export function responseXml(f: CraftFields, inner: string): string {
  const dest = f.destination === null ? "" : ` Destination="${esc(f.destination)}"`;
  const irt = f.responseInResponseTo === null
    ? ""
    : ` InResponseTo="${esc(f.responseInResponseTo)}"`;
  const issuer = f.responseIssuer === null
    ? ""
    : `<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${
      esc(f.responseIssuer)
    }</saml:Issuer>`;
  return `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="${
    esc(f.responseId)
  }" Version="2.0" IssueInstant="${
    iso(f.issueInstant)
  }"${dest}${irt}>${issuer}<samlp:Status><samlp:StatusCode Value="${
    esc(f.status)
  }"/></samlp:Status>${inner}</samlp:Response>`;
}

/** Options of {@link sign}. */
export interface SignOptions {
  signatureAlgorithm?: string;
  canonicalization?: string;
  digest?: string;
}

/**
 * Signs the element `localName` (the first "Assertion" or "Response") of
 * `xml` with an enveloped signature placed after its Issuer, as SAML orders it.
 */
export function sign(
  xml: string,
  localName: "Assertion" | "Response",
  key: TestKey,
  o: SignOptions = {},
): string {
  const c14n = o.canonicalization ?? SIG.excC14n;
  const sig = new SignedXml({
    privateKey: key.privateKey,
    publicCert: key.certificate,
    signatureAlgorithm: o.signatureAlgorithm ?? SIG.rsaSha256,
    canonicalizationAlgorithm: c14n,
  });
  const target = localName === "Assertion"
    ? "(//*[local-name(.)='Assertion'])[1]"
    : "/*[local-name(.)='Response']";
  sig.addReference({
    xpath: target,
    transforms: [SIG.enveloped, c14n],
    digestAlgorithm: o.digest ?? SIG.sha256,
  });
  sig.computeSignature(xml, {
    prefix: "ds",
    location: { reference: `${target}/*[local-name(.)='Issuer']`, action: "after" },
  });
  return sig.getSignedXml();
}

/** Base64 of UTF-8 text, as the HTTP-POST binding carries it. */
export function b64(xml: string): string {
  const bytes = new TextEncoder().encode(xml);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** UTF-8 text of a base64 SAMLResponse. */
export function unb64(value: string): string {
  return new TextDecoder().decode(Uint8Array.from(atob(value), (c) => c.charCodeAt(0)));
}
