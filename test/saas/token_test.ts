/**
 * MsalTokenSource (@azure/msal-node) against oauth2-mock-server with
 * Entra's paths: roles read from the token, a secret the issuer rejects,
 * an application the directory does not know, an API refused alone, a
 * certificate client assertion (verified by the issuer against the
 * certificate), the wrong certificate, and an issuer that is not there.
 */
import assert from "node:assert/strict";
import { MsalTokenSource, TokenError } from "../../src/saas/mod.ts";
import { setLogSinks } from "../../src/log.ts";
import { sharePointKeyFile, startIssuer, trustingFetch } from "./issuer.ts";
import { parseSharePointKey } from "../../src/saas/sharepoint_key.ts";

setLogSinks([]);

const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const GRAPH = "https://graph.microsoft.com/.default";
const MGMT = "https://manage.office.com/.default";

Deno.test("saas tokens: client credentials through MSAL against a local Entra-shaped issuer", async (t) => {
  const issuer = await startIssuer(TENANT);
  const trust = trustingFetch(issuer.tls);
  const tokens = new MsalTokenSource({ authorityUrl: issuer.url, fetch: trust.fetch });
  const key = await sharePointKeyFile();
  const other = await sharePointKeyFile("someone-else");
  const cert = parseSharePointKey(key.json);
  const wrongCert = parseSharePointKey(other.json);
  issuer.apps.set("11111111-1111-1111-1111-111111111111", {
    secret: "s3cret~value.1234567890abcdefghijklmnop",
    certificatePem: key.certPem,
    grants: { [GRAPH]: ["Files.ReadWrite.All", "Sites.ReadWrite.All"], [MGMT]: "refuse" },
  });
  const base = { tenantId: TENANT, clientId: "11111111-1111-1111-1111-111111111111" };
  try {
    await t.step("a secret the issuer accepts gives the granted roles", async () => {
      const tok = await tokens.acquire({
        ...base,
        credential: { kind: "secret", secret: "s3cret~value.1234567890abcdefghijklmnop" },
        scope: GRAPH,
      });
      assert.deepEqual(tok.roles.sort(), ["Files.ReadWrite.All", "Sites.ReadWrite.All"]);
      assert.equal(tok.scopes, null);
      assert.ok(tok.expiresAt && tok.expiresAt > Date.now());
      assert.equal(issuer.seen.at(-1)?.auth, "secret");
    });

    await t.step("a wrong secret is refused as credentials (invalid_client)", async () => {
      const e = await tokens.acquire({
        ...base,
        credential: { kind: "secret", secret: "wrong-secret-value-0000000000000000000" },
        scope: GRAPH,
      }).catch((e) => e);
      assert.ok(e instanceof TokenError, String(e));
      assert.equal(e.failure, "credentials");
      assert.equal(e.issuerCode, "invalid_client");
      assert.equal(e.status, 400);
      assert.match(e.message, /AADSTS7000215/);
      assert.doesNotMatch(e.message, /wrong-secret-value/);
    });

    await t.step("an application the directory lacks is refused as credentials", async () => {
      const e = await tokens.acquire({
        tenantId: TENANT,
        clientId: "99999999-9999-9999-9999-999999999999",
        credential: { kind: "secret", secret: "whatever-0000" },
        scope: GRAPH,
      }).catch((e) => e);
      assert.ok(e instanceof TokenError);
      assert.equal(e.failure, "credentials");
      assert.match(e.message, /AADSTS700016/);
    });

    await t.step("an API the app cannot get is refused alone (resource)", async () => {
      const e = await tokens.acquire({
        ...base,
        credential: { kind: "secret", secret: "s3cret~value.1234567890abcdefghijklmnop" },
        scope: MGMT,
      }).catch((e) => e);
      assert.ok(e instanceof TokenError);
      assert.equal(e.failure, "resource");
      assert.match(e.message, /AADSTS500011/);
    });

    await t.step("a certificate assertion the issuer verifies gives a token", async () => {
      const tok = await tokens.acquire({
        ...base,
        credential: {
          kind: "certificate",
          privateKeyPem: cert.privateKeyPem,
          certificatePem: cert.certificatePem,
          thumbprintSha256: cert.thumbprintSha256,
        },
        scope: GRAPH,
      });
      assert.ok(tok.roles.includes("Files.ReadWrite.All"));
      assert.equal(issuer.seen.at(-1)?.auth, "assertion");
      assert.equal(issuer.seen.at(-1)?.outcome, "issued");
    });

    await t.step("an assertion signed by another key is refused", async () => {
      const e = await tokens.acquire({
        ...base,
        credential: {
          kind: "certificate",
          privateKeyPem: wrongCert.privateKeyPem,
          certificatePem: wrongCert.certificatePem,
          thumbprintSha256: wrongCert.thumbprintSha256,
        },
        scope: GRAPH,
      }).catch((e) => e);
      assert.ok(e instanceof TokenError);
      assert.equal(e.failure, "credentials");
      assert.match(e.message, /AADSTS700027/);
    });

    await t.step("an issuer that does not answer is unreachable (502), not a refusal", async () => {
      const port = (() => {
        const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const p = (l.addr as Deno.NetAddr).port;
        l.close();
        return p;
      })();
      const gone = new MsalTokenSource({
        authorityUrl: `https://127.0.0.1:${port}`,
        fetch: trust.fetch,
        timeoutMs: 2000,
      });
      const e = await gone.acquire({
        ...base,
        credential: { kind: "secret", secret: "s3cret" },
        scope: GRAPH,
      }).catch((e) => e);
      assert.ok(e instanceof TokenError, String(e));
      assert.equal(e.failure, "unreachable");
      assert.equal(e.status, 502);
    });
  } finally {
    trust.close();
    await issuer.stop();
  }
});
