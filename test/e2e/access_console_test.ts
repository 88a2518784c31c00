/**
 * Private access in both consoles, in headless Chromium: the admin creates
 * segments, a posture profile and ordered rules in the edge console's forms
 * (and sees a bad address refused with the API's sentence), filters the
 * decision log, asks "why can't ws-console reach 10.30.0.7?" and gets the
 * deciding rule and posture reason; the connector's Private Access tab then
 * lists each segment with its state for this device from the edge's bundle,
 * and "Valid Hostname" shows the edge's answer in both consoles. German and
 * French pages too. Screenshots in test/output/screenshots/access-*.png.
 */
import assert from "node:assert/strict";
import type { BrowserContext, Page } from "playwright-core";
import { totpAt } from "../../src/identity/totp.ts";
import { setLogSinks } from "../../src/log.ts";
import { system } from "../http/console/harness.ts";
import { hasChromium, launchBrowser, serve, shot, SHOTS } from "./browser.ts";

setLogSinks([]);

/** Fills and submits the segment form. */
async function addSegment(page: Page, name: string, f: { domains?: string; cidrs: string }) {
  await page.click("#access-nav-segments");
  await page.waitForSelector("#segment-form");
  await page.fill("#s-name", name);
  await page.fill("#s-domains", f.domains ?? "");
  await page.fill("#s-cidrs", f.cidrs);
  await page.fill("#s-ports", "80, 443");
  await page.uncheck("input[name='proto.udp']");
  await page.uncheck("input[name='proto.icmp']");
  await page.click("#segment-save");
}

/** Fills and submits the rule form. */
async function addRule(
  page: Page,
  name: string,
  f: { action: "allow" | "deny"; segments: string[]; device?: string; posture?: string },
) {
  await page.click("#access-nav-rules");
  await page.waitForSelector("#rule-form");
  await page.fill("#r-name", name);
  await page.selectOption("#r-action", f.action);
  for (const s of f.segments) await page.check(`input[name='seg.${s}']`);
  if (f.device) await page.check(`input[name='dev.${f.device}']`);
  if (f.posture) await page.check(`input[name='pp.${f.posture}']`);
  await page.click("#rule-save");
  await page.waitForSelector(`#rule-${name.replaceAll(" ", "_")}`);
}

/** Screenshot without the stack of "policy updated" toasts every save raises. */
async function still(page: Page, name: string) {
  await page.evaluate(`document.querySelectorAll("#toasts > *").forEach((n) => n.remove())`);
  await shot(page, name);
}

const ruleNames = (page: Page) =>
  page.$$eval("#rules-table tbody tr td:nth-child(2)", (tds) => tds.map((td) => td.textContent));

