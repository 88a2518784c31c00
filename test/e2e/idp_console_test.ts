/**
 * The "Identity providers" console page in headless Chromium against the
 * edge app: log in; add an OIDC provider (domains, default, secret) and a
 * SAML provider from its metadata with a group mapping; a domain another
 * provider claims is refused on the page with the form kept; delete; the
 * page in German and French. No page ever holds the client secret.
 * Screenshots go to test/output/screenshots/idp-*.png.
 */
import assert from "node:assert/strict";
import { totpAt } from "../../src/identity/totp.ts";
import { createEdgeConsole } from "../../src/http/console/edge_console.tsx";
import { setLogSinks } from "../../src/log.ts";
import { fixture } from "../http/helpers.ts";
import { idpKey } from "../identity/saml_fixture.ts";
import { hasChromium, openBrowser } from "./browser.ts";

setLogSinks([]);

const der = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, "");
const METADATA =
  `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.partner.example/saml">` +
  `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
  `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${
    der(idpKey.certificate)
  }</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
  `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.partner.example/saml/sso"/>` +
  `</md:IDPSSODescriptor></md:EntityDescriptor>`;

Deno.test({
  name: "idp console e2e: add OIDC and SAML providers, refusal, delete, three languages",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const edge = await fixture();
    const ui = createEdgeConsole({ api: edge.app, notifier: edge.notifier, clock: edge.clock });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req, info) => ui.fetch(req, { remoteAddr: info.remoteAddr }),
    );
    const E = `http://127.0.0.1:${server.addr.port}`;
    const SECRET = "Console-OIDC-secret-0123456789";
    const html: string[] = [];
    try {
      await using b = await openBrowser();
      const { page } = b;
      const shot = async (name: string) => {
        html.push(await page.content());
        await b.shot(`idp-${name}`);
      };
      await page.goto(`${E}/idps`);
      await page.fill("#username", "root");
      await page.fill("#password", "correct horse battery");
      await page.fill("#totp", totpAt(edge.admin.totpSecret, edge.clock.now()));
      await page.click("#login-submit");
      await page.waitForSelector("#idp-table");
      assert.match(await page.textContent("#idp-table") ?? "", /No identity providers yet/);
      await shot("empty");

      // OIDC, the default for every other domain.
      await page.selectOption("#idp-kind", "oidc");
      await page.fill("#idp-name", "Corp OIDC");
      await page.fill("#idp-domains", "corp.example, Corp.example.org");
      await page.check("#idp-default");
      await page.fill("#idp-claim", "groups");
      await page.fill("#idp-issuer", "https://login.corp.example/");
      await page.fill("#idp-client-id", "portcullis-edge");
      await page.fill("#idp-secret", SECRET);
      await Promise.all([page.waitForURL(/msg=added/), page.click("#idp-submit")]);
      const row = await page.textContent("#idp-table") ?? "";
      assert.match(row, /Corp OIDC/);
      assert.match(row, /default/);
      assert.match(row, /corp\.example, corp\.example\.org/);
      assert.match(row, /https:\/\/login\.corp\.example\//);

      // SAML from its metadata, with a group mapping.
      await page.goto(`${E}/idps`);
      await page.selectOption("#idp-kind", "saml");
      await page.fill("#idp-name", "Partner SAML");
      await page.fill("#idp-domains", "partner.example");
      await page.fill("#idp-claim", "memberOf");
      await page.fill("#idp-map", "cn=eng,dc=partner = engineering\nstaff = everyone");
      await page.fill("#idp-md-xml", METADATA);
      await Promise.all([page.waitForURL(/msg=added/), page.click("#idp-submit")]);
      const table = await page.textContent("#idp-table") ?? "";
      assert.match(table, /Partner SAML/);
      assert.match(table, /https:\/\/idp\.partner\.example\/saml/);
      assert.match(table, /cn=eng,dc=partner → engineering/);
      await shot("two");
      const saml = edge.store.identityProviders.byName("Partner SAML")!;
      assert.deepEqual(saml.groupMap, { "cn=eng,dc=partner": "engineering", staff: "everyone" });

      // A domain another provider claims: refused on the page, the form kept.
      await page.selectOption("#idp-kind", "oidc");
      await page.fill("#idp-name", "Thief");
      await page.fill("#idp-domains", "partner.example");
      await page.fill("#idp-issuer", "https://thief.example/");
      await page.fill("#idp-client-id", "x");
      await page.fill("#idp-secret", "y");
      await page.click("#idp-submit");
      await page.waitForSelector(".flash");
      assert.match(
        await page.textContent("main") ?? "",
        /Domain "partner\.example" already belongs to the identity provider "Partner SAML"/,
      );
      assert.equal(await page.inputValue("#idp-name"), "Thief");
      assert.equal(edge.store.identityProviders.count(), 2);
      await shot("refused");

      // Delete.
      await page.goto(`${E}/idps`);
      await Promise.all([
        page.waitForURL(/msg=deleted/),
        page.click(`#idp-${saml.id} button`),
      ]);
      assert.doesNotMatch(await page.textContent("#idp-table") ?? "", /Partner SAML/);
      assert.equal(edge.store.identityProviders.count(), 1);

      // A user key: devices enrolled with it need a signed-in user.
      await page.goto(`${E}/keys`);
      await page.check("#user-key");
      await page.click("#key-create");
      await page.waitForSelector("#created-key");
      const keys = edge.store.enrollmentKeys.list();
      assert.equal(keys.length, 1);
      assert.equal(keys[0].machine, false);
      assert.match(await page.textContent("#keys-table") ?? "", /user sign-in/);
      await shot("user-key");

      for (
        const [lang, title] of [["de", /Identitätsanbieter/], [
          "fr",
          /Fournisseurs d’identité/,
        ]] as const
      ) {
        await page.goto(`${E}/lang?lang=${lang}&next=%2Fidps`);
        assert.match(await page.textContent("main") ?? "", title);
        await shot(lang);
      }
      for (const h of html) assert.ok(!h.includes(SECRET), "no page holds the client secret");
    } finally {
      await server.shutdown();
    }
  },
});
