/**
 * The SAML service provider against a real IdP: simplesamlphp under `php -S`
 * (one process for the whole file), signing with its own key. A sign-in
 * round trip over HTTP (our AuthnRequest redirect → its login form → its
 * signed response → our validator), then its genuine signed output tampered
 * with: altered, stripped, wrapped, replayed, sent to another SP, checked
 * against the wrong key, on a clock 6 minutes off.
 */
import assert from "node:assert/strict";
import { type Clock, ManualClock, systemClock } from "../../src/clock.ts";
import {
  MemoryReplayCache,
  MemoryRequestStore,
  NAMEID_EMAIL,
  parseIdpMetadata,
  SamlError,
  type SamlErrorCode,
  type SamlIdpConfig,
  SamlServiceProvider,
  type SamlSpConfig,
  spMetadataXml,
} from "../../src/identity/saml.ts";
import { b64, unb64 } from "./saml_craft.ts";
import { SAML_IDP_ATTRIBUTES, SAML_USERS, simpleSamlAvailable, SimpleSamlIdp } from "./saml_idp.ts";

const available = simpleSamlAvailable();
const [ana, bob] = SAML_USERS;

const SP: SamlSpConfig = {
  entityId: "https://edge.corp.example/saml/sp",
  acsUrl: "https://edge.corp.example/saml/acs",
  groupAttribute: SAML_IDP_ATTRIBUTES.groups,
  emailAttribute: SAML_IDP_ATTRIBUTES.email,
  displayNameAttribute: SAML_IDP_ATTRIBUTES.displayName,
  wantAssertionsSigned: true,
  nameIdFormat: NAMEID_EMAIL,
};
const OTHER_SP: SamlSpConfig = {
  ...SP,
  entityId: "https://other.corp.example/sp",
  acsUrl: "https://other.corp.example/acs",
};

function provider(
  idp: SamlIdpConfig,
  sp: SamlSpConfig = SP,
  clock: Clock = systemClock,
): SamlServiceProvider {
  return new SamlServiceProvider(sp, idp, {
    replay: new MemoryReplayCache(clock),
    requests: new MemoryRequestStore(clock),
    clock,
  });
}

async function expectCode(
  p: Promise<unknown>,
  code: SamlErrorCode,
  what: string,
): Promise<SamlError> {
  const e = await p.then(() => null, (e) => e);
  assert.ok(e instanceof SamlError, `${what}: expected ${code}, got ${e}`);
  assert.equal(e.code, code, `${what}: ${e.message}`);
  return e;
}

