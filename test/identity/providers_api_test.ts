/**
 * The identity provider API: OIDC and SAML providers added, listed, changed
 * and deleted; routing by email domain with a default; the client secret
 * write-only and sealed at rest; SAML metadata imported from text and from a
 * URL (served by a real local HTTP server); every bad input a 4xx with a
 * code and a sentence that leaves every table as it was.
 */
import { testStore } from "../http/test_store.ts";
import assert from "node:assert/strict";
import { IdentityProviders } from "../../src/identity/providers.ts";
import { SecretBox } from "../../src/identity/secret_box.ts";
import { setLogSinks } from "../../src/log.ts";
import { ManualClock } from "../../src/clock.ts";
import { fixture } from "../http/helpers.ts";
import { idpKey } from "./saml_fixture.ts";

setLogSinks([]);

const SECRET = "oidc-client-secret-0123456789";
const der = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, "");
const METADATA =
  `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.corp.example/saml">` +
  `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
  `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${
    der(idpKey.certificate)
  }</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
  `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.corp.example/saml/sso"/>` +
  `</md:IDPSSODescriptor></md:EntityDescriptor>`;

const OIDC = {
  name: "Corp OIDC",
  kind: "oidc",
  domains: ["corp.example", "Corp-Two.example"],
  groupsClaim: "groups",
  oidc: { issuer: "https://login.corp.example/", clientId: "portcullis", clientSecret: SECRET },
};

