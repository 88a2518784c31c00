/**
 * The checks SAML's Web Browser SSO profile asks of a service provider, over
 * an assertion whose signature node-saml has already verified: issuer,
 * validity window (with the configured clock skew, against our injected
 * clock rather than node-saml's `new Date()`), audience, a bearer subject
 * confirmation naming our ACS URL and answering a request, and the attribute
 * values. Pure: the same XML, configuration and time give the same answer.
 *
 * The XML here is the canonical form of the *signed* assertion that node-saml
 * returns (never the posted document), so every value read below is covered
 * by the IdP's signature.
 */
import { SamlError } from "./saml_errors.ts";
import type { ResolvedSpConfig, SamlIdpConfig } from "./saml_metadata.ts";
import type { ResponseEnvelope } from "./saml_response.ts";
import {
  attr,
  children,
  NS,
  onlyChild,
  parseSamlInstant,
  parseXmlStrict,
  printable,
  text,
  XmlReadError,
} from "./saml_xml.ts";

const BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/** Attribute values accepted in one assertion, and characters per value. */
export const MAX_ATTRIBUTE_VALUES = 2000;
const MAX_VALUE_CHARS = 2048;

/** What a verified, currently valid assertion says. */
export interface CheckedAssertion {
  /** Assertion/@ID. */
  id: string;
  /** Assertion/Issuer (equals the configured IdP entity ID). */
  issuer: string;
  /** Subject/NameID. */
  nameId: string;
  /** Subject/NameID/@Format, when given. */
  nameIdFormat?: string;
  /** The request this assertion answers (SubjectConfirmationData/@InResponseTo). */
  inResponseTo: string;
  /** AuthnStatement/@SessionIndex. */
  sessionIndex?: string;
  /** AuthnStatement/@SessionNotOnOrAfter (epoch ms): the IdP's session end. */
  sessionNotOnOrAfter?: number;
  /** AuthnContextClassRef of the first AuthnStatement. */
  authnContextClassRef?: string;
  /** Conditions/@NotOnOrAfter, else the subject confirmation's (epoch ms). */
  notOnOrAfter: number;
  /** Until when (epoch ms) this assertion could still be accepted: how long to remember its ID. */
  acceptableUntil: number;
  /** Attribute values by Name (and by FriendlyName where it differs). */
  attributes: Map<string, string[]>;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, "Z");
}

/** "6 min 12 s" style rendering of a duration, for clock-skew sentences. */
export function formatDuration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function malformed(why: string): SamlError {
  return new SamlError("saml_malformed", `Cannot read the SAML assertion: ${why}`);
}

/** Checks a verified assertion's content at time `now`; throws {@link SamlError}. */
export function checkAssertion(
  signedAssertionXml: string,
  envelope: Pick<ResponseEnvelope, "issuer" | "destination" | "inResponseTo">,
  sp: ResolvedSpConfig,
  idp: SamlIdpConfig,
  now: number,
): CheckedAssertion {
  let root: Element;
  try {
    root = parseXmlStrict(signedAssertionXml).documentElement;
    return new AssertionCheck(root, envelope, sp, idp, now).run();
  } catch (e) {
    if (e instanceof XmlReadError) throw malformed(e.message);
    throw e;
  }
}

class AssertionCheck {
  readonly skewMs: number;
  constructor(
    readonly root: Element,
    readonly envelope: Pick<ResponseEnvelope, "issuer" | "destination" | "inResponseTo">,
    readonly sp: ResolvedSpConfig,
    readonly idp: SamlIdpConfig,
    readonly now: number,
  ) {
    this.skewMs = sp.clockSkewSec * 1000;
  }

  run(): CheckedAssertion {
    const a = this.root;
    if (a.namespaceURI !== NS.saml || a.localName !== "Assertion") {
      throw malformed("it is not a SAML 2.0 Assertion");
    }
    if (attr(a, "Version") !== "2.0") throw malformed("it is not SAML version 2.0");
    const id = attr(a, "ID");
    if (!id) throw malformed("it has no ID");
    const issuer = this.checkIssuer(a);
    this.checkDestination();
    const issued = this.instant(a, "IssueInstant", true)!;
    this.notBefore(issued, "its IssueInstant");
    const conditions = this.checkConditions(a);
    const subject = this.checkSubject(a);
    const authn = this.checkAuthnStatement(a);
    const notOnOrAfter = conditions.notOnOrAfter ?? subject.notOnOrAfter;
    return {
      id,
      issuer,
      nameId: subject.nameId,
      nameIdFormat: subject.nameIdFormat,
      inResponseTo: subject.inResponseTo,
      ...authn,
      notOnOrAfter,
      acceptableUntil: Math.max(notOnOrAfter, subject.notOnOrAfter) + this.skewMs,
      attributes: this.readAttributes(a),
    };
  }

