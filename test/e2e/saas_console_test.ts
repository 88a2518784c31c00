/**
 * The "SaaS application tenants" console page in headless Chromium, end to
 * end against a real edge (control plane on a data directory) whose SaaS
 * side talks to the local Entra-shaped issuer and the Graph emulator over
 * HTTPS: log in; add a OneDrive tenant — admin consent through the
 * issuer's adminconsent page and back through /saas/consent, then the
 * secret and Authorize — which comes out Validation Failed naming the two
 * missing permissions and the actions they disable; Reauthorize once they
 * are granted; scan and see the findings; a SharePoint key file that does
 * not match its certificate refused, the right one accepted; a consent
 * redirect with a foreign state refused; the same pages in German and
 * French. No page ever holds the client secret. Every page is labelled and
 * photographed into test/output/screenshots/.
 */
import assert from "node:assert/strict";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { createUser } from "../../src/identity/users.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { createEdgeConsole } from "../../src/http/console/edge_console.tsx";
import { setLogSinks } from "../../src/log.ts";
import { register, saasWorld, startEdge, TENANT } from "../saas/harness.ts";
import { sharePointKeyFile } from "../saas/issuer.ts";

setLogSinks([]);

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
const SHOTS = new URL("../output/screenshots/", import.meta.url).pathname;