Deno.test({
  name: "identity providers API: add, route by domain, change, delete; bad input refused",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const edge = await fixture();
    // A real HTTP server hands out the SAML metadata for the URL import.
    const ac = new AbortController();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
      (req) =>
        new URL(req.url).pathname === "/metadata.xml"
          ? new Response(METADATA, { headers: { "content-type": "application/xml" } })
          : new Response("gone", { status: 404 }),
    );
    const mdUrl = `http://127.0.0.1:${server.addr.port}/metadata.xml`;
    const post = (body: unknown) => edge.adminReq("POST", "/api/v1/admin/identity-providers", body);
    try {
      let oidcId = "";
      await t.step("an OIDC provider: created, secret never shown", async () => {
        const r = await post(OIDC);
        const j = await r.json();
        assert.equal(r.status, 201, JSON.stringify(j));
        assert.deepEqual(j.domains, ["corp-two.example", "corp.example"]);
        assert.equal(j.oidc.clientSecretSet, true);
        assert.ok(!JSON.stringify(j).includes(SECRET));
        oidcId = j.id;
        const list = await (await edge.adminReq("GET", "/api/v1/admin/identity-providers")).json();
        assert.equal(list.providers.length, 1);
        assert.ok(!JSON.stringify(list).includes(SECRET));
        assert.equal(edge.store.audit.count("identity_provider.create"), 1);
      });

      let samlId = "";
      await t.step("SAML providers from a URL and from text; one default", async () => {
        const r = await post({
          name: "Partner SAML",
          kind: "saml",
          domains: ["partner.example"],
          groupsClaim: "memberOf",
          groupMap: { "cn=eng,dc=partner": "engineering" },
          saml: { metadataUrl: mdUrl },
        });
        const j = await r.json();
        assert.equal(r.status, 201, JSON.stringify(j));
        assert.equal(j.saml.entityId, "https://idp.corp.example/saml");
        assert.equal(j.saml.ssoUrl, "https://idp.corp.example/saml/sso");
        assert.equal(j.saml.metadataUrl, mdUrl);
        samlId = j.id;
        const d = await post({
          name: "Default SAML",
          kind: "saml",
          isDefault: true,
          saml: { metadataXml: METADATA },
        });
        assert.equal(d.status, 201, await d.text());
      });

      await t.step("routing by the email's domain, else the default", () => {
        const idps = new IdentityProviders(edge.store, edge.clock);
        assert.equal(idps.forEmail("ana@corp.example")?.name, "Corp OIDC");
        assert.equal(idps.forEmail("Bob@CORP-TWO.example")?.name, "Corp OIDC");
        assert.equal(idps.forEmail("eve@partner.example")?.name, "Partner SAML");
        assert.equal(idps.forEmail("zoe@elsewhere.example")?.name, "Default SAML");
        assert.equal(idps.forEmail("no-domain")?.name, "Default SAML");
      });

      await t.step("bad input: 4xx, a code and a sentence, nothing written", async () => {
        const cases: [string, unknown, number, string, RegExp][] = [
          ["unknown field", { ...OIDC, name: "X", extra: 1 }, 400, "invalid_request", /extra/],
          ["bad name", { ...OIDC, name: "<script>" }, 400, "invalid_request", /name/],
          [
            "bad domain",
            { ...OIDC, name: "X", domains: ["not a domain"] },
            400,
            "invalid_identity_provider",
            /not a domain/,
          ],
          [
            "domain twice",
            { ...OIDC, name: "X", domains: ["a.example", "A.example"] },
            400,
            "invalid_identity_provider",
            /listed twice/,
          ],
          [
            "domain taken",
            { ...OIDC, name: "X", domains: ["partner.example"] },
            409,
            "domain_taken",
            /Partner SAML/,
          ],
          [
            "name taken",
            { ...OIDC, name: "corp oidc", domains: [] },
            409,
            "identity_provider_exists",
            /already exists/,
          ],
          [
            "http issuer",
            {
              ...OIDC,
              name: "X",
              domains: [],
              oidc: { ...OIDC.oidc, issuer: "http://idp.example" },
            },
            400,
            "invalid_identity_provider",
            /https/,
          ],
          [
            "no secret",
            {
              ...OIDC,
              name: "X",
              domains: [],
              oidc: { issuer: "https://i.example", clientId: "c" },
            },
            400,
            "invalid_identity_provider",
            /secret/,
          ],
          [
            "no oidc block",
            { name: "X", kind: "oidc" },
            400,
            "invalid_identity_provider",
            /issuer/,
          ],
          [
            "bad metadata",
            { name: "X", kind: "saml", saml: { metadataXml: "<nope" } },
            400,
            "saml_metadata_invalid",
            /metadata/,
          ],
          [
            "both metadata",
            { name: "X", kind: "saml", saml: { metadataXml: METADATA, metadataUrl: mdUrl } },
            400,
            "invalid_identity_provider",
            /either/,
          ],
          [
            "metadata 404",
            { name: "X", kind: "saml", saml: { metadataUrl: mdUrl + ".gone" } },
            502,
            "metadata_fetch_failed",
            /404/,
          ],
          [
            "bad group map",
            { ...OIDC, name: "X", domains: [], groupMap: { a: "has space" } },
            400,
            "invalid_identity_provider",
            /has space/,
          ],
          [
            "bad claim",
            { ...OIDC, name: "X", domains: [], groupsClaim: "a b" },
            400,
            "invalid_request",
            /groupsClaim/,
          ],
          ["not json", "{", 400, "malformed_json", /JSON/],
        ];
        for (const [what, body, status, code, msg] of cases) {
          const before = edge.store.tableCounts();
          const r = await post(body);
          const j = await r.json();
          assert.equal(r.status, status, `${what}: ${JSON.stringify(j)}`);
          assert.equal(j.error.code, code, what);
          assert.match(j.error.message, msg, what);
          assert.deepEqual(edge.store.tableCounts(), before, `${what}: nothing written`);
        }
      });

      await t.step("change keeps the secret; the default moves; delete", async () => {
        const r = await edge.adminReq("PATCH", `/api/v1/admin/identity-providers/${oidcId}`, {
          isDefault: true,
          domains: ["corp.example"],
          oidc: { issuer: "https://login2.corp.example/", clientId: "portcullis" },
        });
        const j = await r.json();
        assert.equal(r.status, 200, JSON.stringify(j));
        assert.equal(j.oidc.issuer, "https://login2.corp.example/");
        assert.equal(edge.store.identityProviders.get(oidcId)?.oidc?.clientSecret, SECRET);
        const list = (await (await edge.adminReq("GET", "/api/v1/admin/identity-providers")).json())
          .providers;
        assert.deepEqual(
          list.filter((p: { isDefault: boolean }) => p.isDefault).map((p: { name: string }) =>
            p.name
          ),
          ["Corp OIDC"],
        );
        const wrongKind = await edge.adminReq(
          "PATCH",
          `/api/v1/admin/identity-providers/${samlId}`,
          {
            oidc: { issuer: "https://x.example", clientId: "c" },
          },
        );
        assert.equal(wrongKind.status, 400);
        const del = await edge.adminReq("DELETE", `/api/v1/admin/identity-providers/${samlId}`);
        assert.equal(del.status, 200);
        const gone = await edge.adminReq("GET", `/api/v1/admin/identity-providers/${samlId}`);
        assert.equal(gone.status, 404);
        assert.equal((await gone.json()).error.code, "identity_provider_not_found");
        assert.equal(edge.store.identityProviders.domainOwner("partner.example"), undefined);
      });
    } finally {
      ac.abort();
      await server.finished;
    }
  },
});

Deno.test("identity providers: the OIDC client secret is sealed at rest", async () => {
  const box = new SecretBox(crypto.getRandomValues(new Uint8Array(32)));
  const store = await testStore({ sealer: box });
  const idps = new IdentityProviders(store, new ManualClock(0));
  const p = await idps.create({
    name: "Sealed",
    kind: "oidc",
    domains: [],
    isDefault: false,
    groupsClaim: "groups",
    groupMap: {},
    oidc: { issuer: "https://i.example", clientId: "c", clientSecret: SECRET },
  }, "test");
  const raw = store.db.get<{ s: string }>(
    "SELECT oidc_client_secret AS s FROM identity_providers WHERE id = ?",
    p.id,
  )!.s;
  assert.ok(!raw.includes(SECRET), "stored sealed");
  assert.equal(idps.record(p.id).oidc?.clientSecret, SECRET, "opened on read");
  store.close();
});
