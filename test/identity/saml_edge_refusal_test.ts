/**
 * Crafted SAML responses posted to the edge's ACS, one per row: unsigned,
 * forged (another key), expired, for another audience, replayed, and two
 * signature-wrapping shapes. Each answers to a real sign-in the edge
 * started (its RelayState and AuthnRequest ID), so only the crafted flaw
 * can be the reason; each is a 4xx with its code and a sentence, an audit
 * entry, and no user or sign-in. The genuine response (control) signs in.
 */
import assert from "node:assert/strict";
import { inflateRawSync } from "node:zlib";
import { setLogSinks } from "../../src/log.ts";
import { fixture } from "../http/helpers.ts";
import {
  assertionXml,
  b64,
  type CraftFields,
  craftId,
  defaultFields,
  responseXml,
  sign,
} from "./saml_craft.ts";
import { attacker, idpKey } from "./saml_fixture.ts";

setLogSinks([]);

const IDP_ENTITY = "https://idp.corp.example/saml";
const der = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, "");
const METADATA =
  `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${IDP_ENTITY}">` +
  `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
  `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${
    der(idpKey.certificate)
  }</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
  `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.corp.example/saml/sso"/>` +
  `</md:IDPSSODescriptor></md:EntityDescriptor>`;

const good = (f: CraftFields) => responseXml(f, sign(assertionXml(f), "Assertion", idpKey));
const evil = (f: CraftFields) =>
  assertionXml({ ...f, assertionId: craftId("evil"), nameId: "admin@corp.example" });

interface Row {
  what: string;
  build: (f: CraftFields) => string;
  code: string;
  /** Post the genuine response first, then this row's (a replay). */
  replay?: boolean;
}

const rows: Row[] = [
  { what: "genuine (control)", build: good, code: "" },
  { what: "unsigned", build: (f) => responseXml(f, assertionXml(f)), code: "saml_unsigned" },
  {
    what: "forged: signed by another key",
    build: (f) => responseXml(f, sign(assertionXml(f), "Assertion", attacker)),
    code: "saml_signature_invalid",
  },
  {
    what: "expired",
    build: (f) =>
      good({
        ...f,
        notOnOrAfter: f.issueInstant - 600_000,
        subjectNotOnOrAfter: f.issueInstant - 600_000,
      }),
    code: "saml_expired",
  },
  {
    what: "wrong audience",
    build: (f) => good({ ...f, audience: ["https://other-sp.example"] }),
    code: "saml_audience",
  },
  { what: "replayed", build: good, code: "saml_replayed", replay: true },
  {
    what: "wrapped: an unsigned assertion before the signed one",
    build: (f) => responseXml(f, evil(f) + sign(assertionXml(f), "Assertion", idpKey)),
    code: "saml_signature_invalid",
  },
  {
    what: "wrapped: the signed assertion inside an unsigned one",
    build: (f) =>
      responseXml(
        f,
        evil(f).replace(
          "</saml:Issuer>",
          `</saml:Issuer><saml:Advice>${sign(assertionXml(f), "Assertion", idpKey)}</saml:Advice>`,
        ),
      ),
    code: "saml_unsigned",
  },
];

Deno.test("saml at the edge ACS: unsigned, forged, expired, audience, replay, wrapping refused", async (t) => {
  const edge = await fixture({ clockStart: Date.now() });
  const p = await edge.adminReq("POST", "/api/v1/admin/identity-providers", {
    name: "Corp SAML",
    kind: "saml",
    domains: ["corp.example"],
    saml: { metadataXml: METADATA },
  });
  assert.equal(p.status, 201, await p.text());
  const acs = (SAMLResponse: string, RelayState: string) =>
    edge.app.request("/api/v1/signin/saml/acs", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ SAMLResponse, RelayState }),
    });
  for (const r of rows) {
    await t.step(r.what, async () => {
      const start = await edge.req(
        "GET",
        `/api/v1/signin/start?email=ana%40corp.example&return=${
          encodeURIComponent("http://127.0.0.1:9/done")
        }&state=client-state-0123456789`,
      );
      assert.equal(start.status, 302, await start.text());
      const to = new URL(start.headers.get("location")!);
      const request = inflateRawSync(Buffer.from(to.searchParams.get("SAMLRequest")!, "base64"))
        .toString();
      const requestId = /ID="([^"]+)"/.exec(request)![1];
      const relay = to.searchParams.get("RelayState")!;
      const fields = defaultFields({
        idpEntityId: IDP_ENTITY,
        spEntityId: "http://localhost/api/v1/signin/saml/metadata",
        acsUrl: "http://localhost/api/v1/signin/saml/acs",
        now: edge.clock.now(),
      }, requestId);
      if (r.replay) {
        const first = await acs(b64(good(fields)), relay);
        assert.equal(first.status, 303, await first.text());
      }
      const before = edge.store.tableCounts();
      const audits = edge.store.audit.count("signin.refused");
      const res = await acs(b64(r.build(fields)), relay);
      if (!r.code) {
        assert.equal(res.status, 303, await res.text());
        assert.match(res.headers.get("location")!, /grant=/);
        return;
      }
      const j = await res.json();
      assert.ok(
        res.status >= 400 && res.status < 500,
        `${r.what}: ${res.status} ${JSON.stringify(j)}`,
      );
      assert.equal(j.error.code, r.code, `${r.what}: ${j.error.message}`);
      assert.ok(j.error.message.length > 10);
      assert.equal(edge.store.audit.count("signin.refused"), audits + 1, "audited");
      const after = edge.store.tableCounts();
      assert.equal(after.user_signins, before.user_signins, "no sign-in");
      assert.equal(after.users, before.users, "no user");
    });
  }
});
