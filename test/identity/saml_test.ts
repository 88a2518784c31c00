/**
 * The SAML service provider against crafted responses: one valid baseline,
 * then a table in which every row is refused with its own code (forged,
 * unsigned, expired, wrong audience/recipient/InResponseTo/issuer, replayed,
 * signature wrapping, weak algorithms, garbage), plus clock skew, key
 * rotation, metadata import and the login redirect. Crafted documents are
 * signed by test keys with xml-crypto; the round trip with a real IdP is in
 * saml_idp_test.ts.
 */
import assert from "node:assert/strict";
import { inflateRawSync } from "node:zlib";
import { DOMParser } from "@xmldom/xmldom";
import { ManualClock } from "../../src/clock.ts";
import {
  MAX_RESPONSE_CHARS,
  MemoryReplayCache,
  MemoryRequestStore,
  parseIdpMetadata,
  SamlError,
  type SamlErrorCode,
  type SamlIdpConfig,
  SamlServiceProvider,
  type SamlSpConfig,
  spMetadataXml,
} from "../../src/identity/saml.ts";
import {
  assertionXml,
  b64,
  type CraftBase,
  type CraftFields,
  craftId,
  defaultFields,
  makeTestKey,
  responseXml,
  SIG,
  sign,
  type SignOptions,
  type TestKey,
} from "./saml_craft.ts";

const [idpKey, nextKey, attacker] = await Promise.all([
  makeTestKey("test idp"),
  makeTestKey("test idp next"),
  makeTestKey("attacker"),
]);

const SP: SamlSpConfig = {
  entityId: "https://edge.corp.example/saml/sp",
  acsUrl: "https://edge.corp.example/saml/acs",
  groupAttribute: "groups",
  emailAttribute: "email",
  displayNameAttribute: "displayName",
  wantAssertionsSigned: true,
};
const IDP: SamlIdpConfig = {
  entityId: "https://idp.corp.example/saml",
  ssoUrl: "https://idp.corp.example/saml/sso",
  certificates: [idpKey.certificate, nextKey.certificate],
};
const START = Date.UTC(2026, 0, 1, 12, 0, 0);

