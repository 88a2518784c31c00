/**
 * Adding each of the six application tenants through the REST API, with
 * tokens from MSAL at the local Entra-shaped issuer: every permission of
 * the guide's table granted → Validation Successful; two missing →
 * Validation Failed (saved, answered 422) naming them and the actions they
 * disable; Reauthorize once they are granted → Successful. SharePoint signs
 * its client assertion with the uploaded certificate (the issuer checks
 * it) and proves its secret too.
 */
import assert from "node:assert/strict";
import { setLogSinks } from "../../src/log.ts";
import { type ApiKey, APIS, requirementsFor, type SaasApp } from "../../src/saas/mod.ts";
import { fixture } from "../http/helpers.ts";
import { SCOPES, TENANT } from "./harness.ts";
import { sharePointKeyFile, startIssuer, trustingFetch } from "./issuer.ts";

setLogSinks([]);

/** Per application: the two rows withheld, and the actions that must then be disabled. */
const TWO_MISSING: Record<
  SaasApp,
  { withhold: [ApiKey, string][]; disabled: string[]; stillEnabled: string[] }
> = {
  exchange: {
    withhold: [["graph", "Mail.ReadWrite"], ["graph", "Mail.Send"]],
    disabled: ["apply_email_tag_label", "quarantine"],
    stillEnabled: ["scanning"],
  },
  mip: {
    withhold: [["mip_sync", "UnifiedPolicy.Tenant.Read"], ["rms", "Content.Writer"]],
    disabled: ["apply_mip_labels", "scanning"],
    stillEnabled: [],
  },
  onedrive: {
    withhold: [["graph", "Sites.ReadWrite.All"], ["graph", "Files.ReadWrite.All"]],
    disabled: [
      "remove_sharing",
      "restore_quarantined_file",
      "remove_external_collaborators",
      "remove_external_collaborators_and_link",
      "remove_public_link",
      "remove_internal_link",
      "quarantine",
      "quarantine_to_user_root",
      "remove_file",
      "scanning",
    ],
    stillEnabled: [],
  },
  sharepoint: {
    withhold: [["o365_management", "ActivityFeed.Read"], ["graph", "Sites.ReadWrite.All"]],
    disabled: [
      "scanning",
      "remove_sharing",
      "restore_quarantined_file",
      "remove_external_collaborators",
      "remove_external_collaborators_and_link",
      "remove_public_link",
      "remove_internal_link",
      "quarantine",
      "quarantine_to_user_root",
      "remove_file",
    ],
    stillEnabled: [],
  },
  azure_blob: {
    withhold: [["azure_storage", "user_impersonation"], [
      "azure_service_management",
      "user_impersonation",
    ]],
    disabled: ["discover_storage_account", "scanning"],
    stillEnabled: [],
  },
  teams: {
    withhold: [["graph", "Chat.UpdatePolicyViolation.All"], [
      "graph",
      "ChannelMessage.UpdatePolicyViolation.All",
    ]],
    disabled: ["block_message", "notify_user_workflow", "notify_user"],
    stillEnabled: ["scanning"],
  },
};

/** The grants per scope of an app's table, less `withhold` (an API with nothing left is refused). */
function grantsFor(app: SaasApp, withhold: [ApiKey, string][] = []) {
  const byApi = new Map<ApiKey, string[]>();
  for (const r of requirementsFor(app).rows) {
    if (!byApi.has(r.api)) byApi.set(r.api, []);
    if (withhold.some(([a, p]) => a === r.api && p === r.permission)) continue;
    // Delegated rows are not roles: an app-only token carries none.
    if (r.type === "Application") byApi.get(r.api)!.push(r.permission);
  }
  const out: Record<string, string[] | "refuse"> = {};
  for (const [api, roles] of byApi) {
    const withheldAll = withhold.some(([a]) => a === api) &&
      requirementsFor(app).rows.filter((r) => r.api === api).every((r) =>
        withhold.some(([a, p]) => a === api && p === r.permission)
      );
    out[SCOPES[api]] = withheldAll ? "refuse" : roles;
  }
  return out;
}

