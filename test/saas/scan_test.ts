/**
 * Data-at-rest scanning of OneDrive end to end: a real edge (control plane
 * on a data directory, its REST API) with a OneDrive tenant authorized
 * through MSAL at the local issuer, scanning 1,000 files across 5 delta
 * pages of the Graph emulator through the DLP engine, with throttling
 * injected (429 and 503 with Retry-After, waited out as asked). It is cut
 * off mid-page by an edge restart and resumes from the saved cursor,
 * downloading no file twice; it finds exactly the files with card
 * numbers, quarantines them and removes their sharing links (audited);
 * the next scan starts from the saved delta link and reads only what
 * changed. Without Sites.ReadWrite.All nothing is moved and the incident
 * says why.
 */
import assert from "node:assert/strict";
import { setLogSinks } from "../../src/log.ts";
import type { TestEdge } from "./harness.ts";
import { register, saasWorld, startEdge } from "./harness.ts";
import type { EmuDrive, GraphEmulator } from "./graph_emulator.ts";

setLogSinks([]);

const ONEDRIVE_ROLES = {
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

/** Card numbers that pass Luhn, and near misses that do not. */
const CARDS = [
  "4111 1111 1111 1111",
  "5500 0000 0000 0004",
  "3400 000000 00009",
  "6011000990139424",
];
const NOT_CARDS = ["4111 1111 1111 1112", "1234 5678 9012 3456", "Order 2024-0001-7788"];

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function addDlpRule(edge: TestEdge) {
  let r = await edge.api("PUT", "/api/v1/admin/dlp/dictionaries/cards", { kind: "credit_card" });
  assert.equal(r.status, 200, await r.text());
  r = await edge.api("PUT", "/api/v1/admin/dlp/rules", {
    items: [{
      name: "Cards at rest",
      channels: ["saas_at_rest"],
      dictionaries: ["cards"],
      action: "block",
    }],
  });
  assert.equal(r.status, 200, await r.text());
}

async function addTenant(edge: TestEdge, name: string, clientId: string, secret: string) {
  const r = await edge.api("POST", "/api/v1/admin/saas/tenants", {
    app: "onedrive",
    name,
    tenantId: "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
    clientId,
    clientSecret: secret,
    remediation: { quarantine: true, removeSharingLinks: true, quarantineFolder: "Quarantine" },
  });
  const body = await r.json();
  return { status: r.status, body };
}

async function scanUntilDone(edge: TestEdge, id: string) {
  await waitFor("the scan to finish", async () => {
    const r = await edge.api("GET", `/api/v1/admin/saas/tenants/${id}/scans`);
    const j = await r.json();
    return !j.running && j.scans[0]?.state !== "running";
  });
  const r = await edge.api("GET", `/api/v1/admin/saas/tenants/${id}/scans`);
  return (await r.json()).scans[0];
}

/** 1,000 files in one OneDrive, every 27th with a card number. */
function populate(graph: GraphEmulator, drive: EmuDrive) {
  const sensitive: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const name = `report-${String(i).padStart(4, "0")}.txt`;
    let text = `Quarterly notes ${i}\nNothing to see: ${NOT_CARDS[i % NOT_CARDS.length]}\n`;
    if (i % 27 === 5) {
      text += `Customer card: ${CARDS[i % CARDS.length]}\n`;
    }
    const it = graph.addItem(drive, name, text, {
      links: i % 27 === 5 || i % 50 === 0
        ? [{
          scope: "anonymous",
          type: "view",
          webUrl: `https://contoso-my.sharepoint.com/:t:/${i}`,
        }]
        : [],
    });
    if (i % 27 === 5) sensitive.push(it.id);
  }
  return sensitive;
}