/** One service provider with its own stores and clock, and one issued request. */
async function fixture(spOverrides: Partial<SamlSpConfig> = {}, idp: SamlIdpConfig = IDP) {
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
function signed(
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
function signatureOf(xml: string): string {
  const start = xml.indexOf("<ds:Signature");
  return xml.slice(start, xml.indexOf("</ds:Signature>", start) + "</ds:Signature>".length);
}

async function refused(
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

Deno.test("saml: a valid signed response gives the identity with multi-valued groups", async () => {
  const { sp, requestId, fields, requests } = await fixture();
  const id = await sp.validatePostResponse({
    SAMLResponse: b64(signed(fields)),
    RelayState: "rs-1",
  });
  assert.equal(id.issuer, IDP.entityId);
  assert.equal(id.nameId, "ana@corp.example");
  assert.equal(id.email, "ana@corp.example");
  assert.equal(id.displayName, "Ana Lima");
  assert.deepEqual(id.groups, ["engineering", "staff"]);
  assert.equal(id.assertionId, fields.assertionId);
  assert.equal(id.requestId, requestId);
  assert.equal(id.relayState, "rs-1");
  assert.equal(id.notOnOrAfter, fields.notOnOrAfter);
  assert.equal(id.sessionNotOnOrAfter, fields.sessionNotOnOrAfter);
  assert.equal(id.sessionIndex, `_s${fields.assertionId}`);
  assert.equal(requests.size, 0, "the request was consumed");
});

Deno.test("saml: the group, e-mail and display-name attribute settings decide what is read", async () => {
  const f1 = await fixture({
    groupAttribute: "memberOf",
    emailAttribute: "mail",
    displayNameAttribute: undefined,
  });
  f1.fields.attributes = {
    memberOf: ["ops", "ops", "net"],
    mail: ["a.lima@corp.example"],
    groups: ["ignored"],
  };
  const id = await f1.sp.validatePostResponse({ SAMLResponse: b64(signed(f1.fields)) });
  assert.deepEqual(id.groups, ["ops", "net"], "values of memberOf, de-duplicated, not of groups");
  assert.equal(id.email, "a.lima@corp.example");
  assert.equal(id.displayName, undefined);

  // No e-mail attribute configured: an emailAddress NameID is the e-mail; a transient one is not.
  const f2 = await fixture({ emailAttribute: undefined });
  const id2 = await f2.sp.validatePostResponse({ SAMLResponse: b64(signed(f2.fields)) });
  assert.equal(id2.email, "ana@corp.example");
  const f3 = await fixture({ emailAttribute: undefined });
  f3.fields.nameIdFormat = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
  f3.fields.nameId = "_8f3a";
  const id3 = await f3.sp.validatePostResponse({ SAMLResponse: b64(signed(f3.fields)) });
  assert.equal(id3.email, undefined);
  assert.deepEqual(id3.groups, ["engineering", "staff"]);
});

/** A refusal row: `build` returns the SAMLResponse field (or the whole body). */
interface Row {
  name: string;
  code: SamlErrorCode;
  /** The row itself uses up or outlives the issued request (every other refusal leaves it answerable). */
  usesRequest?: true;
  build: (
    c: Awaited<ReturnType<typeof fixture>>,
  ) => string | { SAMLResponse?: unknown; RelayState?: unknown } | Promise<string>;
}

const rows: Row[] = [
  {
    name: "forged: signed by a key the IdP does not have (its certificate embedded)",
    code: "saml_signature_invalid",
    build: (c) => b64(signed(c.fields, { key: attacker })),
  },
  {
    name: "forged: signed assertion altered afterwards (a group added)",
    code: "saml_signature_invalid",
    build: (c) =>
      b64(
        signed(c.fields).replace(
          ">staff<",
          ">staff</saml:AttributeValue><saml:AttributeValue>admins<",
        ),
      ),
  },
  {
    name: "forged: response signed by the IdP, assertion by the attacker",
    code: "saml_signature_invalid",
    build: (c) => b64(signed(c.fields, { key: attacker, responseKey: idpKey })),
  },
  {
    name: "response signature present but broken (response altered outside the assertion)",
    code: "saml_signature_invalid",
    build: (c) =>
      b64(
        signed(c.fields, { responseKey: idpKey }).replace(
          ` ID="${c.fields.responseId}"`,
          ` ID="${c.fields.responseId}x"`,
        ),
      ),
  },
  {
    name: "response signed by the attacker around a genuine signed assertion",
    code: "saml_signature_invalid",
    build: (c) => b64(signed(c.fields, { responseKey: attacker })),
  },
  {
    name: "unsigned response and assertion",
    code: "saml_unsigned",
    build: (c) => b64(responseXml(c.fields, assertionXml(c.fields))),
  },
  {
    name: "assertion unsigned while the response is signed",
    code: "saml_unsigned",
    build: (c) => b64(sign(responseXml(c.fields, assertionXml(c.fields)), "Response", idpKey)),
  },
  {
    name: "expired: NotOnOrAfter passed by more than the skew",
    code: "saml_expired",
    build: (c) => {
      const t = c.base.now;
      Object.assign(c.fields, {
        issueInstant: t - 600_000,
        notBefore: t - 600_000,
        notOnOrAfter: t - 121_000,
        subjectNotOnOrAfter: t - 121_000,
      });
      return b64(signed(c.fields));
    },
  },
  {
    name: "expired: only the subject confirmation has passed",
    code: "saml_expired",
    build: (c) => {
      c.fields.subjectNotOnOrAfter = c.base.now - 125_000;
      return b64(signed(c.fields));
    },
  },
  {
    name: "expired: the IdP session has ended (SessionNotOnOrAfter)",
    code: "saml_expired",
    build: (c) => {
      c.fields.sessionNotOnOrAfter = c.base.now - 130_000;
      return b64(signed(c.fields));
    },
  },
  {
    name: "not yet valid: NotBefore later than the skew",
    code: "saml_not_yet_valid",
    build: (c) => {
      c.fields.notBefore = c.base.now + 121_000;
      return b64(signed(c.fields));
    },
  },
  {
    name: "not yet valid: issued in the future",
    code: "saml_not_yet_valid",
    build: (c) => {
      c.fields.issueInstant = c.base.now + 10 * 60_000;
      return b64(signed(c.fields));
    },
  },
  {
    name: "wrong audience",
    code: "saml_audience",
    build: (c) => {
      c.fields.audience = ["https://other-sp.example/saml"];
      return b64(signed(c.fields));
    },
  },
  {
    name: "no audience restriction",
    code: "saml_audience",
    build: (c) => {
      c.fields.audience = null;
      return b64(signed(c.fields));
    },
  },
  {
    name: "two audience restrictions, one without us",
    code: "saml_audience",
    build: (c) =>
      b64(signed(c.fields, {
        edit: (a) =>
          a.replace(
            "</saml:AudienceRestriction>",
            "</saml:AudienceRestriction><saml:AudienceRestriction><saml:Audience>https://x.example</saml:Audience></saml:AudienceRestriction>",
          ),
      })),
  },
  {
    name: "wrong recipient",
    code: "saml_recipient",
    build: (c) => {
      c.fields.recipient = "https://evil.example/acs";
      return b64(signed(c.fields));
    },
  },
  {
    name: "no recipient",
    code: "saml_recipient",
    build: (c) => {
      c.fields.recipient = null;
      return b64(signed(c.fields));
    },
  },
  {
    name: "wrong Destination on the response",
    code: "saml_recipient",
    build: (c) => {
      c.fields.destination = "https://evil.example/acs";
      return b64(signed(c.fields));
    },
  },
  {
    name: "InResponseTo a request we never issued",
    code: "saml_in_response_to",
    build: (c) => {
      c.fields.inResponseTo = c.fields.responseInResponseTo = "_never-issued";
      return b64(signed(c.fields));
    },
  },
  {
    name: "unsolicited (IdP-initiated, no InResponseTo)",
    code: "saml_in_response_to",
    build: (c) => {
      c.fields.inResponseTo = c.fields.responseInResponseTo = null;
      return b64(signed(c.fields));
    },
  },
  {
    name: "Response InResponseTo differs from the signed assertion's",
    code: "saml_in_response_to",
    build: (c) => {
      c.fields.responseInResponseTo = "_other";
      return b64(signed(c.fields));
    },
  },
  {
    name: "request expired before the answer came (clock moved 11 min)",
    usesRequest: true,
    code: "saml_in_response_to",
    build: (c) => {
      c.clock.advance(11 * 60_000);
      const f = defaultFields({ ...c.base, now: c.clock.now() }, c.requestId);
      return b64(signed(f));
    },
  },
  {
    name: "second, different assertion for an already answered request",
    usesRequest: true,
    code: "saml_in_response_to",
    build: async (c) => {
      await c.sp.validatePostResponse({ SAMLResponse: b64(signed(c.fields)) });
      return b64(signed(defaultFields(c.base, c.requestId)));
    },
  },
  {
    name: "replayed assertion ID",
    usesRequest: true,
    code: "saml_replayed",
    build: async (c) => {
      const once = b64(signed(c.fields));
      await c.sp.validatePostResponse({ SAMLResponse: once });
      return once;
    },
  },
  {
    name: "replayed assertion ID answering a new request",
    usesRequest: true,
    code: "saml_replayed",
    build: async (c) => {
      await c.sp.validatePostResponse({ SAMLResponse: b64(signed(c.fields)) });
      const { requestId } = await c.sp.loginUrl("rs-2");
      return b64(signed({ ...c.fields, inResponseTo: requestId, responseInResponseTo: requestId }));
    },
  },
  {
    name: "wrong issuer in the signed assertion",
    code: "saml_issuer",
    build: (c) => {
      c.fields.issuer = "https://other-idp.example";
      return b64(signed(c.fields));
    },
  },
  {
    name: "wrong issuer on the response",
    code: "saml_issuer",
    build: (c) => {
      c.fields.responseIssuer = "https://other-idp.example";
      return b64(signed(c.fields));
    },
  },
  {
    name: "wrapping: an unsigned assertion before the signed one",
    code: "saml_signature_invalid",
    build: (c) => {
      const evil = assertionXml({
        ...c.fields,
        assertionId: craftId("evil"),
        nameId: "admin@corp.example",
      });
      return b64(responseXml(c.fields, evil + sign(assertionXml(c.fields), "Assertion", idpKey)));
    },
  },
  {
    name: "wrapping: an unsigned assertion after the signed one",
    code: "saml_signature_invalid",
    build: (c) => {
      const evil = assertionXml({
        ...c.fields,
        assertionId: craftId("evil"),
        nameId: "admin@corp.example",
      });
      return b64(responseXml(c.fields, sign(assertionXml(c.fields), "Assertion", idpKey) + evil));
    },
  },
  {
    name: "wrapping: the signed assertion inside an unsigned one",
    code: "saml_unsigned",
    build: (c) => {
      const good = sign(assertionXml(c.fields), "Assertion", idpKey);
      const evil = assertionXml({
        ...c.fields,
        assertionId: craftId("evil"),
        nameId: "admin@corp.example",
      })
        .replace("</saml:Issuer>", `</saml:Issuer><saml:Advice>${good}</saml:Advice>`);
      return b64(responseXml(c.fields, evil));
    },
  },
  {
    name: "wrapping: signature moved onto an unsigned assertion, signed one in its ds:Object",
    code: "saml_signature_invalid",
    build: (c) => {
      const good = sign(assertionXml(c.fields), "Assertion", idpKey);
      const sig = signatureOf(good);
      const carried = sig.replace(
        "</ds:Signature>",
        `<ds:Object>${good.replace(sig, "")}</ds:Object></ds:Signature>`,
      );
      const evil = assertionXml({
        ...c.fields,
        assertionId: craftId("evil"),
        nameId: "admin@corp.example",
      })
        .replace("</saml:Issuer>", `</saml:Issuer>${carried}`);
      return b64(responseXml(c.fields, evil));
    },
  },
  {
    name:
      "wrapping: signed assertion moved into Extensions, an unsigned one with its ID takes its place",
    code: "saml_signature_invalid",
    build: (c) => {
      const good = sign(assertionXml(c.fields), "Assertion", idpKey);
      const evil = assertionXml({ ...c.fields, nameId: "admin@corp.example" })
        .replace("</saml:Issuer>", `</saml:Issuer>${signatureOf(good)}`);
      return b64(
        responseXml(c.fields, evil).replace(
          "<samlp:Status>",
          `<samlp:Extensions>${good}</samlp:Extensions><samlp:Status>`,
        ),
      );
    },
  },
  {
    name: "wrapping: signed response moved inside a new response with an unsigned assertion",
    code: "saml_unsigned",
    build: (c) => {
      const inner = sign(
        responseXml(c.fields, sign(assertionXml(c.fields), "Assertion", idpKey)),
        "Response",
        idpKey,
      );
      const evil = assertionXml({
        ...c.fields,
        assertionId: craftId("evil"),
        nameId: "admin@corp.example",
      });
      const outer = responseXml({ ...c.fields, responseId: craftId("outer") }, evil);
      return b64(
        outer.replace(
          "<samlp:Status>",
          `<samlp:Extensions>${inner}</samlp:Extensions><samlp:Status>`,
        ),
      );
    },
  },
  {
    name: "weak algorithm: RSA-SHA1 signature",
    code: "saml_signature_algorithm",
    build: (c) =>
      b64(signed(c.fields, { sign: { signatureAlgorithm: SIG.rsaSha1, digest: SIG.sha1 } })),
  },
  {
    name: "weak algorithm: SHA-1 digest under RSA-SHA256",
    code: "saml_signature_algorithm",
    build: (c) => b64(signed(c.fields, { sign: { digest: SIG.sha1 } })),
  },
  {
    name: "inclusive (not exclusive) canonicalisation",
    code: "saml_signature_algorithm",
    build: (c) => b64(signed(c.fields, { sign: { canonicalization: SIG.c14n } })),
  },
  {
    name: "a group name longer than 256 characters",
    code: "saml_malformed",
    build: (c) => {
      c.fields.attributes.groups = ["engineering", "g".repeat(257)];
      return b64(signed(c.fields));
    },
  },
  {
    name: "IdP status: authentication failed",
    code: "saml_status",
    build: (c) => {
      c.fields.status = "urn:oasis:names:tc:SAML:2.0:status:Responder";
      return b64(responseXml(c.fields, ""));
    },
  },
  {
    name: "encrypted assertion (we publish no encryption key)",
    code: "saml_malformed",
    build: (c) =>
      b64(
        responseXml(
          c.fields,
          `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/>`,
        ),
      ),
  },
  {
    name: "no assertion at all",
    code: "saml_malformed",
    build: (c) => b64(responseXml(c.fields, "")),
  },
  { name: "garbage: not base64", code: "saml_malformed", build: () => "not base64 at all!!" },
  { name: "garbage: base64 of non-XML", code: "saml_malformed", build: () => b64("hello, world") },
  {
    name: "garbage: base64 of invalid UTF-8",
    code: "saml_malformed",
    build: () => btoa("\xff\xfe<a/>"),
  },
  {
    name: "garbage: broken XML",
    code: "saml_malformed",
    build: (c) => b64(signed(c.fields).slice(0, 400)),
  },
  {
    name: "garbage: an XML document that is not a Response",
    code: "saml_malformed",
    build: () => b64("<html><body>hi</body></html>"),
  },
  {
    name: "garbage: a bare assertion instead of a Response",
    code: "saml_malformed",
    build: (c) => b64(sign(assertionXml(c.fields), "Assertion", idpKey)),
  },
  {
    name: "garbage: DOCTYPE with an entity-expansion bomb",
    code: "saml_malformed",
    build: () =>
      b64(
        `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&b;</samlp:Response>`,
      ),
  },
  {
    name: "garbage: huge input",
    code: "saml_too_large",
    build: () => "A".repeat(MAX_RESPONSE_CHARS + 4),
  },
  {
    name: "garbage: deep nesting inside a validly signed assertion",
    code: "saml_malformed",
    build: (c) =>
      b64(
        signed(c.fields, {
          edit: (a) => a.replace(">staff<", `>${"<x>".repeat(100)}${"</x>".repeat(100)}staff<`),
        }),
      ),
  },
  {
    name: "garbage: deep nesting within the size limit",
    code: "saml_malformed",
    build: () =>
      b64(
        `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" Version="2.0">${
          "<a>".repeat(20_000)
        }${"</a>".repeat(20_000)}</samlp:Response>`,
      ),
  },
  { name: "garbage: empty", code: "saml_malformed", build: () => "" },
  { name: "garbage: missing field", code: "saml_malformed", build: () => ({ RelayState: "x" }) },
  { name: "garbage: a number", code: "saml_malformed", build: () => ({ SAMLResponse: 42 }) },
  {
    name: "garbage: RelayState over 80 bytes",
    code: "saml_malformed",
    build: (c) => ({ SAMLResponse: b64(signed(c.fields)), RelayState: "x".repeat(81) }),
  },
];

Deno.test("saml: every crafted bad response is refused with its code", async () => {
  for (const row of rows) {
    const c = await fixture();
    const built = await row.build(c);
    const body = typeof built === "string" ? { SAMLResponse: built } : built;
    await refused(c.sp, body, row.code, row.name);
    if (!row.usesRequest) {
      assert.equal(
        c.requests.consume(c.requestId),
        true,
        `${row.name}: the request is still answerable`,
      );
    }
  }
});

Deno.test("saml: comments inside a signed NameID do not truncate it", async () => {
  // The 2018 comment-injection class: exclusive c14n drops comments, so the
  // signature still verifies; the value must be read from the signed
  // canonical form, whole.
  const c = await fixture();
  c.fields.nameId = "ana@corp.example.evil.example";
  c.fields.attributes.email = ["ana@corp.example.evil.example"];
  const tampered = signed(c.fields)
    .replace(
      ">ana@corp.example.evil.example</saml:NameID>",
      ">ana@corp.example<!---->.evil.example</saml:NameID>",
    )
    .replace(
      ">ana@corp.example.evil.example</saml:AttributeValue>",
      ">ana@corp.example<!---->.evil.example</saml:AttributeValue>",
    );
  const id = await c.sp.validatePostResponse({ SAMLResponse: b64(tampered) });
  assert.equal(id.nameId, "ana@corp.example.evil.example");
  assert.equal(id.email, "ana@corp.example.evil.example");
});

Deno.test("saml: the clock skew setting moves the validity window both ways", async () => {
  // [skew s, offset of the server clock from the IdP's in s, accepted?]
  const table: [number, number, boolean][] = [
    [120, 0, true],
    [120, 400, true], // 100 s after NotOnOrAfter (+300 s): inside 120 s of skew
    [120, 421, false],
    [600, 421, true],
    [120, -119, true], // 119 s before IssueInstant (NotBefore is 30 s earlier still)
    [120, -121, false],
    [0, 301, false],
    [0, -1, false],
    [600, -360, true],
  ];
  for (const [skew, offset, ok] of table) {
    const c = await fixture({ clockSkewSec: skew });
    const body = { SAMLResponse: b64(signed(c.fields)) };
    c.clock.advance(offset * 1000);
    const what = `skew ${skew} s, clock ${offset} s off`;
    if (ok) {
      const id = await c.sp.validatePostResponse(body);
      assert.equal(id.nameId, "ana@corp.example", what);
    } else {
      const err = await refused(
        c.sp,
        body,
        offset > 0 ? "saml_expired" : "saml_not_yet_valid",
        what,
      );
      assert.match(err.message, new RegExp(`allowed clock skew is ${skew} s`), what);
    }
  }
  // The refusal says by how much the clocks differ (6 min behind here).
  const c = await fixture();
  const body = { SAMLResponse: b64(signed(c.fields)) };
  c.clock.setWall(c.clock.now() - 6 * 60_000 - 12_000);
  const err = await refused(c.sp, body, "saml_not_yet_valid", "6 min 12 s behind");
  assert.match(err.message, /6 min 12 s ahead of this server's clock/);
});

Deno.test("saml: certificate rotation: either published key verifies; a dropped one does not", async () => {
  const c = await fixture();
  const byNext = await c.sp.validatePostResponse({
    SAMLResponse: b64(signed(c.fields, { key: nextKey })),
  });
  assert.equal(byNext.nameId, "ana@corp.example");
  const onlyNext = await fixture({}, { ...IDP, certificates: [nextKey.certificate] });
  await refused(
    onlyNext.sp,
    { SAMLResponse: b64(signed(onlyNext.fields, { key: idpKey })) },
    "saml_signature_invalid",
    "old key dropped",
  );
  // A signed response and a signed assertion by different trusted keys is fine.
  const both = await fixture();
  const id = await both.sp.validatePostResponse({
    SAMLResponse: b64(signed(both.fields, { key: idpKey, responseKey: nextKey })),
  });
  assert.equal(id.assertionId, both.fields.assertionId);
});

Deno.test("saml: the login URL carries a deflated AuthnRequest whose ID is recorded", async () => {
  const clock = new ManualClock(START);
  const requests = new MemoryRequestStore(clock);
  const sp = new SamlServiceProvider(
    { ...SP, nameIdFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" },
    IDP,
    {
      replay: new MemoryReplayCache(clock),
      requests,
      clock,
    },
  );
  const login = await sp.loginUrl("state-42", { forceAuthn: true });
  const url = new URL(login.url);
  assert.equal(url.origin + url.pathname, IDP.ssoUrl);
  assert.equal(url.searchParams.get("RelayState"), "state-42");
  assert.equal(login.expiresAt, START + 10 * 60_000);
  const xml = inflateRawSync(
    Uint8Array.from(atob(url.searchParams.get("SAMLRequest")!), (ch) => ch.charCodeAt(0)),
  )
    .toString();
  const req = new DOMParser().parseFromString(xml, "text/xml").documentElement!;
  assert.equal(req.localName, "AuthnRequest");
  assert.equal(req.getAttribute("ID"), login.requestId);
  assert.equal(req.getAttribute("Destination"), IDP.ssoUrl);
  assert.equal(req.getAttribute("AssertionConsumerServiceURL"), SP.acsUrl);
  assert.equal(req.getAttribute("ForceAuthn"), "true");
  assert.match(xml, /<saml:Issuer[^>]*>https:\/\/edge\.corp\.example\/saml\/sp<\/saml:Issuer>/);
  assert.match(xml, /Format="urn:oasis:names:tc:SAML:1\.1:nameid-format:emailAddress"/);
  assert.equal(requests.size, 1);
  assert.equal(requests.consume(login.requestId), true);
  assert.equal(requests.consume(login.requestId), false, "a request is answered once");
  const plain = new URL((await sp.loginUrl("")).url);
  assert.equal(plain.searchParams.has("RelayState"), false);
  assert.equal((await sp.loginUrl("a")).requestId === (await sp.loginUrl("a")).requestId, false);
  await assert.rejects(
    sp.loginUrl("é".repeat(41)),
    (e: SamlError) => e.code === "saml_config_invalid" && /82 bytes/.test(e.message),
  );
});

Deno.test("saml: SP metadata names our entity ID and ACS URL and wants signed assertions", () => {
  const xml = spMetadataXml({
    ...SP,
    nameIdFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
  });
  const doc = new DOMParser().parseFromString(xml, "text/xml");
  const ed = doc.documentElement!;
  assert.equal(ed.getAttribute("entityID"), SP.entityId);
  const sso = ed.getElementsByTagName("SPSSODescriptor")[0];
  assert.equal(sso.getAttribute("WantAssertionsSigned"), "true");
  assert.equal(sso.getAttribute("AuthnRequestsSigned"), "false");
  const acs = ed.getElementsByTagName("AssertionConsumerService")[0];
  assert.equal(acs.getAttribute("Location"), SP.acsUrl);
  assert.equal(acs.getAttribute("Binding"), "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST");
  assert.equal(
    ed.getElementsByTagName("NameIDFormat")[0].textContent,
    "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
  );
});

Deno.test("saml: bad SP and IdP configuration is refused naming the value", () => {
  const sp: [Partial<SamlSpConfig> | Record<string, unknown>, RegExp][] = [
    [{ entityId: "" }, /SP entity ID: it is empty/],
    [{ entityId: " x" }, /surrounding spaces/],
    [{ acsUrl: "/saml/acs" }, /ACS URL "\/saml\/acs": it is not an absolute URL/],
    [{ acsUrl: "ftp://edge/acs" }, /only http and https/],
    [{ acsUrl: "https://edge/acs#x" }, /fragment/],
    [{ groupAttribute: "" }, /group attribute: it is empty/],
    [{ emailAttribute: "a\nb" }, /control characters/],
    [{ clockSkewSec: -1 }, /clock skew of -1 s/],
    [{ clockSkewSec: 1.5 }, /clock skew of 1.5 s/],
    [{ clockSkewSec: 3600 }, /from 0 to 1800/],
    [{ wantAssertionsSigned: false }, /every assertion must be signed/],
    [{ nameIdFormat: "email" }, /NameID format "email": it is not a URN/],
  ];
  const clock = new ManualClock(START);
  const deps = {
    replay: new MemoryReplayCache(clock),
    requests: new MemoryRequestStore(clock),
    clock,
  };
  for (const [bad, msg] of sp) {
    assert.throws(
      () => new SamlServiceProvider({ ...SP, ...bad } as SamlSpConfig, IDP, deps),
      (e: SamlError) => e.code === "saml_config_invalid" && msg.test(e.message),
      JSON.stringify(bad),
    );
  }
  const idp: [Partial<SamlIdpConfig>, RegExp][] = [
    [{ entityId: "" }, /IdP entity ID: it is empty/],
    [{ ssoUrl: "javascript:alert(1)" }, /only http and https/],
    [{ certificates: [] }, /has no signing certificate/],
    [{ certificates: ["hello"] }, /IdP certificate 1: it is not an X.509 certificate|not a PEM/],
    [{ certificates: [idpKey.privateKey] }, /IdP certificate 1/],
  ];
  for (const [bad, msg] of idp) {
    assert.throws(
      () => new SamlServiceProvider(SP, { ...IDP, ...bad }, deps),
      (e: SamlError) => e.code === "saml_config_invalid" && msg.test(e.message),
      JSON.stringify(bad),
    );
  }
});

function idpMetadata(
  o: { sso?: string; keys?: string; extra?: string; root?: (ed: string) => string } = {},
): string {
  const der = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, "");
  const keys = o.keys ??
    `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${
        der(idpKey.certificate)
      }</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
      `<md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\n  ${
        der(nextKey.certificate).replace(/(.{64})/g, "$1\n  ")
      }\n</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
      `<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${
        der(attacker.certificate)
      }</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`;
  const sso = o.sso ??
    `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.corp.example/saml/post"/>` +
      `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.corp.example/saml/sso"/>`;
  const ed =
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.corp.example/saml">` +
    `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"${
      o.extra ?? ""
    }>${keys}${sso}</md:IDPSSODescriptor></md:EntityDescriptor>`;
  return o.root ? o.root(ed) : ed;
}

Deno.test("saml: IdP metadata import takes the redirect SSO URL and every signing certificate", async () => {
  const idp = parseIdpMetadata(idpMetadata());
  assert.equal(idp.entityId, "https://idp.corp.example/saml");
  assert.equal(idp.ssoUrl, "https://idp.corp.example/saml/sso");
  assert.equal(idp.certificates.length, 2, "both signing keys; the encryption-only key left out");
  // The imported certificates verify (and the attacker's encryption key is not trusted).
  const c = await fixture({}, idp);
  await c.sp.validatePostResponse({ SAMLResponse: b64(signed(c.fields, { key: nextKey })) });
  const d = await fixture({}, idp);
  await refused(
    d.sp,
    { SAMLResponse: b64(signed(d.fields, { key: attacker })) },
    "saml_signature_invalid",
    "encryption key",
  );
  const wrapped = parseIdpMetadata(
    idpMetadata({
      root: (ed) =>
        `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${ed}</md:EntitiesDescriptor>`,
    }),
  );
  assert.equal(wrapped.entityId, idp.entityId);
});

Deno.test("saml: IdP metadata that cannot be used is refused saying what is missing", () => {
  const table: [string, RegExp][] = [
    ["", /it is empty/],
    ["not xml", /not an XML document|not well-formed/],
    ["<a><b></a>", /not well-formed/],
    [
      `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>`,
      /DOCTYPE/,
    ],
    ["<html/>", /root element is html/],
    [idpMetadata({ sso: "" }), /no HTTP-Redirect SingleSignOnService/],
    [idpMetadata({ keys: "" }), /no signing certificate/],
    [
      idpMetadata({
        keys:
          `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`,
      }),
      /IdP certificate 1: it is not an X.509 certificate/,
    ],
    [
      idpMetadata({ extra: ` WantAuthnRequestsSigned="true"` }),
      /requires signed authentication requests/,
    ],
    [
      idpMetadata().replace(
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"',
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:1.1:protocol"',
      ),
      /does not support SAML 2.0/,
    ],
    [idpMetadata().replace(' entityID="https://idp.corp.example/saml"', ""), /has no entityID/],
    [
      idpMetadata({
        root: (ed) =>
          `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${ed}${ed}</md:EntitiesDescriptor>`,
      }),
      /2 identity providers/,
    ],
    [
      idpMetadata({
        sso:
          `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="file:///x"/>`,
      }),
      /only http and https/,
    ],
    ["x".repeat(2 * 1024 * 1024 + 1), /larger than/],
  ];
  for (const [xml, msg] of table) {
    assert.throws(
      () => parseIdpMetadata(xml),
      (e: SamlError) =>
        e instanceof SamlError && e.code === "saml_metadata_invalid" && msg.test(e.message),
      xml.slice(0, 80),
    );
  }
});

Deno.test("saml: in-memory stores forget expired IDs and stay bounded", () => {
  const clock = new ManualClock(START);
  const replay = new MemoryReplayCache(clock, 3);
  assert.equal(replay.seen("a", START + 1000), false);
  assert.equal(replay.seen("a", START + 1000), true);
  clock.advance(1000);
  assert.equal(replay.seen("a", START + 5000), false, "expired: may be recorded again");
  for (const id of ["b", "c", "d", "e"]) replay.seen(id, START + 60_000);
  assert.ok(replay.size <= 3);
  const requests = new MemoryRequestStore(clock);
  requests.issued("r1", clock.now() + 1000);
  clock.advance(1000);
  assert.equal(requests.consume("r1"), false, "expired");
  requests.issued("r2", clock.now() + 1000);
  assert.equal(requests.consume("r2"), true);
  assert.equal(requests.consume("r2"), false);
});

Deno.test("saml: random mutations of a signed response never crash and never change who signs in", async () => {
  // Seeded, so a failure reproduces: every outcome is a coded refusal, or
  // the same identity (edits in what no signature covers or uses, such as
  // the embedded KeyInfo certificates, whitespace inside tags, or a
  // namespace only named in attribute values, which exclusive c14n omits).
  let seed = 0x5a17;
  const rand = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) % n);
  };
  const chars = `<>&"'=/: ax0-_#;!?[]\u00e9\u0000`;
  const mutate = (x: string): string => {
    const i = rand(x.length);
    const j = Math.min(x.length, i + 1 + rand(40));
    switch (rand(5)) {
      case 0:
        return x.slice(0, i) + chars[rand(chars.length)] + x.slice(i + 1);
      case 1:
        return x.slice(0, i) + x.slice(j);
      case 2:
        return x.slice(0, j) + x.slice(i, j) + x.slice(j);
      case 3:
        return x.slice(0, i);
      default:
        return x.slice(0, i) + chars[rand(chars.length)] + x.slice(i);
    }
  };
  const c = await fixture();
  const original = signed(c.fields, { responseKey: idpKey });
  let refusedCount = 0;
  for (let n = 0; n < 120; n++) {
    // Same request and stores each round, reset, so only the mutation decides.
    c.requests.issued(c.requestId, c.clock.now() + 60_000);
    const sp = new SamlServiceProvider(SP, IDP, {
      replay: new MemoryReplayCache(c.clock),
      requests: c.requests,
      clock: c.clock,
    });
    const xml = mutate(original);
    try {
      const id = await sp.validatePostResponse({ SAMLResponse: b64(xml) });
      assert.equal(id.nameId, "ana@corp.example", `mutation ${n}`);
      assert.deepEqual(id.groups, ["engineering", "staff"], `mutation ${n}`);
    } catch (e) {
      assert.ok(e instanceof SamlError, `mutation ${n} threw ${e}`);
      refusedCount++;
    }
  }
  assert.ok(refusedCount > 80, `most mutations are refused (${refusedCount}/120)`);
});
