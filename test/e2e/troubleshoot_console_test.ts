/**
 * The connector console's troubleshooting actions in headless Chromium,
 * against a real connector and edge in namespaces (test/e2e/roles.ts).
 * Chromium itself runs inside the connector's namespace (a wrapper script
 * around `ip netns exec`), so the console is reached on 127.0.0.1 exactly
 * as a user of that host reaches it. Repair App: break a route and the
 * nftables table, press the button, read the report, see both back.
 * Restart Service: the process is replaced (a new pid answers), the page
 * waits for it, and the tunnel comes back.
 * Every page is photographed into test/output/screenshots/.
 */
import assert from "node:assert/strict";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { EDGE_IP, type Roles, startRoles } from "./roles.ts";
import { CONNECTOR_NFT_TABLE } from "../../src/connector/tunnel.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
const SHOTS = new URL("../output/screenshots/", import.meta.url).pathname;
const CONSOLE = "http://127.0.0.1:9080";

/** Chromium started inside `ns`, driven over its pipe like any other. */
async function browserIn(r: Roles): Promise<BrowserContext> {
  const wrapper = `${r.dir}/chromium-in-ns.sh`;
  await Deno.writeTextFile(
    wrapper,
    `#!/bin/sh\nexec ip netns exec ${r.connNs} ${CHROMIUM} "$@"\n`,
    { mode: 0o755 },
  );
  const userDir = await Deno.makeTempDir({ prefix: "pc-chromium-" });
  r.lab.defer(() => Deno.remove(userDir, { recursive: true }));
  const ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: wrapper,
    headless: true,
    viewport: { width: 1280, height: 900 },
    locale: "en-GB",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  r.lab.defer(() => ctx.close().catch(() => {}));
  return ctx;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.waitForLoadState("networkidle").catch(() => {});
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
}

Deno.test({
  name: "connector console in Chromium: Repair App, Restart Service",
  ignore: !canUseNetns || !hasChromium,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await Deno.mkdir(SHOTS, { recursive: true });
    await using lab = new NetnsLab("trbl");
    const r = await startRoles(lab, {
      enroll: true,
      resolvConf: `nameserver ${EDGE_IP}\n`,
      connectorArgs: ["--gateway"],
    });
    const ns = (cmd: string[]) => r.inNs(r.connNs, cmd);
    const routes = async () => {
      const out = (await ns(["ip", "-j", "route", "show", "dev", r.connTun])).stdout;
      return JSON.parse(out || "[]") as { dst: string; protocol?: string }[];
    };
    const table = async () =>
      (await ns(["nft", "list", "table", "inet", CONNECTOR_NFT_TABLE])).stdout;
    try {
      const ctx = await browserIn(r);
      const page = ctx.pages()[0] ?? await ctx.newPage();
      page.setDefaultTimeout(15_000);
      await page.goto(`${CONSOLE}/more`);
      await page.waitForSelector("#repair-app");

      const victim = (await routes()).find((x) => x.protocol !== "kernel")!.dst;
      const tableBefore = await table();
      await ns(["ip", "route", "del", victim, "dev", r.connTun]);
      await ns(["nft", "flush", "table", "inet", CONNECTOR_NFT_TABLE]);

      await page.click("#repair-app");
      await page.waitForSelector('#repair-routes[data-status="repaired"]');
      await page.waitForSelector('#repair-nftables[data-status="repaired"]');
      assert.match(await page.textContent("#repair-routes") ?? "", /Repaired/);
      assert.match(await page.textContent("#repair-routes") ?? "", new RegExp(victim));
      for (const id of ["tun", "resolv_conf", "ca_trust", "state_db"]) {
        assert.equal(await page.getAttribute(`#repair-${id}`, "data-status"), "ok", id);
      }
      assert.ok((await routes()).some((x) => x.dst === victim), "the route is back");
      assert.equal(await table(), tableBefore);
      await shot(page, "connector-repair");

      // The same page in German and French.
      await page.selectOption("#lang-select", "de");
      await page.waitForSelector("#repair-app >> text=App reparieren");
      assert.match(await page.textContent("#repair-table") ?? "", /Tunnel-Routen/);
      await shot(page, "connector-repair-de");
      await page.selectOption("#lang-select", "fr");
      await page.waitForSelector("#repair-app >> text=Réparer l'application");
      assert.match(await page.textContent("#repair-table") ?? "", /Routes du tunnel/);
      await shot(page, "connector-repair-fr");
      await page.selectOption("#lang-select", "en");
      await page.waitForSelector("#repair-app >> text=Repair App");

      // ---- Restart Service: a new process, and the tunnel comes back ----
      const oldPid = r.connector.pid;
      const statusBefore = await r.connectorStatus();
      assert.equal(statusBefore.pid, oldPid);
      await page.click("#restart-service");
      // The waiting page, then (console.js) the More tab of the new process.
      await page.waitForSelector(`[data-restart-from-pid="${oldPid}"]`, { state: "attached" });
      const exited = await r.connector.status;
      assert.equal(exited.code, 0, "the old process exits cleanly");
      await page.waitForURL(/\/more\?msg=restarted/, { timeout: 40_000 });
      await page.waitForSelector("#restart-service");
      const after = await r.connectorStatus();
      assert.notEqual(after.pid, oldPid, "a new process answers");
      assert.ok(Number(after.pid) > 0);
      await waitUntil("the tunnel to come back after the restart", async () => {
        const s = await r.connectorStatus();
        if (s.state !== "connected") return false;
        const g = await ns(["getent", "ahostsv4", "protected.portcullis.internal"]);
        return g.code === 0;
      }, 30_000);
      const log = await Deno.readTextFile(`${r.dir}/conn.log`);
      assert.match(log, new RegExp(`"previousPid":${oldPid}`));
      await shot(page, "connector-restarted");
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await r.logs()}`);
    }
  },
});