Deno.test({
  name:
    "saas scan: 1,000 OneDrive files over 5 delta pages, throttled, resumed after a restart, quarantined",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const world = await saasWorld();
    const dataDir = `${world.dir}/edge`;
    let edge: TestEdge | null = null;
    try {
      const { graph } = world;
      const drive = graph.addUser("megan@contoso.test")!;
      graph.addUser("nolicence@contoso.test", false);
      const sensitive = populate(graph, drive);
      assert.equal(sensitive.length, 37);
      // root + 1,000 files in 5 pages
      graph.pageSize = Math.ceil(1001 / 5);

      const clientId = "0c0c0c0c-1111-2222-3333-444444444444";
      const secret = "Od~8Q~long.secret.value_abcdefghijklmnopq";
      register(world, clientId, secret, ONEDRIVE_ROLES);

      edge = await startEdge(world, dataDir);
      await addDlpRule(edge);
      const added = await addTenant(edge, "Contoso OneDrive", clientId, secret);
      assert.equal(added.status, 201, JSON.stringify(added.body));
      assert.equal(added.body.status, "successful");
      const id = added.body.id as string;

      // Throttling: Graph asks to wait twice with 429, once with 503; one HTTP date.
      const soon = new Date(Date.now() + 1500).toUTCString();
      graph.throttles.push(
        { match: /^GET \/v1\.0\/drives\/.*\/root\/delta$/, status: 429, retryAfter: "1", times: 1 },
        { match: /^GET \/_download\//, status: 429, retryAfter: "1", times: 1 },
        { match: /^GET \/v1\.0\/drives\/.*\/content$/, status: 503, retryAfter: soon, times: 1 },
      );
      // Hold one download in page 3 until the edge, stopping, gives up on it.
      const held = "report-0500.txt";
      const heldId = [...drive.items.values()].find((i) => i.name === held)!.id;
      let reached = false;
      graph.beforeDownload = (itemId, signal) => {
        if (itemId !== heldId) return;
        reached = true;
        graph.beforeDownload = null;
        return new Promise((resolve) => signal.addEventListener("abort", () => resolve()));
      };

      const start = await edge.api("POST", `/api/v1/admin/saas/tenants/${id}/scans`);
      assert.equal(start.status, 202, await start.clone().text());
      await waitFor("the held download", () => reached);
      // Pages 1-2 (401 files) and page 3 but the held file (200) are done;
      // nothing else is in flight. Restart the edge mid-page.
      const done = () =>
        Object.values(edge!.cp.store.saasItems.counts(id)).reduce((a, b) => a + b, 0);
      await waitFor("page 3 to be worked through around the held file", () => done() === 601);
      const before = { ...edge.cp.store.saasScans.forTenant(id)[0] };
      assert.equal(before.state, "running");
      assert.equal(before.pages, 2, "two pages done, the cursor is page 3's link");
      assert.equal(before.filesScanned, 601);
      edge = await edge.restart();

      const scan = await scanUntilDone(edge, id);
      assert.equal(scan.state, "completed", scan.error ?? "");
      assert.equal(scan.pages, 5);
      assert.equal(scan.drives, 1, "the user without a OneDrive has no drive");
      assert.equal(scan.filesScanned, 1000);
      assert.equal(scan.findings, 37);
      assert.ok(scan.throttled >= 3, `throttled ${scan.throttled}`);

      // No file was downloaded twice: the restart resumed from the saved cursor.
      const files = [...drive.items.values()].filter((i) => !i.folder);
      for (const f of files) {
        assert.equal(
          graph.downloads.get(f.id),
          1,
          `${f.name} downloaded ${graph.downloads.get(f.id)} times`,
        );
      }
      // Every throttled request was retried no sooner than Retry-After said.
      const log = graph.log;
      const throttled = log.filter((r) => r.status === 429 || r.status === 503);
      assert.equal(throttled.length, 3);
      for (const r of throttled) {
        const retry = log.find((x) =>
          x.at >= r.at && x !== r && x.method === r.method && x.path === r.path
        );
        assert.ok(retry, `${r.method} ${r.path} was retried`);
        const until = /^\d+$/.test(r.retryAfter!)
          ? r.at + Number(r.retryAfter) * 1000
          : Date.parse(r.retryAfter!);
        assert.ok(
          retry.at >= until - 20,
          `${r.method} ${r.path} retried ${until - retry.at} ms early`,
        );
      }

      // Exactly the files with card numbers: incidents, quarantine, links removed.
      const inc =
        await (await edge.api("GET", `/api/v1/admin/saas/tenants/${id}/incidents?limit=500`))
          .json();
      const names = inc.incidents.map((i: { fileName: string }) => i.fileName).sort();
      const expected = sensitive.map((sid) => drive.items.get(sid)!.name).sort();
      assert.deepEqual(names, expected);
      for (const i of inc.incidents) {
        assert.equal(i.channel, "saas_at_rest");
        assert.equal(i.hostname, "Contoso OneDrive");
        assert.equal(i.source, "saas");
        assert.equal(i.outcome, "quarantined_unshared");
        assert.equal(i.rule, "Cards at rest");
        for (const m of i.matches) for (const s of m.samples) assert.doesNotMatch(s, /\d{12,}/);
      }
      const quarantined = graph.filesIn(drive, "Quarantine").map((f) => f.id).sort();
      assert.deepEqual(quarantined, [...sensitive].sort());
      for (const sid of sensitive) {
        assert.ok(!drive.items.get(sid)!.permissions.some((p) => p.link), "sharing link removed");
      }
      // Files without findings kept their links.
      const linked = files.filter((f) =>
        !sensitive.includes(f.id) && f.permissions.some((p) => p.link)
      );
      const expectLinked = Array.from({ length: 1000 }, (_, i) => i)
        .filter((i) => i % 50 === 0 && i % 27 !== 5).length;
      assert.equal(linked.length, expectLinked);
      const audit = edge.cp.store.audit.list({ limit: 500 });
      assert.equal(audit.filter((a) => a.action === "saas.file.quarantine").length, 37);
      assert.equal(audit.filter((a) => a.action === "saas.file.unshare").length, 37);

      // The next scan starts from the delta link: only what changed is read.
      const a = graph.addItem(drive, "new-clean.txt", "hello");
      const b = graph.addItem(drive, "new-card.txt", `pay with ${CARDS[0]}`);
      const changed = files.find((f) => f.name === "report-0001.txt")!;
      graph.modify(drive, changed.id, `now with a card ${CARDS[1]}`);
      const gone = files.find((f) => f.name === "report-0002.txt")!;
      graph.remove(drive, gone.id);
      const downloadsBefore = [...graph.downloads.values()].reduce((x, y) => x + y, 0);
      const again = await edge.api("POST", `/api/v1/admin/saas/tenants/${id}/scans`);
      assert.equal(again.status, 202);
      const second = await scanUntilDone(edge, id);
      assert.equal(second.state, "completed", second.error ?? "");
      const downloadsAfter = [...graph.downloads.values()].reduce((x, y) => x + y, 0);
      assert.equal(downloadsAfter - downloadsBefore, 3, "the two new files and the changed one");
      assert.equal(second.filesScanned, 3);
      assert.equal(second.findings, 2);
      assert.equal(graph.downloads.get(a.id), 1);
      assert.equal(graph.downloads.get(b.id), 1);
      assert.equal(
        edge.cp.store.saasItems.tag(id, drive.id, gone.id),
        null,
        "deleted file forgotten",
      );
    } finally {
      await edge?.close();
      await world.close();
    }
  },
});

