/**
 * Both consoles in headless Chromium, driven by playwright-core: log in to
 * the edge with TOTP, watch a device appear as it enrols, read the
 * connector's status, press Update Policy and see the notification arrive
 * live, capture ICMP packets and read the pcap with tshark, export logs
 * (unzip -t, no secrets), report an issue, switch language. Every page is
 * photographed into test/output/screenshots/.
 */
import assert from "node:assert/strict";
import type { BrowserContext } from "playwright-core";
import { totpAt } from "../../src/identity/totp.ts";
import { buildIcmpEcho } from "../../src/packet/build.ts";
import { setLogSinks } from "../../src/log.ts";
import { system, waitFor } from "../http/console/harness.ts";
import { hasChromium, launchBrowser, serve, shot, SHOTS } from "./browser.ts";

setLogSinks([]);

/**
 * The page's live stream is open. A selector, not waitForFunction: Playwright
 * polls a function with `new Function` in the page, which the consoles' CSP
 * (no 'unsafe-eval') refuses whenever the first check is not already true.
 */
const LIVE_OPEN = 'html[data-live-state="open"]';

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  return {
    ok: o.success,
    out: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr),
  };
}

Deno.test({
  name: "console e2e: edge and connector consoles in headless Chromium",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await Deno.mkdir(SHOTS, { recursive: true });
    const sys = await system();
    const edgeSrv = serve((req, info) =>
      sys.edgeConsole.fetch(req, { remoteAddr: info.remoteAddr })
    );
    let connSrv: ReturnType<typeof serve> | null = null;
    const userDir = await Deno.makeTempDir({ prefix: "pc-chromium-" });
    let ctx: BrowserContext | null = null;
    try {
      ctx = await launchBrowser(userDir);
      const page = ctx.pages()[0] ?? await ctx.newPage();
      page.setDefaultTimeout(10_000);
      const E = edgeSrv.base;

      // ---- Edge: log in with password and TOTP ----
      await page.goto(`${E}/`);
      assert.match(page.url(), /\/login/);
      await shot(page, "edge-login");
      const root = sys.edge.store.users.byUsername("root")!;
      // Keyboard only: the username field has focus, Tab moves on, Enter submits.
      assert.equal(await page.evaluate("document.activeElement.id"), "username");
      await page.keyboard.type("root");
      await page.keyboard.press("Tab");
      await page.keyboard.type("correct horse battery");
      await page.keyboard.press("Tab");
      await page.keyboard.type(totpAt(root.totpSecret, sys.edge.clock.now()));
      await page.keyboard.press("Enter");
      await page.waitForSelector("#fleet-stats");
      assert.match(await page.textContent("header.topbar") ?? "", /root/);

      // Some fleet for the dashboard, enrolled through the real API.
      const fleet = [
        { hostname: "laptop-ana", os: "windows", osVersion: "11 23H2", connectorVersion: "0.1.0" },
        { hostname: "build-01", os: "linux", osVersion: "Debian 13", connectorVersion: "0.1.0" },
        { hostname: "mac-jo", os: "macos", osVersion: "14.5", connectorVersion: "0.0.9" },
      ];
      for (const d of fleet) {
        const e = await sys.edge.enroll(d);
        sys.edge.tunnel.stats.set(e.body.wgPublicKey, {
          rxBytes: 40_000_000 + Math.floor(Math.random() * 9e8),
          txBytes: 3_000_000 + Math.floor(Math.random() * 9e7),
          lastHandshake: d.hostname === "mac-jo" ? null : Date.now() - 20_000,
          transport: d.hostname === "build-01" ? "tls" : "udp",
          endpoint: "198.51.100.7:443",
        });
      }

      // ---- Devices: a device appears as it enrols, without reloading ----
      await page.click("#tab-devices");
      await page.waitForSelector("#devices-table");
      await page.evaluate(() => ((globalThis as any).__noReload = true));
      await page.waitForSelector(LIVE_OPEN, { state: "attached" });
      const { ui, connector, key } = await sys.startConnectorWithKey();
      await page.waitForSelector("#devices-table >> text=ws-console", { timeout: 10_000 });
      assert.equal(await page.evaluate(() => (globalThis as any).__noReload), true);
      await shot(page, "edge-devices");

      await page.click("#devices-table >> text=laptop-ana");
      await page.waitForSelector("#device-fingerprint");
      await shot(page, "edge-device");

      // ---- Connector console ----
      connSrv = serve((req) => ui.fetch(req));
      const C = connSrv.base;
      const cpage = await ctx.newPage();
      cpage.setDefaultTimeout(10_000);
      sys.tunnel.rxBytes = 12_582_912;
      sys.tunnel.txBytes = 2_411_724;
      await cpage.goto(`${C}/`);
      await cpage.waitForSelector("#internet-status");
      assert.match(await cpage.textContent("#service-state") ?? "", /Connected/);
      assert.equal((await cpage.textContent("#transport"))?.trim(), "UDP");
      assert.match(await cpage.textContent("#internet-status") ?? "", /12 MiB/);
      assert.ok((await cpage.textContent("#internet-status"))!.includes(
        connector.engine.status().deviceAddress!,
      ));
      await shot(cpage, "connector-internet-security");

      await cpage.click("#tab-private");
      await cpage.waitForSelector("#private-card");
      assert.match(await cpage.textContent("#auth-state") ?? "", /Authenticated/);
      assert.equal(await cpage.$("#segment-list"), null, "no segment before the update");

      // ---- Update Policy: the notification arrives without reloading ----
      await cpage.click("#tab-more");
      await cpage.waitForSelector("#update-policy");
      await cpage.waitForSelector(LIVE_OPEN, { state: "attached" });
      await cpage.evaluate(() => ((globalThis as any).__noReload = true));
      const oldVersion = connector.engine.status().policyVersion;
      // The admin changes the policy only now, while this page is live: the
      // connector may hear of it through its policy stream before the button
      // is pressed, and either way the notification must arrive here.
      // A segment and client-to-client, so Private Access has something to show after the update.
      // A device's bundle holds only segments a rule could allow it: the rule comes first.
      const rule = await sys.edge.adminReq("PUT", "/api/v1/admin/policy/access-rules", {
        items: [{ name: "everyone", segments: ["intranet", "git"] }],
      });
      assert.equal(rule.status, 200);
      const seg = await sys.edge.adminReq("PUT", "/api/v1/admin/policy/segments", {
        items: [
          {
            name: "intranet",
            domains: ["intra.corp.example"],
            cidrs: ["10.20.0.0/16"],
            ports: ["443"],
          },
          { name: "git", domains: ["git.corp.example"], ports: ["22", "443"] },
        ],
      });
      assert.equal(seg.status, 200);
      await cpage.click("#update-policy");
      await cpage.waitForSelector("#toasts .toast >> text=Policy updated to version");
      assert.equal(await cpage.evaluate(() => (globalThis as any).__noReload), true);
      assert.notEqual(connector.engine.status().policyVersion, oldVersion);
      await cpage.waitForSelector(
        "#policy-version >> text=" + connector.engine.status().policyVersion,
      );

      // ---- Packet capture with real ICMP packets through the tap ----
      await cpage.click("#capture-start");
      await cpage.waitForSelector("#capture-stop");
      for (let seq = 1; seq <= 5; seq++) {
        sys.pump.push(
          "out",
          buildIcmpEcho({ src: "100.64.0.2", dst: "100.64.0.1", ident: 77, seq }),
        );
        sys.pump.push(
          "in",
          buildIcmpEcho({
            src: "100.64.0.1",
            dst: "100.64.0.2",
            ident: 77,
            seq,
            kind: "reply",
          }),
        );
      }
      await cpage.click("#capture-stop");
      await cpage.waitForSelector(".capture-download");
      await shot(cpage, "connector-more");
      const [pcapDl] = await Promise.all([
        cpage.waitForEvent("download"),
        cpage.click(".capture-download"),
      ]);
      const pcapPath = `${sys.dir}/download.pcap`;
      await pcapDl.saveAs(pcapPath);
      const ts = await run("tshark", [
        "-r",
        pcapPath,
        "-Y",
        "icmp",
        "-T",
        "fields",
        "-e",
        "icmp.type",
        "-e",
        "icmp.seq",
      ]);
      assert.ok(ts.ok, ts.out);
      const rows = ts.out.trim().split("\n").filter((l) => /^\d/.test(l));
      assert.equal(rows.length, 10, ts.out);
      assert.deepEqual(rows[0].split("\t"), ["8", "1"]);
      assert.deepEqual(rows[9].split("\t"), ["0", "5"]);

      // ---- Export logs: a valid zip with no secret inside ----
      const [zipDl] = await Promise.all([
        cpage.waitForEvent("download"),
        cpage.click("#export-logs"),
      ]);
      const zipPath = `${sys.dir}/export.zip`;
      await zipDl.saveAs(zipPath);
      const test = await run("unzip", ["-t", zipPath]);
      assert.ok(test.ok, test.out);
      assert.match(test.out, /No errors detected/);
      const listing = await run("unzip", ["-l", zipPath]);
      assert.match(listing.out, /logs\.jsonl/);
      assert.match(listing.out, /captures\/cap-.*\.pcap/);
      const dump = await run("unzip", ["-p", zipPath]);
      const secrets = [
        key,
        key.slice(4, 40),
        connector.identity.wgPrivateKey,
        connector.identity.credential!,
        root.totpSecret,
      ];
      for (const s of secrets) assert.ok(!dump.out.includes(s), "a secret leaked into the export");

      // ---- Report an issue: it reaches the edge's support page ----
      await cpage.fill("#report-message", "Video calls drop every few minutes since this morning.");
      await cpage.click("#report-send");
      await cpage.waitForSelector(".flash-ok");
      await waitFor("the support request", () => sys.edge.store.support.list().length === 1);

      // Live feed on the Notifications tab: a restart arrives as it happens.
      await cpage.click("#tab-notifications");
      await cpage.waitForSelector("#live-feed");
      await cpage.waitForSelector(LIVE_OPEN, { state: "attached" });
      const before = await cpage.locator("#live-feed li").count();
      const restart = await ui.request("http://127.0.0.1/more"); // the token comes from a page
      const token = /name="_csrf" value="([^"]+)"/.exec(await restart.text())![1];
      await ui.request("http://127.0.0.1/actions/restart", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ _csrf: token }).toString(),
      });
      await cpage.waitForSelector(`#live-feed li:nth-child(${before + 1})`, { state: "attached" });
      await waitFor("reconnect", () => connector.engine.state.kind === "connected");
      await shot(cpage, "connector-notifications");
      await cpage.click("#tab-private");
      await cpage.waitForSelector("#segment-list >> text=intranet");
      await shot(cpage, "connector-private-access");

      // ---- The rest of the edge ----
      await page.click("#tab-dashboard");
      await page.waitForSelector("#fleet-stats");
      await shot(page, "edge-dashboard");
      await page.click("#tab-keys");
      await page.check("#reusable");
      await page.fill("#group", "branch-office");
      await page.click("#key-create");
      await page.waitForSelector("#new-key");
      assert.match(await page.textContent("#new-key") ?? "", /^pc1\./);
      await shot(page, "edge-keys");
      await page.click("#tab-users");
      await page.waitForSelector("#users-table");
      await shot(page, "edge-users");
      await page.click("#tab-notifications");
      await page.waitForSelector("#live-feed");
      await shot(page, "edge-notifications");
      await page.click("#tab-audit");
      await page.waitForSelector("#audit-table");
      await shot(page, "edge-audit");
      await page.click("#tab-support");
      await page.waitForSelector("#support-table >> text=Video calls drop");
      await shot(page, "edge-support");
      const [bundleDl] = await Promise.all([
        page.waitForEvent("download"),
        page.click("#support-table a[download]"),
      ]);
      const bundlePath = `${sys.dir}/bundle.zip`;
      await bundleDl.saveAs(bundlePath);
      assert.ok((await run("unzip", ["-t", bundlePath])).ok);
      // The edge's own diagnostics bundle, with the access decisions in it.
      const [diagDl] = await Promise.all([
        page.waitForEvent("download"),
        page.click("#export-diagnostics"),
      ]);
      assert.match(diagDl.suggestedFilename(), /^portcullis-edge-\d{8}T\d{6}Z\.zip$/);
      const diagPath = `${sys.dir}/diagnostics.zip`;
      await diagDl.saveAs(diagPath);
      const diagFiles = await run("unzip", ["-l", diagPath]);
      assert.ok(diagFiles.ok);
      assert.match(diagFiles.out, /decisions\.jsonl/);

      // ---- Switch language ----
      await cpage.click("#tab-internet");
      await cpage.waitForSelector("#internet-status");
      await cpage.selectOption("#lang-select", "de");
      await cpage.waitForSelector("text=Internetsicherheit");
      assert.equal(await cpage.getAttribute("html", "lang"), "de");
      assert.match(await cpage.textContent("#service-state") ?? "", /Verbunden/);
      await shot(cpage, "connector-internet-security-de");
      await cpage.click("#tab-more");
      await cpage.waitForSelector("#update-policy");
      assert.match(await cpage.textContent("#update-policy") ?? "", /Richtlinie aktualisieren/);
      await page.selectOption("#lang-select", "fr");
      await page.waitForSelector("text=Demandes d’assistance");
      await page.click("#tab-dashboard");
      await page.waitForSelector("#fleet-stats");
      assert.match(await page.textContent("#fleet-stats") ?? "", /Appareils inscrits/);
      await shot(page, "edge-dashboard-fr");

      // ---- Log out ----
      await page.click("#logout");
      await page.waitForSelector("#login-form");
    } finally {
      await ctx?.close().catch(() => {});
      await edgeSrv.server.shutdown();
      await connSrv?.server.shutdown();
      await sys.close();
      await Deno.remove(userDir, { recursive: true }).catch(() => {});
    }
  },
});