  checkIssuer(a: Element): string {
    const el = onlyChild(a, NS.saml, "Issuer");
    const issuer = el ? text(el) : "";
    if (issuer !== this.idp.entityId) {
      throw new SamlError(
        "saml_issuer",
        `The SAML assertion was issued by "${
          printable(issuer, 200)
        }", not by the identity provider "${this.idp.entityId}"`,
      );
    }
    if (this.envelope.issuer !== undefined && this.envelope.issuer !== this.idp.entityId) {
      throw new SamlError(
        "saml_issuer",
        `The SAML response names issuer "${
          printable(this.envelope.issuer, 200)
        }", not the identity provider "${this.idp.entityId}"`,
      );
    }
    return issuer;
  }

  checkDestination(): void {
    const d = this.envelope.destination;
    if (d !== undefined && d !== this.sp.acsUrl) {
      throw new SamlError(
        "saml_recipient",
        `The SAML response is addressed to "${
          printable(d, 300)
        }", not to this service provider's ACS URL "${this.sp.acsUrl}"`,
      );
    }
  }

  instant(el: Element, name: string, required: boolean): number | undefined {
    const v = attr(el, name);
    if (v === undefined) {
      if (required) throw malformed(`${el.localName} has no ${name}`);
      return undefined;
    }
    const t = parseSamlInstant(v);
    if (t === null) {
      throw malformed(`${el.localName}/@${name} "${printable(v, 40)}" is not a UTC date-time`);
    }
    return t;
  }

  /** Refuses when `t` is still in the future beyond the skew. */
  notBefore(t: number | undefined, what: string): void {
    if (t === undefined || this.now + this.skewMs >= t) return;
    throw new SamlError(
      "saml_not_yet_valid",
      `The SAML assertion is not valid yet: ${what} is ${iso(t)}, ${
        formatDuration(t - this.now)
      } ahead of this server's clock (${iso(this.now)}); ` +
        `the allowed clock skew is ${this.sp.clockSkewSec} s`,
    );
  }

  /** Refuses when `t` has passed beyond the skew. */
  notOnOrAfter(t: number | undefined, what: string): void {
    if (t === undefined || this.now - this.skewMs < t) return;
    throw new SamlError(
      "saml_expired",
      `The SAML assertion has expired: ${what} was ${iso(t)}, ${
        formatDuration(this.now - t)
      } before this server's clock (${iso(this.now)}); ` +
        `the allowed clock skew is ${this.sp.clockSkewSec} s`,
    );
  }

  checkConditions(a: Element): { notOnOrAfter?: number } {
    const c = onlyChild(a, NS.saml, "Conditions");
    if (!c) {
      throw new SamlError(
        "saml_audience",
        `The SAML assertion has no conditions, so it is not restricted to "${this.sp.entityId}"`,
      );
    }
    this.notBefore(this.instant(c, "NotBefore", false), "its NotBefore");
    const notOnOrAfter = this.instant(c, "NotOnOrAfter", false);
    this.notOnOrAfter(notOnOrAfter, "its NotOnOrAfter");
    // SAML core §2.5.1.4: each AudienceRestriction must name us (they are ANDed).
    const restrictions = children(c, NS.saml, "AudienceRestriction");
    if (restrictions.length === 0) {
      throw new SamlError(
        "saml_audience",
        `The SAML assertion has no audience restriction naming "${this.sp.entityId}"`,
      );
    }
    for (const r of restrictions) {
      const audiences = children(r, NS.saml, "Audience").map(text);
      if (!audiences.includes(this.sp.entityId)) {
        throw new SamlError(
          "saml_audience",
          `The SAML assertion is for audience ${
            audiences.map((x) => `"${printable(x, 200)}"`).join(", ") || "(none)"
          }, ` +
            `not for this service provider "${this.sp.entityId}"`,
        );
      }
    }
    return { notOnOrAfter };
  }