Deno.test({
  name:
    "saas validation: six applications — successful, two missing named with the actions they disable, reauthorized",
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
    const key = await sharePointKeyFile();
    try {
      let n = 0;
      for (const app of Object.keys(TWO_MISSING) as SaasApp[]) {
        await t.step(app, async () => {
          const spec = TWO_MISSING[app];
          const full = `${(++n).toString(16).padStart(8, "0")}-0000-4000-8000-00000000000a`;
          const partial = `${n.toString(16).padStart(8, "0")}-0000-4000-8000-00000000000b`;
          const secret = `secret~${app}.0123456789abcdefghijklmnopqrst`;
          issuer.apps.set(full, { secret, certificatePem: key.certPem, grants: grantsFor(app) });
          issuer.apps.set(partial, {
            secret,
            certificatePem: key.certPem,
            grants: grantsFor(app, spec.withhold),
          });
          const body = (clientId: string, name: string) => ({
            app,
            name,
            tenantId: TENANT,
            clientId,
            clientSecret: secret,
            ...(app === "sharepoint" ? { privateKeyJson: key.json } : {}),
          });

          // Everything granted.
          const seenBefore = issuer.seen.length;
          let r = await edge.adminReq(
            "POST",
            "/api/v1/admin/saas/tenants",
            body(full, `${app} full`),
          );
          let j = await r.json();
          assert.equal(r.status, 201, JSON.stringify(j));
          assert.equal(j.status, "successful");
          assert.deepEqual(j.validation.evaluation.missing, []);
          assert.equal(j.clientSecretSet, true);
          assert.equal(JSON.stringify(j).includes(secret), false, "secret never returned");
          const asked = issuer.seen.slice(seenBefore);
          const apis = [...new Set(requirementsFor(app).rows.map((x) => x.api))];
          for (const api of apis) {
            assert.ok(asked.some((s) => s.scope === APIS[api].scope), `asked for ${api}`);
          }
          if (app === "sharepoint") {
            assert.ok(asked.some((s) => s.auth === "assertion" && s.outcome === "issued"));
            assert.ok(asked.some((s) => s.auth === "secret" && s.outcome === "issued"));
            assert.equal(j.certificate.thumbprintSha256.length, 64);
            assert.equal(j.validation.source, "onedrive");
          }

          // Two missing: saved as Validation Failed, answered 422.
          r = await edge.adminReq(
            "POST",
            "/api/v1/admin/saas/tenants",
            body(partial, `${app} partial`),
          );
          j = await r.json();
          assert.equal(r.status, 422, JSON.stringify(j));
          assert.equal(j.error.code, "permissions_missing");
          for (const [api, perm] of spec.withhold) {
            assert.ok(
              j.error.message.includes(`${perm} (${APIS[api].name})`),
              `${j.error.message} names ${perm}`,
            );
          }
          const tenant = j.tenant;
          assert.equal(tenant.status, "failed");
          assert.deepEqual(
            tenant.validation.evaluation.missing.map((m: { permission: string; api: string }) =>
              `${m.api}:${m.permission}`
            ).sort(),
            spec.withhold.map(([a, p]) => `${a}:${p}`).sort(),
          );
          assert.deepEqual(
            [...tenant.validation.evaluation.disabledActions].sort(),
            [...spec.disabled].sort(),
          );
          for (const a of spec.stillEnabled) {
            assert.ok(tenant.enabledActions.includes(a), `${a} still enabled`);
          }
          for (const a of spec.disabled) assert.ok(!tenant.enabledActions.includes(a));
          const listed =
            await (await edge.adminReq("GET", `/api/v1/admin/saas/tenants/${tenant.id}`)).json();
          assert.equal(listed.status, "failed");

          // Reauthorize before anything changed: still failed, still 422.
          r = await edge.adminReq("POST", `/api/v1/admin/saas/tenants/${tenant.id}/reauthorize`);
          assert.equal(r.status, 422);
          await r.body?.cancel();

          // Granted in Entra, then Reauthorize.
          issuer.apps.get(partial)!.grants = grantsFor(app);
          r = await edge.adminReq("POST", `/api/v1/admin/saas/tenants/${tenant.id}/reauthorize`);
          j = await r.json();
          assert.equal(r.status, 200, JSON.stringify(j));
          assert.equal(j.status, "successful");
          assert.deepEqual(j.validation.evaluation.missing, []);
        });
      }
      const audit = edge.store.audit.list({ limit: 100 });
      assert.equal(audit.filter((a) => a.action === "saas.tenant.create").length, 12);
      assert.equal(audit.filter((a) => a.action === "saas.tenant.reauthorize").length, 12);
      const notes = edge.store.notifications.list({ afterId: 0, limit: 100 })
        .filter((x) => x.kind === "saas_tenant_validated");
      assert.equal(notes.filter((x) => x.severity === "warning").length, 12);
    } finally {
      await edge.ctx.saas.close();
      edge.store.close();
      trust.close();
      await issuer.stop();
    }
  },
});
