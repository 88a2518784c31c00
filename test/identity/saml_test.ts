/**
 * The SAML service provider against crafted responses signed by test keys
 * (xml-crypto): the valid baseline and attribute mapping, clock skew both
 * ways, key rotation, the login redirect, SP metadata, configuration and IdP
 * metadata validation, and the in-memory stores. The refusal table is in
 * saml_refusal_test.ts, the round trip with a real IdP in saml_idp_test.ts.
 */
import assert from "node:assert/strict";
import { inflateRawSync } from "node:zlib";
import { DOMParser } from "@xmldom/xmldom";
import { ManualClock } from "../../src/clock.ts";
import {
  MemoryReplayCache,
  MemoryRequestStore,
  parseIdpMetadata,
  SamlError,
  type SamlIdpConfig,
  SamlServiceProvider,
  type SamlSpConfig,
  spMetadataXml,
} from "../../src/identity/saml.ts";
import { b64, defaultFields } from "./saml_craft.ts";
import {
  attacker,
  fixture,
  IDP,
  idpKey,
  nextKey,
  refused,
  signed,
  SP,
  START,
} from "./saml_fixture.ts";

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

Deno.test("saml: the request lifetime setting decides how long a response may take", async () => {
  for (const [ttl, waitMs, ok] of [[60_000, 59_000, true], [60_000, 61_000, false]] as const) {
    const clock = new ManualClock(START);
    const sp = new SamlServiceProvider(SP, IDP, {
      replay: new MemoryReplayCache(clock),
      requests: new MemoryRequestStore(clock),
      clock,
      requestTtlMs: ttl,
    });
    const { requestId, expiresAt } = await sp.loginUrl("");
    assert.equal(expiresAt, START + ttl);
    clock.advance(waitMs);
    const base = {
      idpEntityId: IDP.entityId,
      spEntityId: SP.entityId,
      acsUrl: SP.acsUrl,
      now: clock.now(),
    };
    const body = { SAMLResponse: b64(signed(defaultFields(base, requestId))) };
    if (ok) assert.equal((await sp.validatePostResponse(body)).requestId, requestId);
    else await refused(sp, body, "saml_in_response_to", `answered after ${waitMs} ms`);
  }
});
