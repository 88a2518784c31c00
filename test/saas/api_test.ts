/**
 * The SaaS tenant API's refusals and the admin-consent round trip, against
 * the local issuer: each bad input is a 4xx with a code and a sentence and
 * leaves every table as it was (`tableCounts`); the consent redirect is
 * accepted once for a state this edge issued, and refused for a foreign,
 * replayed or expired one; the secret is write-only; expiry flags.
 */
import assert from "node:assert/strict";
import { setLogSinks } from "../../src/log.ts";
import { fixture } from "../http/helpers.ts";
import { SCOPES, TENANT } from "./harness.ts";
import { sharePointKeyFile, startIssuer, trustingFetch } from "./issuer.ts";

setLogSinks([]);

const CLIENT = "0e0e0e0e-1111-2222-3333-444444444444";
const SECRET = "Exch~secret.value_0123456789abcdefghijkl";
const EXCHANGE = [
  "Mail.ReadWrite",
  "MailboxSettings.Read",
  "Directory.Read.All",
  "User.Read.All",
  "Mail.Send",
  "Organization.Read.All",
  "AuditLog.Read.All",
  "Member.Read.Hidden",
  "Reports.Read.All",
];

Deno.test({
  name: "saas API: bad input refused with nothing saved; consent round trip; write-only secret",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const issuer = await startIssuer(TENANT);
    const trust = trustingFetch(issuer.tls);
    const edge = await fixture({
      saas: {
        authorityUrl: issuer.url,
        graphUrl: "https://graph.invalid/v1.0",
        fetch: trust.fetch,
      },
    });
    issuer.apps.set(CLIENT, { secret: SECRET, grants: { [SCOPES.graph]: EXCHANGE } });
    const key = await sharePointKeyFile();
    const other = await sharePointKeyFile("other");
    const base = {
      app: "exchange",
      name: "Contoso Exchange",
      tenantId: TENANT,
      clientId: CLIENT,
      clientSecret: SECRET,
    };
    const post = (body: unknown) => edge.adminReq("POST", "/api/v1/admin/saas/tenants", body);
    const refused = async (
      what: string,
      res: Promise<Response>,
      status: number,
      code: string,
      message: RegExp,
    ) => {
      const before = edge.store.tableCounts();
      const seen = issuer.seen.length;
      const r = await res;
      const j = await r.json();
      assert.equal(r.status, status, `${what}: ${JSON.stringify(j)}`);
      assert.equal(j.error.code, code, what);
      assert.match(j.error.message, message, what);
      assert.ok(!JSON.stringify(j).includes(SECRET), `${what}: the secret is not repeated`);
      const after = edge.store.tableCounts();
      assert.deepEqual(
        { ...after, audit_log: 0, notifications: 0 },
        { ...before, audit_log: 0, notifications: 0 },
        `${what}: nothing half-saved`,
      );
      return { j, asked: issuer.seen.length - seen };
    };
    try {
      await t.step("refusals", async () => {
        let out = await refused(
          "tenant ID not a GUID",
          post({ ...base, tenantId: "contoso.onmicrosoft.com" }),
          400,
          "invalid_request",
          /tenantId: expected a GUID/,
        );
        assert.equal(out.asked, 0, "the issuer is not asked");
        await refused(
          "client ID not a GUID",
          post({ ...base, clientId: "abc" }),
          400,
          "invalid_request",
          /clientId/,
        );
        await refused(
          "unknown app",
          post({ ...base, app: "dropbox" }),
          400,
          "invalid_request",
          /app/,
        );
        await refused(
          "unknown field",
          post({ ...base, password: "x" }),
          400,
          "invalid_request",
          /unknown field "password"/,
        );
        await refused("empty name", post({ ...base, name: " " }), 400, "invalid_request", /name/);
        await refused(
          "control characters in the secret",
          post({ ...base, clientSecret: "a\nb" }),
          400,
          "invalid_request",
          /clientSecret: expected 1-1024 printable ASCII/,
        );
        await refused(
          "malformed JSON",
          edge.adminReq("POST", "/api/v1/admin/saas/tenants", "{nope"),
          400,
          "malformed_json",
          /not valid JSON/,
        );
        out = await refused(
          "a secret the issuer rejects",
          post({ ...base, clientSecret: "wrong~secret.value_0000000000000000000" }),
          400,
          "client_credentials_rejected",
          /^Cannot authorize SaaS tenant "Contoso Exchange": the identity platform refused its client secret for Microsoft Graph \(invalid_client: AADSTS7000215: Invalid client secret provided\./,
        );
        assert.equal(out.asked, 1);
        assert.ok(!JSON.stringify(out.j).includes("wrong~secret"));
        await refused(
          "an application the directory lacks",
          post({ ...base, clientId: "12345678-1234-1234-1234-123456789012" }),
          400,
          "client_credentials_rejected",
          /AADSTS700016/,
        );
        await refused(
          "a SharePoint key that does not match its certificate",
          post({
            ...base,
            app: "sharepoint",
            privateKeyJson: JSON.stringify({ private_key: other.keyPem, public_cert: key.certPem }),
          }),
          400,
          "sharepoint_key_invalid",
          /private key does not belong to the certificate/,
        );
        await refused(
          "SharePoint without its key file",
          post({ ...base, app: "sharepoint" }),
          400,
          "sharepoint_key_required",
          /upload the private-key JSON file/,
        );
        await refused(
          "a key file for Exchange",
          post({ ...base, privateKeyJson: key.json }),
          400,
          "invalid_request",
          /only a SharePoint tenant/,
        );
        await refused(
          "a bad quarantine folder",
          post({ ...base, remediation: { quarantineFolder: "a/b" } }),
          400,
          "invalid_request",
          /quarantineFolder/,
        );
        await refused(
          "a date that is not one",
          post({ ...base, secretExpiresAt: "2026-13-45" }),
          400,
          "invalid_request",
          /secretExpiresAt/,
        );
        await refused(
          "a consent request that does not exist",
          post({ ...base, consentId: "consent_000000000000000000" }),
          400,
          "consent_not_found",
          /Cannot find admin-consent request/,
        );
        const gone = `https://127.0.0.1:1`;
        const down = await fixture({
          saas: { authorityUrl: gone, graphUrl: gone, fetch: trust.fetch },
        });
        try {
          const r = await down.adminReq("POST", "/api/v1/admin/saas/tenants", base);
          const j = await r.json();
          assert.equal(r.status, 502, JSON.stringify(j));
          assert.equal(j.error.code, "issuer_unreachable");
          assert.equal(down.store.saasTenants.list().length, 0);
        } finally {
          await down.ctx.saas.close();
          down.store.close();
        }
      });

      let tenantId = "";
      await t.step("added: the secret is write-only, expiry flagged", async () => {
        const soon = new Date(edge.clock.now() + 10 * 86_400_000).toISOString().slice(0, 10);
        const r = await post({ ...base, secretExpiresAt: soon });
        const j = await r.json();
        assert.equal(r.status, 201, JSON.stringify(j));
        tenantId = j.id;
        assert.equal(j.secretExpiry.state, "expiring");
        assert.equal(j.clientSecretSet, true);
        assert.ok(!("clientSecret" in j));
        await refused(
          "the same name again",
          post({ ...base, name: "contoso exchange" }),
          409,
          "saas_tenant_exists",
          /the name is in use/,
        );
        const list = await (await edge.adminReq("GET", "/api/v1/admin/saas/tenants")).text();
        assert.ok(!list.includes(SECRET));
        let u = await edge.adminReq("PATCH", `/api/v1/admin/saas/tenants/${tenantId}`, {
          secretExpiresAt: "2025-06-01",
        });
        assert.equal((await u.json()).secretExpiry.state, "expired");
        u = await edge.adminReq("PATCH", `/api/v1/admin/saas/tenants/${tenantId}`, {
          secretExpiresAt: null,
        });
        assert.equal((await u.json()).secretExpiry.state, "unknown");
        // A new secret the issuer rejects is not kept: Reauthorize with none still works.
        await refused(
          "reauthorize with a rejected secret",
          edge.adminReq("POST", `/api/v1/admin/saas/tenants/${tenantId}/reauthorize`, {
            clientSecret: "new~but.wrong_000000000000000000000000",
          }),
          400,
          "client_credentials_rejected",
          /AADSTS7000215/,
        );
        const again = await edge.adminReq(
          "POST",
          `/api/v1/admin/saas/tenants/${tenantId}/reauthorize`,
        );
        assert.equal(again.status, 200);
        await again.body?.cancel();
        await refused(
          "scan an Exchange tenant",
          edge.adminReq("POST", `/api/v1/admin/saas/tenants/${tenantId}/scans`),
          409,
          "not_scannable",
          /covers OneDrive and SharePoint, not exchange/,
        );
        await refused(
          "an unknown tenant",
          edge.adminReq("GET", "/api/v1/admin/saas/tenants/saas_nope"),
          404,
          "saas_tenant_not_found",
          /Cannot find SaaS tenant/,
        );
      });

      await t.step(
        "admin consent: granted once, then replay, foreign and expired states refused",
        async () => {
          const start = (name: string) =>
            edge.adminReq("POST", "/api/v1/admin/saas/consents", {
              app: "exchange",
              name,
              tenantId: TENANT,
              clientId: CLIENT,
              redirectUri: "http://127.0.0.1:8080/saas/consent",
            });
          let r = await start("Fabrikam Exchange");
          let j = await r.json();
          assert.equal(r.status, 201, JSON.stringify(j));
          const url = new URL(j.url);
          assert.equal(url.origin, issuer.url);
          assert.equal(url.pathname, `/${TENANT}/adminconsent`);
          assert.equal(url.searchParams.get("client_id"), CLIENT);
          assert.match(url.searchParams.get("state")!, /^add-saas-tenant\/Fabrikam%20Exchange\//);
          // The identity platform sends the browser back.
          issuer.consentAnswer = "grant";
          const back = await trust.fetch(j.url, { redirect: "manual" });
          const location = new URL(back.headers.get("location")!);
          await back.body?.cancel();
          assert.equal(location.pathname, "/saas/consent");
          assert.equal(location.searchParams.get("admin_consent"), "True");
          const redirect = (q: URLSearchParams | string) =>
            edge.req("GET", `/api/v1/saas/consent?${q}`);
          r = await redirect(location.searchParams);
          const granted = await r.json();
          assert.equal(r.status, 200, JSON.stringify(granted));
          assert.equal(granted.result, "granted");
          assert.equal(granted.consentedTenant, TENANT);
          await refused(
            "the same redirect again",
            redirect(location.searchParams),
            400,
            "consent_state_used",
            /answered already/,
          );
          const foreign = new URLSearchParams(location.searchParams);
          foreign.set("state", `add-saas-tenant/Fabrikam%20Exchange/${"A".repeat(43)}`);
          await refused(
            "a foreign state",
            redirect(foreign),
            400,
            "consent_state_mismatch",
            /not issued by this edge/,
          );
          const renamed = new URLSearchParams(location.searchParams);
          renamed.set("state", location.searchParams.get("state")!.replace("Fabrikam", "Contoso"));
          await refused(
            "a state naming another tenant",
            redirect(renamed),
            400,
            "consent_state_mismatch",
            /not issued by this edge/,
          );
          await refused(
            "no state",
            redirect("admin_consent=True"),
            400,
            "consent_state_mismatch",
            /not issued/,
          );

          // The tenant added after consent records it.
          r = await post({ ...base, name: "Fabrikam Exchange", consentId: granted.id });
          j = await r.json();
          assert.equal(r.status, 201, JSON.stringify(j));
          assert.equal(j.consent.status, "granted");

          // Declined at the identity platform.
          r = await start("Declined Exchange");
          j = await r.json();
          issuer.consentAnswer = "deny";
          const no = await trust.fetch(j.url, { redirect: "manual" });
          const noLoc = new URL(no.headers.get("location")!);
          await no.body?.cancel();
          assert.equal(noLoc.searchParams.get("error"), "access_denied");
          r = await redirect(noLoc.searchParams);
          const denied = await r.json();
          assert.equal(r.status, 200);
          assert.equal(denied.result, "denied");
          assert.match(denied.error, /^access_denied: AADSTS65004/);
          await refused(
            "a tenant after declined consent",
            post({ ...base, name: "Declined Exchange", consentId: denied.id }),
            400,
            "consent_not_granted",
            /consent was declined/,
          );

          // Consent given in another directory.
          r = await start("Elsewhere Exchange");
          j = await r.json();
          issuer.consentAnswer = { tenant: "11111111-2222-3333-4444-555555555555" };
          const el = await trust.fetch(j.url, { redirect: "manual" });
          const elLoc = new URL(el.headers.get("location")!);
          await el.body?.cancel();
          const elsewhere = await (await redirect(elLoc.searchParams)).json();
          assert.equal(elsewhere.result, "denied");
          assert.match(elsewhere.error, /tenant_mismatch/);

          // Too late.
          r = await start("Late Exchange");
          j = await r.json();
          issuer.consentAnswer = "grant";
          const late = await trust.fetch(j.url, { redirect: "manual" });
          const lateLoc = new URL(late.headers.get("location")!);
          await late.body?.cancel();
          edge.clock.advance(31 * 60_000);
          await refused(
            "an expired state",
            redirect(lateLoc.searchParams),
            400,
            "consent_state_expired",
            /has expired/,
          );

          await refused(
            "a redirect URI elsewhere",
            edge.adminReq("POST", "/api/v1/admin/saas/consents", {
              app: "exchange",
              name: "X",
              tenantId: TENANT,
              clientId: CLIENT,
              redirectUri: "https://evil.example/callback",
            }),
            400,
            "invalid_request",
            /redirectUri/,
          );
        },
      );

      await t.step("the tables are served as data", async () => {
        const j = await (await edge.adminReq("GET", "/api/v1/admin/saas/apps")).json();
        const sp = j.apps.find((a: { app: string }) => a.app === "sharepoint");
        assert.equal(sp.listedInReference, false);
        assert.equal(sp.source, "onedrive");
        const ex = j.apps.find((a: { app: string }) => a.app === "exchange");
        assert.equal(ex.rows.length, 9);
        assert.deepEqual(ex.rows[4], {
          api: "graph",
          apiName: "Microsoft Graph",
          apiAppId: "00000003-0000-0000-c000-000000000000",
          permission: "Mail.Send",
          type: "Application",
          actions: ["quarantine"],
          reference: ["Quarantine"],
        });
      });

      await t.step("the OpenAPI document lists the routes with their schemas", async () => {
        const doc = await (await edge.req("GET", "/api/v1/openapi.json")).json();
        const add = doc.paths["/api/v1/admin/saas/tenants"].post;
        assert.deepEqual(
          add.requestBody.content["application/json"].schema.required.sort(),
          ["app", "clientId", "clientSecret", "name", "tenantId"],
        );
        assert.ok(add.responses["422"] && add.responses["502"]);
        assert.ok(doc.paths["/api/v1/admin/saas/tenants/{id}"].patch);
        assert.ok(doc.paths["/api/v1/saas/consent"].get);
      });

      await t.step("delete", async () => {
        const r = await edge.adminReq("DELETE", `/api/v1/admin/saas/tenants/${tenantId}`);
        assert.equal(r.status, 200);
        await r.body?.cancel();
        assert.equal(edge.store.saasTenants.get(tenantId), undefined);
        const audit = edge.store.audit.list({ limit: 50 }).map((a) => a.action);
        assert.ok(audit.includes("saas.tenant.delete"));
        assert.ok(audit.includes("saas.consent.answer"));
      });
    } finally {
      await edge.ctx.saas.close();
      edge.store.close();
      trust.close();
      await issuer.stop();
    }
  },
});