  checkSubject(
    a: Element,
  ): { nameId: string; nameIdFormat?: string; inResponseTo: string; notOnOrAfter: number } {
    const subject = onlyChild(a, NS.saml, "Subject");
    if (!subject) throw malformed("it has no Subject");
    const nameIdEl = onlyChild(subject, NS.saml, "NameID");
    const nameId = nameIdEl ? text(nameIdEl) : "";
    if (!nameId) throw malformed("its Subject has no NameID (encrypted NameIDs are not supported)");
    if (nameId.length > 1024) throw malformed("its NameID is longer than 1024 characters");
    const bearers = children(subject, NS.saml, "SubjectConfirmation").filter((s) =>
      attr(s, "Method") === BEARER
    );
    if (bearers.length === 0) throw malformed("its Subject has no bearer SubjectConfirmation");
    // Any one bearer confirmation that passes every check confirms the
    // subject (SAML profiles §4.1.4.3); report the first one's failure.
    let firstError: SamlError | undefined;
    for (const b of bearers) {
      try {
        return { nameId, nameIdFormat: attr(nameIdEl!, "Format"), ...this.checkConfirmation(b) };
      } catch (e) {
        if (!(e instanceof SamlError)) throw e;
        firstError ??= e;
      }
    }
    throw firstError!;
  }

  checkConfirmation(b: Element): { inResponseTo: string; notOnOrAfter: number } {
    const data = onlyChild(b, NS.saml, "SubjectConfirmationData");
    if (!data) throw malformed("its bearer SubjectConfirmation has no SubjectConfirmationData");
    const recipient = attr(data, "Recipient");
    if (recipient !== this.sp.acsUrl) {
      throw new SamlError(
        "saml_recipient",
        recipient === undefined
          ? `The SAML assertion names no Recipient; it must be this service provider's ACS URL "${this.sp.acsUrl}"`
          : `The SAML assertion's Recipient is "${
            printable(recipient, 300)
          }", not this service provider's ACS URL "${this.sp.acsUrl}"`,
      );
    }
    this.notBefore(this.instant(data, "NotBefore", false), "its subject confirmation NotBefore");
    const notOnOrAfter = this.instant(data, "NotOnOrAfter", false);
    if (notOnOrAfter === undefined) {
      throw malformed("its bearer SubjectConfirmationData has no NotOnOrAfter");
    }
    this.notOnOrAfter(notOnOrAfter, "its subject confirmation NotOnOrAfter");
    const inResponseTo = attr(data, "InResponseTo");
    if (!inResponseTo) {
      throw new SamlError(
        "saml_in_response_to",
        "The SAML assertion answers no request (unsolicited, IdP-initiated sign-in is refused); start the sign-in at this service provider",
      );
    }
    const envelopeIrt = this.envelope.inResponseTo;
    if (envelopeIrt !== undefined && envelopeIrt !== inResponseTo) {
      throw new SamlError(
        "saml_in_response_to",
        `The SAML response answers request "${
          printable(envelopeIrt, 100)
        }" but its assertion answers "${printable(inResponseTo, 100)}"`,
      );
    }
    return { inResponseTo, notOnOrAfter };
  }

  checkAuthnStatement(
    a: Element,
  ): Pick<CheckedAssertion, "sessionIndex" | "sessionNotOnOrAfter" | "authnContextClassRef"> {
    const stmt = children(a, NS.saml, "AuthnStatement")[0];
    if (!stmt) throw malformed("it has no AuthnStatement");
    const sessionNotOnOrAfter = this.instant(stmt, "SessionNotOnOrAfter", false);
    this.notOnOrAfter(sessionNotOnOrAfter, "the IdP session end (SessionNotOnOrAfter)");
    const ctx = onlyChild(stmt, NS.saml, "AuthnContext");
    const ref = ctx && onlyChild(ctx, NS.saml, "AuthnContextClassRef");
    return {
      sessionIndex: attr(stmt, "SessionIndex"),
      sessionNotOnOrAfter,
      authnContextClassRef: ref ? text(ref) : undefined,
    };
  }

  readAttributes(a: Element): Map<string, string[]> {
    const out = new Map<string, string[]>();
    let count = 0;
    const add = (key: string, values: string[]) => {
      const list = out.get(key) ?? [];
      for (const v of values) if (!list.includes(v)) list.push(v);
      out.set(key, list);
    };
    for (const stmt of children(a, NS.saml, "AttributeStatement")) {
      for (const at of children(stmt, NS.saml, "Attribute")) {
        const name = attr(at, "Name");
        if (!name) continue;
        const values: string[] = [];
        for (const v of children(at, NS.saml, "AttributeValue")) {
          const s = text(v);
          if (s.length > MAX_VALUE_CHARS) {
            throw malformed(
              `attribute "${
                printable(name, 100)
              }" has a value longer than ${MAX_VALUE_CHARS} characters`,
            );
          }
          if (++count > MAX_ATTRIBUTE_VALUES) {
            throw malformed(`it has more than ${MAX_ATTRIBUTE_VALUES} attribute values`);
          }
          if (s) values.push(s);
        }
        add(name, values);
        const friendly = attr(at, "FriendlyName");
        if (friendly && friendly !== name) add(friendly, values);
      }
    }
    return out;
  }
}
