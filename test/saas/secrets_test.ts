/**
 * No client secret or private key leaves the edge: a real edge (sealed
 * store on disk) adds OneDrive and SharePoint tenants, is refused a wrong
 * secret, reauthorizes, scans and records incidents, with every log record
 * kept at debug level (MSAL's included). Then grep: the secrets and every
 * line of the private key appear in no log record, no API response, no
 * audit entry, no exported bundle (the DLP incident export, the edge's
 * diagnostics bundle) and not in
 * clear in the database files — while the same grep does find the names
 * that are supposed to be there.
 */
import assert from "node:assert/strict";
import { unzipSync } from "fflate";
import { RingSink, setLogLevel, setLogSinks } from "../../src/log.ts";
import { register, saasWorld, startEdge, type TestEdge } from "./harness.ts";
import { sharePointKeyFile } from "./issuer.ts";

const ring = new RingSink(50_000);
setLogSinks([ring]);

const ROLES = {
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
    "Sites.Read.All",
  ],
};

Deno.test({
  name:
    "saas secrets: no client secret or private key in logs, API responses, audit log, exports or the database in clear",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    setLogLevel("debug");
    const world = await saasWorld();
    let edge: TestEdge | null = null;
    const responses: string[] = [];
    try {
      const S1 = "OneDrv~Secret.Value-1a2b3c4d5e6f7g8h9i0jKLMN";
      const S2 = "ShrPt~Secret.Value-9z8y7x6w5v4u3t2s1r0qPONM";
      const WRONG = "Wrong~Secret.Value-aaaaaaaaaaaaaaaaaaaaaaaa";
      const key = await sharePointKeyFile("sp-secrets");
      register(world, "10000000-0000-4000-8000-000000000001", S1, ROLES);
      register(world, "10000000-0000-4000-8000-000000000002", S2, ROLES, key.certPem);
      const drive = world.graph.addUser("isaiah@contoso.test")!;
      world.graph.addItem(drive, "card.txt", "card 4111 1111 1111 1111", {
        links: [{ scope: "organization", type: "edit", webUrl: "https://x/1" }],
      });
      world.graph.addItem(drive, "plain.txt", "nothing here");
      const [library] = world.graph.addSite("Finance", ["Documents"]);
      world.graph.addItem(library, "iban-list.txt", "pay 5500 0000 0000 0004 today");

      edge = await startEdge(world, `${world.dir}/edge`);
      const call = async (method: string, path: string, body?: unknown) => {
        const r = await edge!.api(method, path, body);
        const text = await r.text();
        responses.push(text);
        return { status: r.status, json: text ? JSON.parse(text) : null, text };
      };
      await call("PUT", "/api/v1/admin/dlp/dictionaries/cards", { kind: "credit_card" });
      await call("PUT", "/api/v1/admin/dlp/rules", {
        items: [{
          name: "Cards",
          channels: ["saas_at_rest"],
          dictionaries: ["cards"],
          action: "block",
        }],
      });
      const od = await call("POST", "/api/v1/admin/saas/tenants", {
        app: "onedrive",
        name: "Secrets OneDrive",
        tenantId: world.issuer.tenantId,
        clientId: "10000000-0000-4000-8000-000000000001",
        clientSecret: S1,
        remediation: { quarantine: true, removeSharingLinks: true },
      });
      assert.equal(od.status, 201, od.text);
      const sp = await call("POST", "/api/v1/admin/saas/tenants", {
        app: "sharepoint",
        name: "Secrets SharePoint",
        tenantId: world.issuer.tenantId,
        clientId: "10000000-0000-4000-8000-000000000002",
        clientSecret: S2,
        privateKeyJson: key.json,
      });
      assert.equal(sp.status, 201, sp.text);
      const bad = await call("POST", "/api/v1/admin/saas/tenants", {
        app: "onedrive",
        name: "Refused",
        tenantId: world.issuer.tenantId,
        clientId: "10000000-0000-4000-8000-000000000001",
        clientSecret: WRONG,
      });
      assert.equal(bad.status, 400);
      assert.equal(
        (await call("POST", `/api/v1/admin/saas/tenants/${od.json.id}/reauthorize`, {
          clientSecret: WRONG,
        }))
          .status,
        400,
      );
      await call("POST", `/api/v1/admin/saas/tenants/${od.json.id}/reauthorize`, {
        clientSecret: S1,
      });
      for (const id of [od.json.id, sp.json.id]) {
        const s = await call("POST", `/api/v1/admin/saas/tenants/${id}/scans`);
        assert.equal(s.status, 202, s.text);
        await edge.cp.ctx.saas.scanner.idle(id);
        await call("GET", `/api/v1/admin/saas/tenants/${id}/scans`);
        await call("GET", `/api/v1/admin/saas/tenants/${id}/incidents`);
        await call("GET", `/api/v1/admin/saas/tenants/${id}`);
      }
      const store = edge.cp.store;
      for (const id of [od.json.id, sp.json.id]) {
        const scan = store.saasScans.forTenant(id)[0];
        assert.equal(scan.state, "completed", scan.error ?? "");
        assert.equal(scan.findings, 1, id);
      }
      // SharePoint scanned the site's library with tokens from its certificate.
      const spInc = store.dlpIncidents.list({ hostname: "Secrets SharePoint", limit: 5 });
      assert.deepEqual(spInc.map((i) => i.fileName), ["iban-list.txt"]);
      await call("GET", "/api/v1/admin/saas/tenants");
      await call("GET", "/api/v1/admin/saas/apps");
      const exported = await call("GET", "/api/v1/admin/dlp/incidents/export");
      assert.equal(exported.status, 200);
      assert.match(exported.text, /Secrets OneDrive/);
      const audit = await call("GET", "/api/v1/admin/audit?limit=500");
      // The edge's diagnostics bundle, every file of it unzipped.
      const zip = await edge.api("GET", "/api/v1/admin/diagnostics");
      assert.equal(zip.status, 200);
      const files = unzipSync(new Uint8Array(await zip.arrayBuffer()));
      const bundle = Object.entries(files).map(([n, b]) => `${n}\n${new TextDecoder().decode(b)}`)
        .join("\n");
      assert.match(bundle, /Secrets SharePoint/, "the bundle lists the tenants");
      await call("GET", "/api/v1/admin/notifications?limit=500");
      await edge.close();
      edge = null;

      // The private key's lines (the certificate is public and kept in clear on purpose).
      const keyLines = key.keyPem.split("\n").filter((l) =>
        l.length >= 40 && !l.startsWith("-----")
      );
      assert.ok(keyLines.length > 20);
      const secrets = [S1, S2, WRONG, ...keyLines];
      const places: [string, string][] = [
        ["the log", JSON.stringify(ring.records())],
        ["API responses", responses.join("\n")],
        ["the audit log", audit.text],
        ["the DLP export", exported.text],
        ["the diagnostics bundle", bundle],
      ];
      for (const f of ["edge.db", "edge.db-wal"]) {
        try {
          places.push([
            f,
            new TextDecoder("latin1").decode(await Deno.readFile(`${world.dir}/edge/${f}`)),
          ]);
        } catch {
          // no WAL left after a clean close
        }
      }
      for (const [where, text] of places) {
        for (const s of secrets) {
          assert.ok(!text.includes(s), `${where} holds a secret (${s.slice(0, 6)}…)`);
        }
      }
      // The grep works: what belongs there is found.
      assert.match(places[0][1], /Secrets OneDrive/);
      assert.match(places[2][1], /saas\.tenant\.create/);
      assert.ok(
        places.some(([w, t]) => w === "edge.db" || w === "edge.db-wal" ? /sb1:/.test(t) : false),
      );
      assert.ok(
        ring.records().some((r) => r.component === "saas.token"),
        "MSAL's own log was kept",
      );
      // The issuer did receive them: they were used, just never shown.
      assert.ok(world.issuer.seen.some((s) => s.auth === "assertion"));
    } finally {
      setLogLevel("info");
      await edge?.close();
      await world.close();
    }
  },
});