Deno.test({
  name: "access console e2e: segments, rules, posture, decisions and why, and the connector's tab",
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
      const { ui, connector } = await sys.startConnectorWithKey();
      const wsId = connector.engine.status().deviceId!;
      ctx = await launchBrowser(userDir);
      const page = ctx.pages()[0] ?? await ctx.newPage();
      page.setDefaultTimeout(10_000);
      const E = edgeSrv.base;

      // ---- Log in ----
      await page.goto(`${E}/login`);
      const root = sys.edge.store.users.byUsername("root")!;
      await page.fill("#username", "root");
      await page.fill("#password", "correct horse battery");
      await page.fill("#totp", totpAt(root.totpSecret, sys.edge.clock.now()));
      await page.press("#totp", "Enter");
      await page.waitForSelector("#fleet-stats");

      // ---- Segments ----
      await page.click("#tab-access");
      await page.waitForSelector("#segments-table");
      await addSegment(page, "intranet", {
        domains: "intranet.corp.internal",
        cidrs: "10.20.0.0/24",
      });
      await page.waitForSelector("#segment-intranet");
      await addSegment(page, "hr-apps", { cidrs: "10.30.0.0/24" });
      await page.waitForSelector("#segment-hr-apps");
      // A bad address: the API's sentence, a 400, nothing added.
      await addSegment(page, "broken", { cidrs: "10.0.0.0/33" });
      await page.waitForSelector("#access-error");
      assert.match(await page.textContent("#access-error") ?? "", /10\.0\.0\.0\/33/);
      await still(page, "access-segment-error");
      assert.equal(await page.$("#segment-broken"), null);
      await page.click("#access-nav-segments");
      await page.waitForSelector("#segment-hr-apps");
      await still(page, "access-segments");

      // ---- Posture profile ----
      await page.click("#access-nav-posture");
      await page.waitForSelector("#posture-form");
      await page.fill("#p-name", "managed");
      await page.check("#p-chk-file_exists");
      await page.fill("#p-file_exists-path", "/etc/portcullis-managed");
      await page.check("#p-chk-disk_encryption");
      await page.click("#posture-save");
      await page.waitForSelector("#posture-managed");
      await still(page, "access-posture");

      // ---- Rules: ordered, moved ----
      await addRule(page, "block all", { action: "deny", segments: ["intranet", "hr-apps"] });
      await addRule(page, "ws intranet", { action: "allow", segments: ["intranet"], device: wsId });
      await addRule(page, "hr managed", {
        action: "allow",
        segments: ["hr-apps"],
        device: wsId,
        posture: "managed",
      });
      assert.deepEqual(await ruleNames(page), ["block all", "ws intranet", "hr managed"]);
      // The deny-all must come last: move it down twice.
      for (const row of [2, 3]) {
        await page.click("#rule-block_all form[action$='/down'] button");
        await page.waitForSelector(`#rules-table tbody tr:nth-child(${row})#rule-block_all`);
      }
      assert.deepEqual(await ruleNames(page), ["ws intranet", "hr managed", "block all"]);
      const stored = sys.edge.ctx.policy.list("access-rules") as { name: string }[];
      assert.deepEqual(stored.map((r) => r.name), ["ws intranet", "hr managed", "block all"]);
      await still(page, "access-rules");

      // ---- Why can't ws-console reach an HR app? ----
      await page.click("#access-nav-why");
      await page.waitForSelector("#why-form");
      await page.selectOption("#w-device", wsId);
      await page.fill("#w-dest", "10.30.0.7");
      await page.fill("#w-port", "443");
      await page.click("#why-run");
      await page.waitForSelector("#why-result");
      assert.match(await page.textContent("#why-verdict") ?? "", /Denied/);
      assert.equal((await page.textContent("#why-rule"))?.trim(), "hr managed");
      assert.match(await page.textContent("#why-reason") ?? "", /needs posture "managed"/);
      await still(page, "access-why");
      await page.fill("#w-dest", "10.20.0.9");
      await page.click("#why-run");
      await page.waitForSelector("#why-verdict >> text=Allowed");
      assert.equal((await page.textContent("#why-rule"))?.trim(), "ws intranet");

      // ---- Decision log: what the enforcer wrote, filtered in the page ----
      const at = sys.edge.clock.now();
      const st = connector.engine.status();
      for (
        const [i, dst, verdict, rule] of [
          [0, "10.20.0.9", "allow", "ws intranet"],
          [1, "10.30.0.7", "deny", "hr managed"],
        ] as const
      ) {
        sys.edge.store.decisions.insert({
          at: at + i,
          deviceId: wsId,
          deviceName: "ws-console",
          user: null,
          src: st.deviceAddress!,
          dst,
          port: 443,
          protocol: "tcp",
          name: null,
          verdict,
          rule,
          segments: [verdict === "allow" ? "intranet" : "hr-apps"],
          reason: verdict === "allow"
            ? 'allowed: rule "ws intranet"'
            : 'denied: rule "hr managed" needs posture "managed", the device has not reported it',
        });
      }
      await page.click("#access-nav-decisions");
      await page.waitForSelector("#decisions-table");
      assert.equal(await page.locator("#decisions-table tr[data-verdict]").count(), 2);
      await page.selectOption("#d-verdict", "deny");
      await page.fill("#d-dst", "10.30.0.7");
      await page.click("#decision-search");
      await page.waitForSelector("#decisions-table tr[data-verdict='deny']");
      assert.equal(await page.locator("#decisions-table tr[data-verdict]").count(), 1);
      await still(page, "access-decisions");
      // Its "why?" link opens the view with the flow filled in.
      await page.click("#decisions-table a:text('Why?')");
      await page.waitForSelector("#why-result");
      assert.equal((await page.textContent("#why-rule"))?.trim(), "hr managed");

      // ---- The connector's Private Access tab ----
      sys.edge.ctx.policy.replaceClientToClient({ enabled: true }, "test");
      await connector.engine.updatePolicy();
      connSrv = serve((req) => ui.fetch(req));
      const cpage = await ctx.newPage();
      cpage.setDefaultTimeout(10_000);
      await cpage.goto(`${connSrv.base}/private-access`);
      await cpage.waitForSelector("#segment-list");
      assert.equal(
        await cpage.getAttribute("li[data-segment='intranet']", "data-state"),
        "allowed",
      );
      assert.equal(
        await cpage.getAttribute("li[data-segment='hr-apps']", "data-state"),
        "posture_failing",
      );
      assert.match(await cpage.textContent("li[data-segment='hr-apps']") ?? "", /managed/);
      assert.match(await cpage.textContent("#private-state") ?? "", /1 of 2 applications allowed/);
      // Valid Hostname: the edge's answer to the registration the policy change caused.
      await cpage.waitForSelector("#c2c-valid[data-valid='true']");
      assert.match(await cpage.textContent("#device-fqdn") ?? "", /^ws-console\./);
      await still(cpage, "access-connector-private");
      // … and the edge says the same on the device page.
      await page.goto(`${E}/devices/${wsId}`);
      await page.waitForSelector("#device-c2c-valid[data-valid='true']");
      // A pattern the name does not match: refused, in both consoles, with the reason.
      sys.edge.ctx.policy.replaceClientToClient({ enabled: true, hostnameRegex: "^laptop-" }, "t");
      await connector.engine.updatePolicy();
      await cpage.waitForSelector("#c2c-valid[data-valid='false']");
      assert.match(await cpage.textContent("#c2c-valid") ?? "", /does not match/);
      await page.reload();
      await page.waitForSelector("#device-c2c-valid[data-valid='false']");
      await still(page, "access-edge-device-c2c");

      // ---- German and French ----
      await page.goto(`${E}/access/rules`);
      await page.selectOption("#lang-select", "de");
      await page.waitForSelector("text=Zugriffsregeln");
      assert.equal(await page.getAttribute("html", "lang"), "de");
      await still(page, "access-rules-de");
      const why = `${E}/access/why?device=${wsId}&dest=10.30.0.7&port=443&protocol=tcp`;
      await page.goto(why);
      await page.selectOption("#lang-select", "fr");
      await page.waitForSelector("text=Pourquoi un appareil");
      await page.goto(why);
      assert.match(await page.textContent("#why-verdict") ?? "", /Refusé/);
      await still(page, "access-why-fr");
      await cpage.selectOption("#lang-select", "de");
      await cpage.waitForSelector("#private-state >> text=Anwendungen erlaubt");
      await still(cpage, "access-connector-private-de");
    } finally {
      await ctx?.close().catch(() => {});
      await edgeSrv.server.shutdown();
      await connSrv?.server.shutdown();
      await sys.close();
      await Deno.remove(userDir, { recursive: true }).catch(() => {});
    }
  },
});