Deno.test({
  name: "saml: simplesamlphp round trip, then its genuine signed output tampered with",
  ignore: !available,
  async fn(t) {
    await using idp = await SimpleSamlIdp.start({
      spMetadata: [spMetadataXml(SP)],
      rotation: true,
    });
    await idp.trustSp(spMetadataXml(OTHER_SP)); // added while running
    const idpConfig = parseIdpMetadata(await idp.metadataXml());

    await t.step("metadata import: entity ID, redirect SSO URL, both rotation certificates", () => {
      assert.equal(idpConfig.entityId, idp.entityId);
      assert.equal(idpConfig.ssoUrl, `${idp.baseUrl}/saml2/idp/SSOService.php`);
      assert.equal(idpConfig.certificates.length, 2);
      const pems = idpConfig.certificates.map((c) => c.replace(/\s/g, ""));
      assert.ok(pems.includes(idp.certificate.replace(/\s/g, "")));
      assert.ok(pems.includes(idp.nextCertificate!.replace(/\s/g, "")));
    });

    const sp = provider(idpConfig);
    const login = await sp.loginUrl("console-42");
    const post = await idp.signIn(login.url, ana.username, ana.password);
    const genuine = unb64(post.SAMLResponse);

    await t.step("sign-in: identity, groups from the IdP attribute, RelayState back", async () => {
      assert.equal(post.acsUrl, SP.acsUrl, "the IdP posts to our ACS URL from our metadata");
      const id = await sp.validatePostResponse(post);
      assert.equal(id.issuer, idp.entityId);
      assert.equal(id.nameId, ana.email);
      assert.equal(id.nameIdFormat, NAMEID_EMAIL);
      assert.equal(id.email, ana.email);
      assert.equal(id.displayName, ana.displayName);
      assert.deepEqual(id.groups, ["engineering", "staff"]);
      assert.equal(id.requestId, login.requestId);
      assert.equal(id.relayState, "console-42");
      assert.ok(id.sessionIndex);
      assert.ok(id.notOnOrAfter! > Date.now());
    });

    await t.step("replay: the same genuine response posted again", async () => {
      await expectCode(sp.validatePostResponse(post), "saml_replayed", "second post");
    });

    await t.step(
      "another user gets their own groups; a wrong password gets no response",
      async () => {
        const l = await sp.loginUrl("");
        const id = await sp.validatePostResponse(
          await idp.signIn(l.url, bob.username, bob.password),
        );
        assert.equal(id.email, bob.email);
        assert.deepEqual(id.groups, ["sales"]);
        await assert.rejects(
          idp.signIn((await sp.loginUrl("")).url, ana.username, "wrong"),
          /incorrect username or password/,
        );
      },
    );

    // Each tampered copy goes to a fresh SP whose request store holds the
    // genuine request ID, so only the tampering can be the reason.
    const fresh = (idpCfg: SamlIdpConfig = idpConfig, spCfg: SamlSpConfig = SP) => {
      const p = provider(idpCfg, spCfg);
      return {
        p,
        post: (xml: string) =>
          p.validatePostResponse({ SAMLResponse: b64(xml), RelayState: post.RelayState }),
      };
    };
    const table: [string, SamlErrorCode, (xml: string) => string][] = [
      [
        "a group added to the signed assertion",
        "saml_signature_invalid",
        (x) =>
          x.replace(
            ">staff</saml:AttributeValue>",
            ">staff</saml:AttributeValue><saml:AttributeValue>admins</saml:AttributeValue>",
          ),
      ],
      [
        "the NameID changed",
        "saml_signature_invalid",
        (x) => x.replace(`>${ana.email}</saml:NameID>`, ">root@corp.example</saml:NameID>"),
      ],
      [
        "both signatures stripped",
        "saml_unsigned",
        (x) => x.replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/g, ""),
      ],
      [
        "a second, unsigned copy of the assertion with another user",
        "saml_signature_invalid",
        (x) => {
          const a = x.slice(x.indexOf("<saml:Assertion"), x.indexOf("</saml:Assertion>") + 17);
          const evil = a.replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/, "").replace(
            / ID="[^"]+"/,
            ' ID="_evil"',
          )
            .replaceAll(ana.email, "root@corp.example");
          return x.replace("</samlp:Response>", `${evil}</samlp:Response>`);
        },
      ],
      ["the signed assertion wrapped inside an unsigned one", "saml_unsigned", (x) => {
        const a = x.slice(x.indexOf("<saml:Assertion"), x.indexOf("</saml:Assertion>") + 17);
        const evil = a.replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/, "").replace(
          / ID="[^"]+"/,
          ' ID="_evil"',
        )
          .replace("</saml:Issuer>", `</saml:Issuer><saml:Advice>${a}</saml:Advice>`);
        return x.replace(a, evil);
      }],
    ];
    await t.step("tampered genuine responses are refused with their codes", async () => {
      for (const [what, code, edit] of table) {
        const f = fresh();
        await f.p.loginUrl("x"); // an unrelated request, so the store is not empty
        const edited = edit(genuine);
        assert.notEqual(edited, genuine, `${what}: the edit applied`);
        await expectCode(f.post(edited), code, what);
      }
    });

    await t.step("verified against the wrong key: a forgery as far as the SP knows", async () => {
      const onlyNext = fresh({ ...idpConfig, certificates: [idp.nextCertificate!] });
      await expectCode(
        onlyNext.post(genuine),
        "saml_signature_invalid",
        "only the unused rotation key trusted",
      );
    });

    await t.step("a genuine response for one SP is refused by another", async () => {
      const other = fresh(idpConfig, OTHER_SP);
      await expectCode(
        other.post(genuine),
        "saml_recipient",
        "other SP (Destination names the first ACS URL)",
      );
      const otherDest = fresh(idpConfig, { ...OTHER_SP, acsUrl: SP.acsUrl });
      await expectCode(
        otherDest.post(genuine),
        "saml_audience",
        "other SP entity ID, same ACS URL",
      );
    });

    await t.step(
      "the SP added while running signs in; the first SP refuses its response",
      async () => {
        const other = provider(idpConfig, OTHER_SP);
        const l = await other.loginUrl("");
        const body = await idp.signIn(l.url, bob.username, bob.password);
        assert.equal(body.acsUrl, OTHER_SP.acsUrl);
        const first = provider(idpConfig);
        await expectCode(first.validatePostResponse(body), "saml_recipient", "first SP");
        assert.deepEqual((await other.validatePostResponse(body)).groups, ["sales"]);
      },
    );

    await t.step(
      "a clock 6 min behind is told by how much; right again, sign-in works",
      async () => {
        const clock = new ManualClock(Date.now() - 6 * 60_000 - 10_000);
        const skewed = provider(idpConfig, SP, clock);
        const l = await skewed.loginUrl("");
        const body = await idp.signIn(l.url, ana.username, ana.password);
        const e = await expectCode(
          skewed.validatePostResponse(body),
          "saml_not_yet_valid",
          "6 min behind",
        );
        assert.match(e.message, /6 min \d+ s ahead of this server's clock/);
        clock.setWall(Date.now());
        const id = await skewed.validatePostResponse(body);
        assert.deepEqual(id.groups, ["engineering", "staff"]);
      },
    );
  },
});
