/**
 * The Data protection pages in headless Chromium. Edge: create dictionaries
 * and a rule with the forms, upload an EDM CSV from a file input, test a
 * LibreOffice DOCX with the test tool, see a connector's signed incident in
 * the list and on its own page with redacted samples only, export, and the
 * same pages in German and French. Connector: the Data protection tab of a
 * running connector whose DLP watches a network share report-only. Every
 * page is photographed into test/output/screenshots/.
 */
import assert from "node:assert/strict";
import { chromium, type Page } from "playwright-core";
import { ConnectorDlp } from "../../src/connector/dlp_agent.ts";
import { createConnectorApp } from "../../src/http/connector_app.ts";
import { createConnectorConsole } from "../../src/http/console/connector_console.tsx";
import { httpEdgeApi } from "../../src/http/edge_client.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { setLogSinks } from "../../src/log.ts";
import { system } from "../http/console/harness.ts";
import { documents, haveLibreOffice } from "../dlp/documents.ts";

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

function serve(
  handler: (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>,
) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  return { server, base: `http://127.0.0.1:${server.addr.port}` };
}

async function shot(page: Page, name: string): Promise<void> {
  const unlabelled = await page.evaluate(`[...document.querySelectorAll(
    "input:not([type=hidden]), select, textarea")]
    .filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label"))
    .map((el) => el.id || el.name)`) as string[];
  assert.deepEqual(unlabelled, [], `unlabelled controls on ${page.url()}`);
  await page.waitForLoadState("networkidle").catch(() => {});
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
}

