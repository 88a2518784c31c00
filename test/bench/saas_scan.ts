/**
 * Benchmark (not a test): data-at-rest scanning throughput, files per
 * second, ours — a real edge's full scan of one OneDrive: delta pages,
 * downloads through Graph's redirect, the DLP engine on every file, a
 * SQLite record per file, incidents and quarantine for the sensitive ones —
 * side by side with a reference in the same run: a bare client that makes
 * the same Graph calls over the same TLS connection pool and concurrency
 * (delta pages, then each file's content) and does nothing with the bytes.
 * The ratio says what scanning costs on top of moving the files; the
 * Graph emulator and its TLS are the same for both. Rounds alternate, so a
 * machine whose load changes during the run affects both alike.
 *
 * Usage: flock /tmp/pcl-bench.lock deno run -A test/bench/saas_scan.ts [files=3000] [rounds=3]
 */
import { setLogSinks } from "../../src/log.ts";
import { register, saasWorld, startEdge } from "../saas/harness.ts";
import { trustingFetch } from "../saas/issuer.ts";

setLogSinks([]);

const FILES = Number(Deno.args[0] ?? 3000);
const ROUNDS = Number(Deno.args[1] ?? 3);
const CONCURRENCY = 4;

const world = await saasWorld();
const drive = world.graph.addUser("bench@contoso.test")!;
for (let i = 0; i < FILES; i++) {
  const body = `Minutes of meeting ${i}\n${"Lorem ipsum dolor sit amet. ".repeat(60)}\n` +
    (i % 100 === 7 ? "Card 4111 1111 1111 1111\n" : "");
  world.graph.addItem(drive, `doc-${i}.txt`, body);
}
world.graph.pageSize = 200;
const clientId = "0b0b0b0b-aaaa-4bbb-8ccc-000000000001";
const secret = "bench~secret.value_0123456789abcdefghijk";
register(world, clientId, secret, {
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
});

const edge = await startEdge(world, `${world.dir}/edge`);
await edge.api("PUT", "/api/v1/admin/dlp/dictionaries/cards", { kind: "credit_card" });
await edge.api("PUT", "/api/v1/admin/dlp/rules", {
  items: [{ name: "Cards", channels: ["saas_at_rest"], dictionaries: ["cards"], action: "block" }],
});
const added = await (await edge.api("POST", "/api/v1/admin/saas/tenants", {
  app: "onedrive",
  name: "Bench",
  tenantId: world.issuer.tenantId,
  clientId,
  clientSecret: secret,
  remediation: { quarantine: false, removeSharingLinks: false },
})).json();

// The reference: the same Graph calls, nothing done with the bytes.
const trust = trustingFetch(world.issuer.tls);
const token = await (await trust.fetch(
  `${world.issuer.url}/${world.issuer.tenantId}/oauth2/v2.0/token`,
  {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: clientId,
      client_secret: secret,
      scope: "https://graph.microsoft.com/.default",
    }),
  },
)).json();
const auth = { authorization: `Bearer ${token.access_token}` };

async function reference(): Promise<number> {
  let link: string | null = `${world.graph.graphUrl}/drives/${drive.id}/root/delta`;
  let files = 0;
  while (link) {
    const page: Record<string, unknown> = await (await trust.fetch(link, { headers: auth })).json();
    const items = (page.value as { id: string; file?: unknown }[]).filter((i) => i.file);
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) {
        const it = items[next++];
        const r = await trust.fetch(
          `${world.graph.graphUrl}/drives/${drive.id}/items/${it.id}/content`,
          { headers: auth, redirect: "manual" },
        );
        await r.body?.cancel();
        const d = await trust.fetch(r.headers.get("location")!);
        await d.arrayBuffer();
        files++;
      }
    }));
    link = (page["@odata.nextLink"] as string | undefined) ?? null;
  }
  return files;
}

async function ours(): Promise<number> {
  await edge.api("POST", `/api/v1/admin/saas/tenants/${added.id}/scans`, { full: true });
  await edge.cp.ctx.saas.scanner.idle(added.id);
  const s = edge.cp.store.saasScans.forTenant(added.id)[0];
  if (s.state !== "completed") throw new Error(`scan ${s.state}: ${s.error}`);
  return s.filesScanned;
}

const rates: { ref: number[]; ours: number[] } = { ref: [], ours: [] };
await reference(); // warm the connection pool and the emulator
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of [["ref", reference], ["ours", ours]] as const) {
    const t0 = performance.now();
    const n = await fn();
    const s = (performance.now() - t0) / 1000;
    if (n !== FILES) throw new Error(`${name} saw ${n} files, expected ${FILES}`);
    rates[name].push(n / s);
    console.log(
      `round ${r + 1} ${name.padEnd(4)} ${n} files in ${s.toFixed(2)} s: ${
        (n / s).toFixed(0)
      } files/s`,
    );
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ref = median(rates.ref), mine = median(rates.ours);
console.log(
  `median: reference ${ref.toFixed(0)} files/s, ours ${mine.toFixed(0)} files/s, ratio ${
    (mine / ref).toFixed(2)
  }`,
);
const findings = edge.cp.store.saasScans.forTenant(added.id)[0].findings;
console.log(`findings per full scan: ${findings} (expected ${Math.ceil((FILES - 7) / 100)})`);
trust.close();
await edge.close();
await world.close();
