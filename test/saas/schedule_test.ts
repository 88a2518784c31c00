/**
 * Scheduled scans: a tenant's scanIntervalMinutes decides when the scanner
 * starts a scan on its own (on a manual clock): due at once when it never
 * ran, not again before the interval, again after it — reading only what
 * changed —, never with 0; a start that fails (credentials revoked) is not
 * retried before another interval; intervals outside 0 or 15–10,080 are
 * refused.
 */
import assert from "node:assert/strict";
import { setLogSinks } from "../../src/log.ts";
import { fixture } from "../http/helpers.ts";
import { register, saasWorld, TENANT } from "./harness.ts";
import { trustingFetch } from "./issuer.ts";

setLogSinks([]);

Deno.test({
  name: "saas schedule: scans start when due, not before, never at 0, failed starts back off",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const world = await saasWorld();
    const trust = trustingFetch(world.issuer.tls);
    const edge = await fixture({
      saas: { authorityUrl: world.issuer.url, graphUrl: world.graph.graphUrl, fetch: trust.fetch },
    });
    const scanner = edge.ctx.saas.scanner;
    try {
      const drive = world.graph.addUser("sched@contoso.test")!;
      world.graph.addItem(drive, "a.txt", "alpha");
      world.graph.addItem(drive, "b.txt", "beta");
      const clientId = "0d0d0d0d-aaaa-4bbb-8ccc-000000000001";
      const secret = "sched~secret.value_0123456789abcdefghij";
      const roles = {
        o365_management: ["ActivityFeed.Read"],
        graph: [
          "People.Read.All",
          "Group.Read.All",
          "Sites.Manage.All",
          "Sites.ReadWrite.All",
          "Files.ReadWrite.All",
          "Directory.Read.All",
          "GroupMember.Read.All",
          "Organization.Read.All",
          "AuditLog.Read.All",
          "Application.Read.All",
          "Reports.Read.All",
        ],
      };
      register(world, clientId, secret, roles);
      const r = await edge.adminReq("POST", "/api/v1/admin/saas/tenants", {
        app: "onedrive",
        name: "Scheduled",
        tenantId: TENANT,
        clientId,
        clientSecret: secret,
        scanIntervalMinutes: 60,
      });
      const t = await r.json();
      assert.equal(r.status, 201, JSON.stringify(t));
      assert.equal(t.scanIntervalMinutes, 60);

      // Never scanned: due now.
      assert.equal(await scanner.tick(), 1);
      await scanner.idle(t.id);
      let scans = edge.store.saasScans.forTenant(t.id);
      assert.equal(scans.length, 1);
      assert.equal(scans[0].state, "completed", scans[0].error ?? "");
      assert.equal(scans[0].startedBy, "saas-schedule");
      assert.equal(scans[0].filesScanned, 2);
      // Not again before the interval.
      edge.clock.advance(59 * 60_000);
      assert.equal(await scanner.tick(), 0);
      // After it: a scan from the delta link, reading only the new file.
      world.graph.addItem(drive, "c.txt", "gamma");
      edge.clock.advance(2 * 60_000);
      assert.equal(await scanner.tick(), 1);
      await scanner.idle(t.id);
      scans = edge.store.saasScans.forTenant(t.id);
      assert.equal(scans.length, 2);
      assert.equal(scans[0].filesScanned, 1);

      // 0: no schedule.
      let u = await edge.adminReq("PATCH", `/api/v1/admin/saas/tenants/${t.id}`, {
        scanIntervalMinutes: 0,
      });
      assert.equal(u.status, 200);
      await u.body?.cancel();
      edge.clock.advance(5 * 3600_000);
      assert.equal(await scanner.tick(), 0);

      // Out of range: refused, naming the field.
      for (const bad of [5, 20_000, 1.5, -1]) {
        u = await edge.adminReq("PATCH", `/api/v1/admin/saas/tenants/${t.id}`, {
          scanIntervalMinutes: bad,
        });
        const j = await u.json();
        assert.equal(u.status, 400, String(bad));
        assert.match(j.error.message, /scanIntervalMinutes/);
      }

      // Credentials revoked: the scheduled start fails once, and is not retried at every tick.
      u = await edge.adminReq("PATCH", `/api/v1/admin/saas/tenants/${t.id}`, {
        scanIntervalMinutes: 15,
      });
      await u.body?.cancel();
      world.issuer.apps.get(clientId)!.secret = "rotated~elsewhere.000000000000000000000";
      edge.clock.advance(16 * 60_000);
      const asked = world.issuer.seen.length;
      assert.equal(await scanner.tick(), 0);
      assert.ok(world.issuer.seen.length > asked, "the issuer was asked once");
      const afterFail = world.issuer.seen.length;
      edge.clock.advance(60_000);
      assert.equal(await scanner.tick(), 0);
      assert.equal(world.issuer.seen.length, afterFail, "not retried a minute later");
      world.issuer.apps.get(clientId)!.secret = secret;
      edge.clock.advance(15 * 60_000);
      assert.equal(await scanner.tick(), 1, "retried an interval later");
      await scanner.idle(t.id);
    } finally {
      await edge.ctx.saas.close();
      edge.store.close();
      trust.close();
      await world.close();
    }
  },
});
