/**
 * Sign-in state survives an edge restart (a new edge app, and with it a new
 * sign-in service, over the same store — what a restarted process finds):
 * - SAML: a sign-in started before the restart finishes after it; the same
 *   assertion posted again after the restart is refused `saml_replayed`
 *   (with the in-memory cache it was gone, and the RelayState with it);
 * - OIDC against oidc-provider in Chromium: the user is at the IdP's login
 *   form while the edge restarts; the callback arrives at the new edge,
 *   which still has the state, nonce and PKCE verifier, and signs them in.
 */
import assert from "node:assert/strict";
import { inflateRawSync } from "node:zlib";
import { createEdgeApp } from "../../src/http/app_edge.ts";
import { setLogSinks } from "../../src/log.ts";
import { hasChromium, openBrowser } from "../e2e/browser.ts";
import { fixture, TEST_SCRYPT } from "../http/helpers.ts";
import { assertionXml, b64, defaultFields, responseXml, sign } from "./saml_craft.ts";
import { idpKey } from "./saml_fixture.ts";
import { nodeAvailable, OidcIdp } from "./oidc_idp.ts";

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

type Edge = Awaited<ReturnType<typeof fixture>>;
/** The same edge after a restart: a new app (new sign-in service) over the same store. */
const restarted = (edge: Edge) =>
  createEdgeApp({ ctx: edge.ctx, scrypt: TEST_SCRYPT, sseKeepaliveMs: 15_000 });

Deno.test("sign-in restart: a SAML sign-in in progress finishes, a replayed assertion stays refused", async () => {
  const edge = await fixture({ clockStart: Date.now() });
  const p = await edge.adminReq("POST", "/api/v1/admin/identity-providers", {
    name: "Corp SAML",
    kind: "saml",
    domains: ["corp.example"],
    saml: { metadataXml: METADATA },
  });
  assert.equal(p.status, 201, await p.text());
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
  const f = defaultFields({
    idpEntityId: IDP_ENTITY,
    spEntityId: "http://localhost/api/v1/signin/saml/metadata",
    acsUrl: "http://localhost/api/v1/signin/saml/acs",
    now: edge.clock.now(),
  }, requestId);
  const response = b64(responseXml(f, sign(assertionXml(f), "Assertion", idpKey)));
  const acs = (app: { request: typeof edge.app.request }) =>
    app.request("/api/v1/signin/saml/acs", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ SAMLResponse: response, RelayState: relay }),
    });

  // Restart between the redirect to the IdP and its answer: the sign-in finishes.
  const second = restarted(edge);
  const ok = await acs(second);
  assert.equal(ok.status, 303, await ok.text());
  assert.match(ok.headers.get("location")!, /grant=/);

  // Restart again: the captured assertion posted once more is still a replay.
  const third = restarted(edge);
  const audits = edge.store.audit.count("signin.refused");
  const signIns = edge.store.tableCounts().user_signins;
  const again = await acs(third);
  const j = await again.json();
  assert.equal(again.status, 403, JSON.stringify(j));
  assert.equal(j.error.code, "saml_replayed");
  assert.ok(j.error.message.length > 10);
  assert.equal(edge.store.audit.count("signin.refused"), audits + 1);
  assert.equal(edge.store.tableCounts().user_signins, signIns, "no sign-in");
  edge.store.close();
});

Deno.test({
  name: "sign-in restart: an OIDC sign-in at the IdP's form while the edge restarts still finishes",
  ignore: !hasChromium || !nodeAvailable(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const edge = await fixture({ clockStart: Date.now() });
    const sync = setInterval(() => edge.clock.setWall(Date.now()), 50);
    let app = edge.app;
    const edgeServer = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req, info) => app.fetch(req, { remoteAddr: info.remoteAddr }),
    );
    const E = `http://127.0.0.1:${edgeServer.addr.port}`;
    const back = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () =>
        new Response("<!doctype html><p id=done>signed in</p>", {
          headers: { "content-type": "text/html" },
        }),
    );
    try {
      const SECRET = "restart-client-secret-0123456789";
      await using idp = await OidcIdp.start({
        clients: [{
          client_id: "portcullis-edge",
          client_secret: SECRET,
          redirect_uris: [`${E}/api/v1/signin/oidc/callback`],
          grant_types: ["authorization_code"],
          response_types: ["code"],
        }],
      });
      const created = await edge.adminReq("POST", "/api/v1/admin/identity-providers", {
        name: "Corp",
        kind: "oidc",
        domains: ["corp.example"],
        oidc: { issuer: idp.issuer, clientId: "portcullis-edge", clientSecret: SECRET },
      });
      assert.equal(created.status, 201, await created.text());
      await using b = await openBrowser();
      const { page } = b;
      await page.goto(
        `${E}/api/v1/signin/start?email=ana%40corp.example&return=${
          encodeURIComponent(`http://127.0.0.1:${back.addr.port}/signin/done`)
        }&state=restart-state-0123456789`,
      );
      await page.waitForSelector("#login");
      // The PKCE verifier is in the store, sealed by the store's sealer (clear here: no key file).
      assert.equal(edge.store.signInState.count("oidc"), 1);
      app = restarted(edge);
      await page.fill("#login", "ana@corp.example");
      await page.fill("#password", "ana-password-1");
      await page.click("#submit");
      await page.waitForSelector("#done");
      const grant = new URL(page.url()).searchParams.get("grant")!;
      const r = await app.request("/api/v1/signin/redeem", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ grant }),
      });
      const j = await r.json();
      assert.equal(r.status, 200, JSON.stringify(j));
      assert.equal(j.user.username, "ana@corp.example");
      assert.equal(edge.store.signInState.count("oidc"), 0, "the state was used once");
    } finally {
      clearInterval(sync);
      await edgeServer.shutdown();
      await back.shutdown();
      edge.store.close();
    }
  },
});