const ONEDRIVE = {
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

async function assertLabelled(page: Page): Promise<void> {
  const unlabelled = await page.evaluate(`[...document.querySelectorAll(
    "input:not([type=hidden]), select, textarea")]
    .filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label"))
    .map((el) => el.id || el.name)`) as string[];
  assert.deepEqual(unlabelled, [], `unlabelled controls on ${page.url()}`);
}

Deno.test({
  name:
    "saas console e2e: add, consent, validate, reauthorize, scan, refusals, three languages in Chromium",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await Deno.mkdir(SHOTS, { recursive: true });
    const world = await saasWorld();
    const edge = await startEdge(world, `${world.dir}/edge`);
    const password = "correct horse battery staple";
    const user = await createUser(edge.cp.store, edge.cp.ctx.clock, {
      username: "saasadmin",
      password,
      role: "admin",
    }, { N: 1024, r: 8, p: 1 });
    const ui = createEdgeConsole({
      api: edge.app,
      notifier: edge.cp.notifier,
      sseKeepaliveMs: 1000,
    });
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req, info) => ui.fetch(req, { remoteAddr: info.remoteAddr }),
    );
    const E = `http://127.0.0.1:${server.addr.port}`;
    const userDir = await Deno.makeTempDir({ prefix: "pc-chromium-" });
    let ctx: BrowserContext | null = null;
    const SECRET = "Ui~Console.Secret_0123456789abcdefghijklm";
    const pages: string[] = [];
    try {
      // The tenant's drive, with one file a DLP rule blocks.
      const drive = world.graph.addUser("lee@contoso.test")!;
      world.graph.addItem(drive, "payroll.txt", "Card on file: 4111 1111 1111 1111");
      world.graph.addItem(drive, "menu.txt", "Soup of the day");
      await edge.api("PUT", "/api/v1/admin/dlp/dictionaries/cards", { kind: "credit_card" });
      await edge.api("PUT", "/api/v1/admin/dlp/rules", {
        items: [{
          name: "Cards at rest",
          channels: ["saas_at_rest"],
          dictionaries: ["cards"],
          action: "block",
        }],
      });
      const clientId = "0a0a0a0a-1111-4222-8333-444444444444";
      register(world, clientId, SECRET, {
        ...ONEDRIVE,
        graph: ONEDRIVE.graph.filter((r) =>
          r !== "Sites.ReadWrite.All" && r !== "Files.ReadWrite.All"
        ),
      });

      ctx = await chromium.launchPersistentContext(userDir, {
        executablePath: CHROMIUM,
        headless: true,
        viewport: { width: 1280, height: 900 },
        locale: "en-GB",
        ignoreHTTPSErrors: true,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
      const page = ctx.pages()[0] ?? await ctx.newPage();
      page.setDefaultTimeout(15_000);
      const shot = async (name: string) => {
        await assertLabelled(page);
        await page.waitForLoadState("networkidle").catch(() => {});
        pages.push(await page.content());
        await page.screenshot({ path: `${SHOTS}saas-${name}.png`, fullPage: true });
      };

      // Log in.
      await page.goto(`${E}/saas`);
      await page.fill("#username", "saasadmin");
      await page.fill("#password", password);
      await page.fill("#totp", totpAt(user.totpSecret, Date.now()));
      await page.click("#login-submit");
      await page.waitForSelector("#saas-tenants");
      assert.match(
        await page.textContent("#saas-tenants") ?? "",
        /No SaaS application tenants yet/,
      );
      await shot("list-empty");

      // Add: application and IDs, then admin consent at the issuer and back.
      await page.click("#saas-add");
      await page.waitForSelector("#saas-new-form");
      await page.selectOption("#f-app", "onedrive");
      await page.fill("#f-name", "Contoso OneDrive");
      await page.fill("#f-tenant", TENANT);
      await page.fill("#f-client", clientId);
      assert.equal(await page.textContent("#redirect-uri"), `${E}/saas/consent`);
      await shot("new");
      world.issuer.consentAnswer = "grant";
      await Promise.all([page.waitForURL(/\/saas\/new\?consent=/), page.click("#saas-consent")]);
      assert.match(
        await page.textContent("main") ?? "",
        /Admin consent was granted for “Contoso OneDrive”/,
      );
      assert.equal(await page.inputValue("#f-name"), "Contoso OneDrive");
      assert.equal(await page.inputValue("#f-client"), clientId);
      // Then the secret, its expiry, remediation, Authorize.
      await page.fill("#f-secret", SECRET);
      const soon = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);
      await page.fill("#f-expires", soon);
      await page.check("#f-quarantine");
      await page.check("#f-unshare");
      await shot("new-consented");
      await Promise.all([
        page.waitForURL(/\/saas\/saas_[0-9a-f]+\?msg=failed_saved/),
        page.click("#saas-authorize"),
      ]);
      assert.match(await page.textContent("#saas-status") ?? "", /Validation Failed/);
      const missing = await page.textContent("#missing-table") ?? "";
      assert.match(missing, /Sites\.ReadWrite\.All/);
      assert.match(missing, /Files\.ReadWrite\.All/);
      assert.match(missing, /Quarantine/);
      assert.match(
        await page.textContent("#disabled-actions") ?? "",
        /Scanning.*Quarantine|Quarantine.*Scanning/,
      );
      assert.match(await page.textContent("#secret-expiry") ?? "", /Expires soon/);
      await shot("failed");
      const tenantUrl = page.url().replace(/\?.*$/, "");

      // Granted in Entra: Reauthorize.
      register(world, clientId, SECRET, ONEDRIVE);
      await Promise.all([page.waitForURL(/msg=reauthorized/), page.click("#saas-reauthorize-btn")]);
      assert.match(await page.textContent("#saas-status") ?? "", /Validation Successful/);
      assert.match(await page.textContent("#missing-none") ?? "", /Every permission/);
      await shot("successful");

      // Scan: the card refreshes until the scan is done; the finding is listed.
      await Promise.all([page.waitForURL(/msg=scan_started/), page.click("#saas-scan")]);
      await page.waitForSelector("#scans-table tbody tr:not(.empty) >> text=Completed", {
        timeout: 20_000,
      });
      await page.reload();
      const findings = await page.textContent("#findings-table") ?? "";
      assert.match(findings, /payroll\.txt/);
      assert.doesNotMatch(findings, /menu\.txt/);
      assert.match(findings, /quarantined, sharing links removed|quarantined/i);
      await shot("scanned");

      // The list shows the tenant with its flags.
      await page.goto(`${E}/saas`);
      assert.match(
        await page.textContent("#saas-tenants") ?? "",
        /Contoso OneDrive.*Validation Successful/s,
      );
      await shot("list");

      // Bad input in the form: a tenant ID that is not a GUID, a secret the issuer rejects.
      await page.goto(`${E}/saas/new`);
      await page.selectOption("#f-app", "exchange");
      await page.fill("#f-name", "Contoso Exchange");
      await page.fill("#f-tenant", "contoso.onmicrosoft.com");
      await page.fill("#f-client", clientId);
      await page.fill("#f-secret", SECRET);
      await page.click("#saas-authorize");
      await page.waitForSelector(".flash-bad");
      assert.match(await page.textContent(".flash-bad") ?? "", /tenantId: expected a GUID/);
      await page.fill("#f-tenant", TENANT);
      await page.fill("#f-secret", "Not~The.Secret_000000000000000000000000");
      await page.click("#saas-authorize");
      await page.waitForSelector(".flash-bad >> text=AADSTS7000215");
      assert.match(
        await page.textContent(".flash-bad") ?? "",
        /refused its client secret for Microsoft Graph/,
      );
      await shot("rejected-secret");
      assert.equal(edge.cp.store.saasTenants.list().length, 1, "nothing half-saved");

      // SharePoint: a key file that does not match its certificate, then the right one.
      const key = await sharePointKeyFile("sp-console");
      const wrong = await sharePointKeyFile("sp-wrong");
      const spClient = "0b0b0b0b-1111-4222-8333-444444444444";
      register(world, spClient, SECRET, ONEDRIVE, key.certPem);
      const badFile = `${world.dir}/bad-key.json`;
      const goodFile = `${world.dir}/good-key.json`;
      await Deno.writeTextFile(
        badFile,
        JSON.stringify({ private_key: wrong.keyPem, public_cert: key.certPem }),
      );
      await Deno.writeTextFile(goodFile, key.json);
      await page.goto(`${E}/saas/new`);
      await page.selectOption("#f-app", "sharepoint");
      await page.fill("#f-name", "Contoso SharePoint");
      await page.fill("#f-tenant", TENANT);
      await page.fill("#f-client", spClient);
      await page.fill("#f-secret", SECRET);
      await page.setInputFiles("#f-key", badFile);
      await page.click("#saas-authorize");
      await page.waitForSelector(".flash-bad");
      assert.match(
        await page.textContent(".flash-bad") ?? "",
        /private key does not belong to the certificate/,
      );
      assert.equal(
        await page.inputValue("#f-name"),
        "Contoso SharePoint",
        "the form keeps what was typed",
      );
      assert.equal(await page.inputValue("#f-secret"), "", "but never the secret");
      await shot("sharepoint-bad-key");
      await page.fill("#f-secret", SECRET);
      await page.setInputFiles("#f-key", goodFile);
      await Promise.all([page.waitForURL(/msg=added/), page.click("#saas-authorize")]);
      assert.match(await page.textContent("#saas-status") ?? "", /Validation Successful/);
      assert.match(await page.textContent("#tenant-detail") ?? "", /CN=sp-console/);
      assert.match(
        await page.textContent("#permissions-source") ?? "",
        /lists no permissions for SharePoint/,
      );
      await shot("sharepoint");

      // A consent answer whose state this edge did not issue.
      const res = await page.goto(
        `${E}/saas/consent?admin_consent=True&tenant=${TENANT}&state=add-saas-tenant%2FContoso%2F${
          "A".repeat(43)
        }`,
      );
      assert.equal(res?.status(), 400);
      assert.match(
        await page.textContent("main") ?? "",
        /was refused: .*its state is unknown|not issued by this edge/,
      );
      await shot("consent-refused");

      // German and French.
      for (
        const [lang, status, title] of [
          ["de", /Validierung erfolgreich/, /SaaS-Anwendungsmandanten/],
          ["fr", /Validation réussie/, /Locataires d’applications SaaS/],
        ] as const
      ) {
        await page.goto(
          `${E}/lang?lang=${lang}&next=${encodeURIComponent(new URL(tenantUrl).pathname)}`,
        );
        assert.match(await page.textContent("#saas-status") ?? "", status);
        await shot(`tenant-${lang}`);
        await page.goto(`${E}/saas`);
        assert.match(await page.textContent("main") ?? "", title);
        await shot(`list-${lang}`);
      }

      for (const html of pages) {
        assert.ok(!html.includes(SECRET), "no page holds the client secret");
      }
    } finally {
      await ctx?.close();
      await server.shutdown();
      await edge.close();
      await world.close();
      await Deno.remove(userDir, { recursive: true }).catch(() => {});
    }
  },
});