Deno.test({
  name:
    "DLP console pages in headless Chromium: dictionaries, EDM upload, rules, test tool, incidents; connector tab",
  ignore: !hasChromium || !haveLibreOffice(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await Deno.mkdir(SHOTS, { recursive: true });
    const sys = await system();
    const docs = await documents();
    const edgeSrv = serve((req, info) =>
      sys.edgeConsole.fetch(req, { remoteAddr: info.remoteAddr })
    );
    let connSrv: ReturnType<typeof serve> | null = null;
    let dlp: ConnectorDlp | null = null;
    const userDir = await Deno.makeTempDir({ prefix: "pc-chromium-" });
    const ctx = await chromium.launchPersistentContext(userDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 860 },
      locale: "en-GB",
      acceptDownloads: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
      ],
    });
    try {
      const page = ctx.pages()[0] ?? await ctx.newPage();
      page.setDefaultTimeout(10_000);
      const E = edgeSrv.base;
      await page.goto(`${E}/login`);
      const root = sys.edge.store.users.byUsername("root")!;
      await page.fill("#username", "root");
      await page.fill("#password", "correct horse battery");
      await page.fill("#totp", totpAt(root.totpSecret, sys.edge.clock.now()));
      await page.click("#login-submit");
      await page.waitForSelector("#fleet-stats");

      // ---- Dictionaries: a card dictionary with proximity, an EDM dictionary, a bad pattern ----
      await page.click("#tab-dlp");
      await page.waitForSelector("#incidents-table");
      await page.click("#dlp-nav-dictionaries");
      await page.waitForSelector("#dictionary-form");
      await page.fill("#d-name", "cards");
      await page.selectOption("#d-kind", "credit_card");
      await page.click("#dictionary-save");
      await page.waitForSelector("#dict-cards");
      await page.fill("#d-name", "customers");
      await page.selectOption("#d-kind", "edm");
      await page.fill("#d-mincols", "2");
      await page.click("#dictionary-save");
      await page.waitForSelector("#dict-customers");
      await page.fill("#d-name", "bad");
      await page.selectOption("#d-kind", "regex");
      await page.fill("#d-pattern", "(a)\\1");
      await page.click("#dictionary-save");
      await page.waitForSelector(".flash-bad");
      assert.match(
        await page.textContent(".flash-bad") ?? "",
        /Cannot use the pattern of dictionary "bad"/,
      );
      // EDM: the CSV goes through a real file input; the page says it was not kept.
      const csv = `${sys.dir}/customers.csv`;
      await Deno.writeTextFile(
        csv,
        "name,account\nAlice Martin,AC-11112222\nBruno Schmidt,AC-33334444\n",
      );
      await page.selectOption("#edm-dict", "customers");
      await page.setInputFiles("#edm-file", csv);
      await page.click("#edm-upload");
      await page.waitForSelector(".flash-ok");
      assert.match(
        await page.textContent("#dict-customers") ?? "",
        /2 rows · columns name, account/,
      );
      const stored = JSON.stringify(sys.edge.store.db.all("SELECT * FROM dlp_dictionaries"));
      assert.ok(!stored.includes("AC-11112222") && !stored.includes("Alice"));
      await shot(page, "edge-dlp-dictionaries");

      // ---- Rules: add one with the form, then a second, reorder, disable ----
      await page.click("#dlp-nav-rules");
      await page.waitForSelector("#rule-form");
      await page.fill("#r-name", "No cards on USB");
      await page.check("#r-ch-removable_media");
      await page.check("#r-ch-web_upload");
      await page.check("input[name='dict.cards']");
      await page.selectOption("#r-action", "block");
      await page.click("#rule-add");
      await page.waitForSelector("#rule-No_cards_on_USB");
      await page.fill("#r-name", "Customer records");
      await page.fill("#r-groups", "sales");
      await page.check("#r-ch-network_share");
      await page.check("input[name='dict.customers']");
      await page.selectOption("#r-action", "notify");
      await page.click("#rule-add");
      await page.waitForSelector("#rule-Customer_records");
      await page.click("#rule-Customer_records >> text=Move up");
      await page.waitForSelector(".flash-ok");
      assert.deepEqual(sys.edge.ctx.dlp.rules().map((r) => r.name), [
        "Customer records",
        "No cards on USB",
      ]);
      await shot(page, "edge-dlp-rules");
      // A rule with no channel is refused, with the API's sentence.
      await page.fill("#r-name", "Nothing");
      await page.check("input[name='dict.cards']");
      await page.click("#rule-add");
      await page.waitForSelector(".flash-bad");
      assert.match(await page.textContent(".flash-bad") ?? "", /channels/);

      // ---- Test tool with the LibreOffice DOCX ----
      await page.click("#dlp-nav-test");
      await page.setInputFiles("#t-file", docs.docx);
      await page.selectOption("#t-channel", "removable_media");
      await page.click("#test-run");
      await page.waitForSelector("#test-result");
      assert.match(await page.textContent("#test-action") ?? "", /Block/);
      const result = await page.textContent("#test-result") ?? "";
      assert.match(result, /No cards on USB/);
      assert.match(result, /4111 \*\*\*\* \*\*\*\* 1111/);
      assert.ok(!result.includes("4111 1111 1111 1111"));
      await shot(page, "edge-dlp-test");

      // ---- An incident from a connector (signed device report) ----
      const signer = sys.edge.signer();
      const dev = await sys.edge.enroll({ hostname: "ws-ana", signingPublicKey: signer.publicKey });
      const payload = JSON.stringify({
        reportId: "evt-console-0001",
        deviceId: dev.json.deviceId,
        occurredAt: new Date().toISOString(),
        channel: "removable_media",
        fileName: "/media/ana/USB/refunds.docx",
        fileSha256: "ab".repeat(32),
        fileSize: 9123,
        fileType: "docx",
        rule: "No cards on USB",
        action: "block",
        outcome: "quarantined",
        matches: [{
          dictionary: "cards",
          kind: "credit_card",
          count: 5,
          samples: ["4111 **** **** 1111", "5555 **** **** 4444"],
          triggered: true,
        }],
      });
      const res = await sys.edge.req("POST", "/api/v1/dlp/incidents", {
        payload,
        signature: signer.sign("portcullis-dlp-incident-v1\n" + payload),
      }, dev.headers);
      assert.equal(res.status, 201);
      await page.click("#dlp-nav-incidents");
      await page.waitForSelector("#incidents-table >> text=refunds.docx");
      assert.match(await page.textContent("#incidents-table") ?? "", /4111 \*\*\*\* \*\*\*\* 1111/);
      await shot(page, "edge-dlp-incidents");
      await page.click("#incidents-table >> text=Details");
      await page.waitForSelector("#incident-detail");
      assert.match(await page.textContent("#incident-detail") ?? "", /Blocked \(quarantined\)/);
      assert.match(
        await page.textContent("#incident-matches") ?? "",
        /5555 \*\*\*\* \*\*\*\* 4444/,
      );
      await shot(page, "edge-dlp-incident");

      // ---- German and French ----
      await page.selectOption("#lang-select", "de");
      await page.waitForSelector("text=DLP-Vorfall");
      await shot(page, "edge-dlp-incident-de");
      await page.selectOption("#lang-select", "fr");
      await page.waitForSelector("text=Incident DLP");
      await page.click("#dlp-nav-rules");
      await page.waitForSelector("text=Supports amovibles");
      await shot(page, "edge-dlp-rules-fr");
      await page.selectOption("#lang-select", "en");

      // ---- Connector: the Data protection tab ----
      const { connector } = await sys.startConnectorWithKey();
      const share = await Deno.makeTempDir({ prefix: "pcl-share-" });
      const mountinfo = `${sys.dir}/mountinfo`;
      await Deno.writeTextFile(
        mountinfo,
        `36 35 0:52 / ${share} rw,relatime shared:20 - cifs //files.corp.example/finance rw,vers=3.1.1\n`,
      );
      dlp = new ConnectorDlp(
        {
          store: connector.store,
          identity: connector.identity,
          hub: connector.hub,
          edge: httpEdgeApi({ fetch: (req) => Promise.resolve(sys.edge.app.request(req)) }),
        },
        {
          mode: "report_only",
          refreshSec: 3600,
          dataDir: `${sys.dir}/connector`,
          endpoint: { mountinfoPath: mountinfo, rescanMs: 200, settleMs: 200 },
        },
      );
      // The device is in group "sales", so the customer-records rule applies to it too.
      sys.edge.store.db.run(
        "UPDATE devices SET group_name = 'sales' WHERE hostname = 'ws-console'",
      );
      dlp.start();
      await dlp.refresh();
      const api = createConnectorApp({
        engine: connector.engine,
        hub: connector.hub,
        store: connector.store,
        dlp,
      });
      const ui = createConnectorConsole({
        engine: connector.engine,
        api,
        hub: connector.hub,
        store: connector.store,
        version: "0.1.0",
        logs: sys.ring,
        dlp,
      });
      connSrv = serve((req) => ui.fetch(req));
      const cpage = await ctx.newPage();
      cpage.setDefaultTimeout(10_000);
      await cpage.goto(`${connSrv.base}/data-protection`);
      await cpage.waitForSelector('#dlp-mounts >> text="//files.corp.example/finance"');
      assert.match(await cpage.textContent("#dlp-mode") ?? "", /Report-only/);
      assert.match(await cpage.textContent("#dlp-mounts") ?? "", /Network share/);
      assert.match(await cpage.textContent("#dlp-rules") ?? "", /Customer records/);
      assert.match(await cpage.textContent("#dlp-printing") ?? "", /Not covered/);
      // A copy to the share with protected records is reported (the rule notifies).
      await Deno.writeTextFile(`${share}/list.txt`, "Alice Martin AC-11112222\n");
      await dlp.refresh();
      for (
        let i = 0;
        i < 100 && !connector.store.listNotifications({ type: "dlp_reported" }).length;
        i++
      ) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(connector.store.listNotifications({ type: "dlp_reported" }).length, 1);
      await cpage.reload();
      await cpage.waitForSelector("#dlp-events");
      assert.match(
        await cpage.textContent("#dlp-events") ?? "",
        /list\.txt copied to .* was reported: rule “Customer records” found sensitive data \(count: 1\)/,
      );
      await shot(cpage, "connector-dlp");
      await cpage.selectOption("#lang-select", "de");
      await cpage.waitForSelector("text=Nur melden");
      await shot(cpage, "connector-dlp-de");
      await Deno.remove(share, { recursive: true }).catch(() => {});
    } finally {
      await dlp?.stop();
      await ctx.close().catch(() => {});
      await edgeSrv.server.shutdown();
      await connSrv?.server.shutdown();
      await sys.close();
      await Deno.remove(userDir, { recursive: true }).catch(() => {});
    }
  },
});
