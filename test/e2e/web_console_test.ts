/**
 * The edge console's Internet security pages in headless Chromium: URL
 * rules (add with a category, a bad host refused with the API's sentence,
 * reorder, disable), SSL inspection (on, a Do-Not-Inspect host, the CA's
 * fingerprint and download), forwarding profiles (trusted-network criteria
 * and actions, stored in the policy the connectors get), and the web log
 * (search by host); German and French; screenshots under test/output.
 */
import assert from "node:assert/strict";
import { totpAt } from "../../src/identity/totp.ts";
import { setLogSinks } from "../../src/log.ts";
import { system } from "../http/console/harness.ts";
import { hasChromium, launchChromium, loginAsRoot, shot, SHOTS } from "./chromium.ts";

setLogSinks([]);

Deno.test({
  name:
    "Internet security console pages in headless Chromium: URL rules, SSL inspection, forwarding profiles, web log",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const sys = await system();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req, info) => sys.edgeConsole.fetch(req, { remoteAddr: info.remoteAddr }),
    );
    const E = `http://127.0.0.1:${server.addr.port}`;
    const userDir = await Deno.makeTempDir({ prefix: "pc-chromium-" });
    const ctx = await launchChromium(userDir);
    try {
      const page = ctx.pages()[0] ?? await ctx.newPage();
      page.setDefaultTimeout(10_000);
      const root = sys.edge.store.users.byUsername("root")!;
      await loginAsRoot(page, E, totpAt(root.totpSecret, sys.edge.clock.now()));

      // ---- URL rules ----
      await page.click("#tab-web");
      await page.waitForSelector("#web-log-table");
      await page.click("#web-nav-rules");
      await page.waitForSelector("#url-rule-form");
      await page.fill("#u-name", "No gambling");
      await page.check("#u-cat-gambling");
      await page.selectOption("#u-action", "block");
      await page.click("#url-rule-add");
      await page.waitForSelector("#url-rule-No_gambling");
      await page.fill("#u-name", "Careful with news");
      await page.fill("#u-hosts", ".news.example, *.press.example");
      await page.fill("#u-methods", "GET");
      await page.selectOption("#u-action", "caution");
      await page.click("#url-rule-add");
      await page.waitForSelector("#url-rule-Careful_with_news");
      // A host pattern that is no pattern is refused with the API's sentence; nothing saved.
      await page.fill("#u-name", "Bad");
      await page.fill("#u-hosts", "(a|aa)+");
      await page.selectOption("#u-action", "block");
      await page.click("#url-rule-add");
      await page.waitForSelector(".flash-bad");
      assert.match(await page.textContent(".flash-bad") ?? "", /expected a host name/);
      assert.equal(sys.edge.ctx.web.rules().length, 2);
      await page.click("#url-rule-Careful_with_news >> text=Move up");
      await page.waitForSelector("text=URL rules saved.");
      assert.deepEqual(sys.edge.ctx.web.rules().map((r) => r.name), [
        "Careful with news",
        "No gambling",
      ]);
      assert.equal(
        sys.edge.ctx.web.policy().evaluate({
          host: "bet365.com",
          path: "/",
          method: "GET",
          subject: null,
        })
          .rule,
        "No gambling",
        "the rule saved in the console decides in the proxy's policy",
      );
      await shot(page, "edge-web-rules");

      // ---- SSL inspection ----
      await page.click("#web-nav-inspection");
      await page.waitForSelector("#inspection-form");
      assert.match(await page.textContent("#inspection-ca") ?? "", /[0-9a-f]{64}/);
      assert.equal(
        await page.isChecked("#i-cat-do_not_inspect"),
        true,
        "pinned apps bypassed by default",
      );
      await page.check("#i-enabled");
      await page.fill("#i-dni", "bank.example\n*.health.example");
      await page.click("#inspection-save");
      await page.waitForSelector("text=SSL inspection settings saved.");
      assert.equal(sys.edge.ctx.web.inspects("shop.example"), true);
      assert.equal(sys.edge.ctx.web.inspects("bank.example"), false);
      assert.equal(sys.edge.ctx.web.inspects("login.microsoftonline.com"), false);
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.click("#ca-download"),
      ]);
      const pem = await Deno.readTextFile(await download.path());
      assert.equal(pem, sys.edge.ctx.web.ca!.certPem);
      await page.fill("#i-dni", "not a host!");
      await page.click("#inspection-save");
      await page.waitForSelector(".flash-bad");
      assert.equal(
        sys.edge.ctx.web.inspects("bank.example"),
        false,
        "a refused change left the settings",
      );
      await shot(page, "edge-web-inspection");

      // ---- Forwarding profiles ----
      await page.click("#web-nav-forwarding");
      await page.waitForSelector("#forwarding-form");
      await page.fill("#f-name", "office");
      await page.fill("#f-dns", "10.0.0.53, 10.0.0.54");
      await page.fill("#f-ranges", "10.20.0.0/16");
      await page.fill("#f-hip", "intranet.corp=10.0.0.5 10.0.0.6");
      await page.selectOption("#f-match", "all");
      await page.selectOption("#f-on_trusted", "none");
      await page.selectOption("#f-vpn_trusted", "enforce_pac");
      await page.fill("#f-udp", "10");
      await page.click("#forwarding-save");
      await page.waitForSelector("#fp-office");
      const stored = sys.edge.ctx.policy.list("forwarding-profiles") as {
        name: string;
        trusted: { dnsServers: string[]; hostnameIps: unknown[]; match: string };
        actions: Record<string, string>;
        udpTimeoutSec: number;
      }[];
      const office = stored.find((p) => p.name === "office")!;
      assert.deepEqual(office.trusted.dnsServers, ["10.0.0.53", "10.0.0.54"]);
      assert.deepEqual(office.trusted.hostnameIps, [{
        hostname: "intranet.corp",
        ips: ["10.0.0.5", "10.0.0.6"],
      }]);
      assert.equal(office.trusted.match, "all");
      assert.deepEqual(office.actions, {
        on_trusted: "none",
        off_trusted: "tunnel",
        vpn_trusted: "enforce_pac",
      });
      assert.equal(office.udpTimeoutSec, 10);
      await page.fill("#f-name", "bad");
      await page.fill("#f-ranges", "not-a-cidr");
      await page.click("#forwarding-save");
      await page.waitForSelector(".flash-bad");
      await shot(page, "edge-web-forwarding");

      // ---- PAC tester ----
      await page.click("#web-nav-pac");
      await page.waitForSelector("#pac-form");
      assert.match(await page.inputValue("#p-pac"), /function FindProxyForURL/);
      await page.fill("#p-url", "http://intranet/");
      await page.click("#pac-test");
      await page.waitForSelector("#pac-result");
      assert.match(await page.textContent("#pac-result") ?? "", /Result: DIRECT/);
      await page.fill("#p-url", "https://www.example.com/");
      await page.click("#pac-test");
      await page.waitForSelector("#pac-result >> text=PROXY 100.64.0.1:3128; DIRECT");
      await page.fill("#p-pac", "function FindProxyForURL(url, host) {\n  while (true) {}\n}");
      await page.click("#pac-test");
      await page.waitForSelector("#pac-result >> text=ran longer than 1000 ms");
      await page.fill(
        "#p-pac",
        "function FindProxyForURL(url, host) {\n  throw new Error('no');\n}",
      );
      await page.click("#pac-test");
      await page.waitForSelector("#pac-result >> text=(line 2)");
      await shot(page, "edge-web-pac");

      // ---- PAC files (per app profile) ----
      await page.click("#web-nav-pac_files");
      await page.waitForSelector("#pac-form-default");
      assert.match(await page.textContent("#pac-state-default") ?? "", /Generated/);
      assert.match(await page.inputValue("#pac-t-default"), /Generated by Portcullis/);
      // A variable written inside a string is refused with the API's sentence and its hint.
      const pacFn = (ret: string) =>
        `function FindProxyForURL(url, host) {\n  if (host == "direct.example") return "DIRECT";\n  return ${ret};\n}\n`;
      await page.fill("#pac-t-default", pacFn('"PROXY ${PROXY}"'));
      await page.click("#pac-save-default");
      await page.waitForSelector(".flash-bad");
      assert.match(await page.textContent(".flash-bad") ?? "", /write "PROXY " \+ \$\{PROXY\}/);
      assert.equal(sys.edge.policy.bundleFor(null).appProfile.pacTemplate, undefined);
      assert.match(
        await page.inputValue("#pac-t-default"),
        /"PROXY \$\{PROXY\}"/,
        "the draft stays",
      );
      await page.fill("#pac-t-default", pacFn('"PROXY " + ${PROXY}'));
      await page.click("#pac-save-default");
      await page.waitForSelector("text=PAC template saved.");
      assert.match(await page.textContent("#pac-state-default") ?? "", /Own template/);
      // What devices get now: the saved template with the proxy filled in.
      const served = sys.edge.policy.pacForGroup(null) ?? "";
      assert.match(served, /return "PROXY " \+ "100\.64\.0\.1:3128";/);
      await shot(page, "edge-web-pac-files");
      await page.click("#pac-reset-default");
      await page.waitForSelector("text=The profile uses the generated PAC file again.");
      assert.match(sys.edge.policy.pacForGroup(null) ?? "", /Generated by Portcullis/);

      // ---- Web log ----
      const entry = {
        at: Date.now(),
        deviceId: null,
        deviceName: "workstation",
        user: "alice",
        src: "100.64.0.2",
        method: "GET",
        port: 80,
        categories: [],
        status: 403,
        bytesUp: 300,
        bytesDown: 1200,
      };
      sys.edge.ctx.web.record({
        ...entry,
        mode: "transparent",
        scheme: "http",
        host: "www.bet365.com",
        path: "/",
        action: "block",
        rule: "No gambling",
        reason: 'blocked by rule "No gambling"',
      });
      sys.edge.ctx.web.record({
        ...entry,
        mode: "inspected",
        scheme: "https",
        host: "docs.example",
        port: 443,
        path: "/guide",
        action: "allow",
        rule: null,
        reason: "allowed: no rule matched",
        status: 200,
      });
      await page.click("#web-nav-log");
      await page.waitForSelector("#web-log-table >> text=docs.example");
      await page.fill("#q-host", "bet365");
      await page.click("#web-log-search");
      await page.waitForSelector("#web-log-table >> text=No gambling");
      const text = await page.textContent("#web-log-table") ?? "";
      assert.equal(text.includes("docs.example"), false, "the search filters by host");
      assert.match(text, /alice/);
      await shot(page, "edge-web-log");

      // ---- German and French ----
      await page.selectOption("#lang-select", "de");
      await page.waitForSelector("text=Web-Protokoll");
      await shot(page, "edge-web-log-de");
      await page.click("#web-nav-rules");
      await page.waitForSelector("text=URL-Regel hinzufügen");
      await page.selectOption("#lang-select", "fr");
      await page.waitForSelector("text=Ajouter une règle d'URL");
      await page.click("#web-nav-inspection");
      await page.waitForSelector("text=AC d'inspection");
      await shot(page, "edge-web-inspection-fr");
      await page.click("#web-nav-pac_files");
      await page.waitForSelector("text=Fichiers PAC par profil d'application");
      await page.waitForSelector("#pac-save-default >> text=Enregistrer le modèle");
      await page.selectOption("#lang-select", "de");
      await page.waitForSelector("text=PAC-Dateien je App-Profil");
      await shot(page, "edge-web-pac-files-de");
    } catch (e) {
      const page = ctx.pages()[0];
      if (page) {
        await page.screenshot({ path: `${SHOTS}edge-web-failure.png`, fullPage: true }).catch(
          () => {},
        );
        console.error(
          `Failed at ${page.url()}: ${
            (await page.textContent("main").catch(() => ""))?.slice(0, 1500)
          }`,
        );
      }
      throw e;
    } finally {
      await ctx.close();
      await server.shutdown();
      await sys.close();
      await Deno.remove(userDir, { recursive: true }).catch(() => {});
    }
  },
});
