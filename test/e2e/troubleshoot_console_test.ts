/**
 * The connector console's troubleshooting actions in headless Chromium,
 * against a real connector and edge in namespaces (test/e2e/roles.ts).
 * Chromium itself runs inside the connector's namespace (a wrapper script
 * around `ip netns exec`), so the console is reached on 127.0.0.1 exactly
 * as a user of that host reaches it. Repair App: break a route and the
 * nftables table, press the button, read the report, see both back.
 * Logs: the policy's log mode sets the level of the files in the data
 * directory, Export Logs carries them (no secrets), Clear Logs empties them.
 * Restart Service: the process is replaced (a new pid answers), the page
 * waits for it, and the tunnel comes back.
 * Every page is photographed into test/output/screenshots/.
 */
import assert from "node:assert/strict";
import type { BrowserContext } from "playwright-core";
import { canUseNetns, NetnsLab, waitUntil } from "./netns.ts";
import { CHROMIUM, hasChromium, launchBrowser, shot, SHOTS } from "./browser.ts";
import {
  adminCall,
  adminLogin,
  connectorTable,
  EDGE_IP,
  type Roles,
  startRoles,
  tunnelRoutes,
} from "./roles.ts";
import { unzipSync } from "fflate";
import { CONNECTOR_NFT_TABLE } from "../../src/connector/tunnel.ts";

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
  const ctx = await launchBrowser(userDir, { executablePath: wrapper });
  r.lab.defer(() => ctx.close().catch(() => {}));
  return ctx;
}

Deno.test({
  name: "connector console in Chromium: Repair App, log files (export, clear), Restart Service",
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
    const routes = () => tunnelRoutes(r);
    const table = () => connectorTable(r);
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
      assert.match(await page.textContent("#repair-routes") ?? "", /wieder hinzugefügt: /);
      await shot(page, "connector-repair-de");
      await page.selectOption("#lang-select", "fr");
      await page.waitForSelector("#repair-app >> text=Réparer l'application");
      assert.match(await page.textContent("#repair-table") ?? "", /Routes du tunnel/);
      assert.match(await page.textContent("#repair-routes") ?? "", /rajoutée\(s\) : /);
      await shot(page, "connector-repair-fr");
      await page.selectOption("#lang-select", "en");
      await page.waitForSelector("#repair-app >> text=Repair App");

      // ---- Logs on disk: level from the policy, in the export, cleared ----
      const logFile = `${r.dir}/conn/logs/connector.log`;
      const { jar, csrf } = await adminLogin(r);
      const put = await adminCall(r, { jar, csrf }, "PUT", "/api/v1/admin/policy/app-profiles", {
        items: [{ name: "debugging", forwarding: { name: "fp" }, logMode: "debug" }],
      }) as { items?: unknown[] };
      assert.ok(put.items, `policy update: ${JSON.stringify(put)}`);
      await waitUntil("the policy's log mode to reach the log file", async () => {
        const text = await Deno.readTextFile(logFile);
        return /"level":"debug"/.test(text) &&
          /Log level set by the policy's log mode","mode":"debug"/.test(text);
      }, 20_000);
      const onDisk = await Deno.readTextFile(logFile);
      assert.match(onDisk, /Tunnel configured/);
      const enrolKey = (await Deno.readTextFile(`${r.dir}/conn.key`)).trim();
      const secrets: (string | RegExp)[] = [enrolKey, /pcd_[A-Za-z0-9_-]{16,}/, /PRIVATE KEY/];
      const noSecrets = (text: string, where: string) => {
        for (const s of secrets) {
          assert.ok(
            typeof s === "string" ? !text.includes(s) : !s.test(text),
            `${String(s).slice(0, 20)} in ${where}`,
          );
        }
      };
      noSecrets(onDisk, "connector.log");
      await page.goto(`${CONSOLE}/more`);
      const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#export-logs")]);
      const zip = unzipSync(await Deno.readFile((await dl.path())!));
      assert.ok(zip["logs/connector.log"], `bundle parts: ${Object.keys(zip)}`);
      const exported = new TextDecoder().decode(zip["logs/connector.log"]);
      assert.match(exported, /Tunnel configured/);
      for (const [name, bytes] of Object.entries(zip)) {
        noSecrets(new TextDecoder().decode(bytes), name);
      }
      // The edge's log file, in its diagnostics bundle, without secrets either.
      const edgeLog = await Deno.readTextFile(`${r.dir}/edge/logs/edge.log`);
      assert.match(edgeLog, /Peer handshake complete/);
      const adminPassword = (await Deno.readTextFile(`${r.dir}/edge/initial-admin.txt`))
        .match(/password: (\S+)/)![1];
      secrets.push(adminPassword);
      noSecrets(edgeLog, "edge.log");
      const diagZip = `${r.dir}/diagnostics.zip`;
      const diag = await r.inNs(r.edgeNs, [
        "curl",
        "-s",
        "-o",
        diagZip,
        "-w",
        "%{http_code}",
        "--cacert",
        r.ca,
        "-b",
        jar,
        `https://${EDGE_IP}:8443/api/v1/admin/diagnostics`,
      ]);
      assert.equal(diag.stdout, "200");
      const edgeZip = unzipSync(await Deno.readFile(diagZip));
      assert.match(new TextDecoder().decode(edgeZip["logs/edge.log"]), /Peer handshake complete/);
      for (const [name, bytes] of Object.entries(edgeZip)) {
        noSecrets(new TextDecoder().decode(bytes), `edge ${name}`);
      }

      await page.click("#clear-logs");
      await page.waitForSelector("text=Logs cleared");
      const cleared = await Deno.readTextFile(logFile);
      assert.doesNotMatch(cleared, /Tunnel configured/);
      assert.match(cleared, /logs cleared from the console/);
      await shot(page, "connector-logs-cleared");

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