Deno.test({
  name:
    "saas scan: without Sites.ReadWrite.All, or with remediation off, a blocked file is reported and not moved",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const world = await saasWorld();
    let edge: TestEdge | null = null;
    try {
      const { graph } = world;
      const drive = graph.addUser("adele@contoso.test")!;
      const card = graph.addItem(drive, "card.txt", `Card ${CARDS[0]}`, {
        links: [{ scope: "anonymous", type: "view", webUrl: "https://x/1" }],
      });
      graph.addItem(drive, "clean.txt", "nothing");
      const clientId = "0d0d0d0d-1111-2222-3333-444444444444";
      const roles = {
        ...ONEDRIVE_ROLES,
        graph: ONEDRIVE_ROLES.graph.filter((r) => r !== "Sites.ReadWrite.All"),
      };
      register(world, clientId, "another~secret.value.0123456789abcdefghij", roles);
      edge = await startEdge(world, `${world.dir}/edge2`);
      await addDlpRule(edge);
      const added = await addTenant(
        edge,
        "Adele",
        clientId,
        "another~secret.value.0123456789abcdefghij",
      );
      assert.equal(added.status, 422, "saved, validation failed");
      assert.equal(added.body.error.code, "permissions_missing");
      assert.match(added.body.error.message, /Sites\.ReadWrite\.All \(Microsoft Graph\)/);
      const id = added.body.tenant.id;
      assert.ok(added.body.tenant.enabledActions.includes("scanning"));
      assert.ok(!added.body.tenant.enabledActions.includes("quarantine"));
      const r = await edge.api("POST", `/api/v1/admin/saas/tenants/${id}/scans`);
      assert.equal(r.status, 202, await r.clone().text());
      const scan = await scanUntilDone(edge, id);
      assert.equal(scan.state, "completed", scan.error ?? "");
      assert.equal(scan.findings, 1);
      assert.equal(scan.remediations, 0);
      const inc = await (await edge.api("GET", `/api/v1/admin/saas/tenants/${id}/incidents`))
        .json();
      assert.equal(inc.incidents.length, 1);
      assert.equal(inc.incidents[0].outcome, "not_permitted");
      assert.equal(drive.items.get(card.id)!.parentId, drive.rootId, "not moved");
      assert.ok(drive.items.get(card.id)!.permissions.some((p) => p.link), "link kept");
      // The emulator would have refused a move: no write was attempted.
      assert.ok(!graph.log.some((l) => l.method === "PATCH" || l.method === "DELETE"));

      // Every permission granted, but the tenant asks for no remediation: reported only.
      const full = "0f0f0f0f-1111-2222-3333-444444444444";
      register(world, full, "third~secret.value.0123456789abcdefghijk", ONEDRIVE_ROLES);
      const r2 = await edge.api("POST", "/api/v1/admin/saas/tenants", {
        app: "onedrive",
        name: "Report only",
        tenantId: "72f988bf-86f1-41af-91ab-2d7cd011db47",
        clientId: full,
        clientSecret: "third~secret.value.0123456789abcdefghijk",
        remediation: { quarantine: false, removeSharingLinks: false },
      });
      const t2 = await r2.json();
      assert.equal(r2.status, 201, JSON.stringify(t2));
      assert.ok(t2.enabledActions.includes("quarantine"));
      assert.equal(
        (await edge.api("POST", `/api/v1/admin/saas/tenants/${t2.id}/scans`)).status,
        202,
      );
      const s2 = await scanUntilDone(edge, t2.id);
      assert.equal(s2.findings, 1);
      const inc2 = await (await edge.api("GET", `/api/v1/admin/saas/tenants/${t2.id}/incidents`))
        .json();
      assert.equal(inc2.incidents[0].outcome, "reported");
      assert.equal(drive.items.get(card.id)!.parentId, drive.rootId, "still not moved");
      assert.ok(!graph.log.some((l) => l.method === "PATCH" || l.method === "DELETE"));

      // Deleting a tenant while its scan runs stops the scan first: no failure, nothing left.
      const late = graph.addItem(drive, "late.txt", "arrives during the scan");
      let held = false;
      graph.beforeDownload = (itemId, signal) => {
        if (itemId !== late.id) return;
        held = true;
        return new Promise((resolve) => signal.addEventListener("abort", () => resolve()));
      };
      assert.equal(
        (await edge.api("POST", `/api/v1/admin/saas/tenants/${t2.id}/scans`)).status,
        202,
      );
      await waitFor("the scan to reach the held file", () => held);
      const del = await edge.api("DELETE", `/api/v1/admin/saas/tenants/${t2.id}`);
      assert.equal(del.status, 200, await del.clone().text());
      assert.equal(edge.cp.store.saasTenants.get(t2.id), undefined);
      assert.equal(edge.cp.store.saasScans.forTenant(t2.id).length, 0);
      const failed = edge.cp.store.notifications.list({ afterId: 0, limit: 500 })
        .filter((n) =>
          n.kind === "saas_scan_finished" && n.severity === "warning" && /failed/.test(n.message)
        );
      assert.deepEqual(failed, []);
    } finally {
      await edge?.close();
      await world.close();
    }
  },
});
