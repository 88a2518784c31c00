/**
 * SAML sign-in on the edge through Debian's simplesamlphp (php -S on
 * loopback, its own signing key): the edge serves its SP metadata, which
 * the IdP trusts; a SAML provider is added from the IdP's metadata URL with
 * a group mapping; the edge's start URL redirects (HTTP-Redirect binding)
 * to the IdP, the IdP's form posts the signed response to the edge's ACS
 * (HTTP-POST binding), and the user comes back to the loopback return
 * address with a grant whose sign-in carries the mapped groups. The same
 * genuine response posted again, and one with a forged signature, are
 * refused with their codes, audited, and sign nobody in.
 */
import assert from "node:assert/strict";
import { setLogSinks } from "../../src/log.ts";
import { fixture } from "../http/helpers.ts";
import { simpleSamlAvailable, SimpleSamlIdp } from "./saml_idp.ts";

setLogSinks([]);

Deno.test({
  name:
    "saml sign-in: simplesamlphp → edge ACS → grant with mapped groups; replay and forgery refused",
  ignore: !simpleSamlAvailable(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const edge = await fixture({ clockStart: Date.now() });
    const clockSync = setInterval(() => edge.clock.setWall(Date.now()), 100);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req, info) => edge.app.fetch(req, { remoteAddr: info.remoteAddr }),
    );
    const E = `http://127.0.0.1:${server.addr.port}`;
    const RETURN = "http://127.0.0.1:9/signin/done";
    try {
      const md = await fetch(`${E}/api/v1/signin/saml/metadata`);
      assert.equal(md.status, 200);
      const spMetadata = await md.text();
      assert.match(spMetadata, /AssertionConsumerService/);
      assert.match(spMetadata, /WantAssertionsSigned="true"/);
      await using idp = await SimpleSamlIdp.start({ spMetadata: [spMetadata] });
      const created = await edge.adminReq("POST", "/api/v1/admin/identity-providers", {
        name: "Corp SAML",
        kind: "saml",
        domains: ["corp.example"],
        groupsClaim: "groups",
        groupMap: { engineering: "eng-team" },
        saml: { metadataUrl: idp.metadataUrl },
      });
      assert.equal(created.status, 201, await created.text());

      const start = async (email: string) => {
        const r = await fetch(
          `${E}/api/v1/signin/start?email=${encodeURIComponent(email)}&return=${
            encodeURIComponent(RETURN)
          }&state=saml-state-0123456789`,
          { redirect: "manual" },
        );
        assert.equal(r.status, 302, await r.text());
        const to = r.headers.get("location")!;
        assert.ok(to.startsWith(`${idp.baseUrl}/saml2/idp/SSOService.php?SAMLRequest=`), to);
        return to;
      };
      const postAcs = (fields: Record<string, string>) =>
        fetch(`${E}/api/v1/signin/saml/acs`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(fields),
          redirect: "manual",
        });

      let genuine: Record<string, string> = {};
      await t.step("sign-in: groups from the IdP attribute, mapped", async () => {
        const post = await idp.signIn(
          await start("ana@corp.example"),
          "ana@corp.example",
          "ana-Password-1",
        );
        assert.equal(post.acsUrl, `${E}/api/v1/signin/saml/acs`);
        genuine = { SAMLResponse: post.SAMLResponse, RelayState: post.RelayState ?? "" };
        const r = await postAcs(genuine);
        assert.equal(r.status, 303, await r.text());
        const back = new URL(r.headers.get("location")!);
        assert.equal(back.origin + back.pathname, RETURN);
        assert.equal(back.searchParams.get("state"), "saml-state-0123456789");
        const red = await edge.req("POST", "/api/v1/signin/redeem", {
          grant: back.searchParams.get("grant"),
        });
        const j = await red.json();
        assert.equal(red.status, 200, JSON.stringify(j));
        assert.equal(j.user.username, "ana@corp.example");
        assert.equal(j.user.provider, "Corp SAML");
        assert.deepEqual(j.user.groups, [
          { name: "eng-team", source: "idp" },
          { name: "staff", source: "idp" },
        ]);
      });

      const refused = async (what: string, fields: Record<string, string>, code: string) => {
        const signIns = edge.store.tableCounts().user_signins;
        const audits = edge.store.audit.count("signin.refused");
        const r = await postAcs(fields);
        const j = await r.json();
        assert.ok(r.status >= 400 && r.status < 500, `${what}: ${r.status} ${JSON.stringify(j)}`);
        assert.equal(j.error.code, code, `${what}: ${j.error.message}`);
        assert.ok(j.error.message.length > 10, what);
        assert.equal(edge.store.audit.count("signin.refused"), audits + 1, `${what}: audited`);
        assert.equal(edge.store.tableCounts().user_signins, signIns, `${what}: no sign-in`);
      };

      await t.step("the same genuine response again: replay refused", async () => {
        await refused("replay", genuine, "saml_replayed");
      });

      await t.step("a forged signature: refused", async () => {
        const post = await idp.signIn(
          await start("bob@corp.example"),
          "bob@corp.example",
          "bob-Password-1",
        );
        const xml = atob(post.SAMLResponse);
        const forged = xml.replace(
          /<ds:SignatureValue>([A-Za-z0-9+/])/,
          (_m, c: string) => `<ds:SignatureValue>${c === "A" ? "B" : "A"}`,
        );
        assert.notEqual(forged, xml);
        await refused("forged", {
          SAMLResponse: btoa(forged),
          RelayState: post.RelayState ?? "",
        }, "saml_signature_invalid");
        await refused("unknown relay state", {
          SAMLResponse: post.SAMLResponse,
          RelayState: "x".repeat(30),
        }, "saml_relay_state_unknown");
        await refused("garbage", {
          SAMLResponse: "%%%not base64",
          RelayState: post.RelayState ?? "",
        }, "saml_malformed");
      });
    } finally {
      clearInterval(clockSync);
      await server.shutdown();
    }
  },
});
