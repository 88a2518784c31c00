/**
 * The Connector passwords page in headless Chromium: the admin types the
 * disable and uninstall passwords once, the page shows them as set (never a
 * hash), a too short one is refused with the API's sentence, one is removed,
 * and the page reads in German and French. The connector then gets only the
 * scrypt hash with its policy and its local API refuses disabling with a
 * wrong password and accepts the one the admin typed. Screenshots land in
 * test/output/screenshots/.
 */
import assert from "node:assert/strict";
import { createConnectorApp } from "../../src/http/connector_app.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { system, waitFor } from "../http/console/harness.ts";
import { createConnectorConsole } from "../../src/http/console/connector_console.tsx";
import { RingSink, setLogSinks } from "../../src/log.ts";
import { hasChromium, launchChromium, loginAsRoot, shot } from "./chromium.ts";

setLogSinks([]);

Deno.test({
  name: "connector passwords page in Chromium: set once, only hashes shipped, enforced",
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
    let uiServer: Deno.HttpServer<Deno.NetAddr> | null = null;
    try {
      const page = ctx.pages()[0] ?? await ctx.newPage();
      page.setDefaultTimeout(10_000);
      const root = sys.edge.store.users.byUsername("root")!;
      await loginAsRoot(page, E, totpAt(root.totpSecret, sys.edge.clock.now()));

      await page.click("#tab-passwords");
      await page.waitForSelector("#pw-form-default");
      assert.equal((await page.textContent("#pw-state-default-disable"))?.trim(), "Not set");
      await page.fill("#pw-default-disable", "disable-pw-1");
      await page.fill("#pw-default-uninstall", "uninstall-pw-1");
      await page.click("#pw-save-default");
      await page.waitForSelector(".flash-ok");
      assert.equal((await page.textContent("#pw-state-default-disable"))?.trim(), "Set");
      assert.equal((await page.textContent("#pw-state-default-uninstall"))?.trim(), "Set");
      assert.equal((await page.textContent("#pw-state-default-exit"))?.trim(), "Not set");
      const html = await page.content();
      assert.ok(!html.includes("scrypt$") && !html.includes("disable-pw-1"), "no hash, no text");
      await shot(page, "edge-connector-passwords");

      // Too short: the API's sentence, nothing changed.
      const rev = sys.edge.policy.revision();
      await page.fill("#pw-default-exit", "abc");
      await page.click("#pw-save-default");
      await page.waitForSelector(".flash-bad");
      assert.match(await page.textContent(".flash-bad") ?? "", /4 to 1024 characters/);
      assert.equal(sys.edge.policy.revision(), rev);

      // Remove the uninstall password.
      await page.check("#pw-clear-default-uninstall");
      await page.click("#pw-save-default");
      await page.waitForSelector(".flash-ok");
      assert.equal((await page.textContent("#pw-state-default-uninstall"))?.trim(), "Not set");
      assert.equal((await page.textContent("#pw-state-default-disable"))?.trim(), "Set");

      // The sign-in clock tolerance: saved, and refused out of bounds.
      assert.equal(await page.inputValue("#skew-default"), "120");
      await page.fill("#skew-default", "600");
      await page.click("#skew-save-default");
      await page.waitForSelector(".flash-ok");
      assert.equal(await page.inputValue("#skew-default"), "600");
      assert.equal(sys.edge.policy.signInClockSkewSec(), 600);
      await page.evaluate(`document.querySelector("#skew-default").removeAttribute("max")`);
      await page.fill("#skew-default", "7200");
      await page.click("#skew-save-default");
      await page.waitForSelector(".flash-bad");
      assert.match(await page.textContent(".flash-bad") ?? "", /from 0 to 1800/);
      assert.equal(sys.edge.policy.signInClockSkewSec(), 600);
      await shot(page, "edge-connector-protection-skew");

      // Re-authentication every N hours: saved, enforced on devices, refused out of bounds.
      assert.equal(await page.inputValue("#life-default"), "12");
      await page.fill("#life-default", "2");
      await page.click("#life-save-default");
      await page.waitForSelector(".flash-ok");
      assert.match(await page.textContent(".flash-ok") ?? "", /Sign-in lifetime saved/);
      assert.equal(await page.inputValue("#life-default"), "2");
      assert.equal(sys.edge.policy.bundleFor(null).appProfile.signInLifetimeHours, 2);
      const lifeRev = sys.edge.policy.revision();
      for (const bad of ["0", "721", "1.5"]) {
        await page.evaluate(
          `for (const a of ["min", "max", "step"]) document.querySelector("#life-default").removeAttribute(a)`,
        );
        await page.fill("#life-default", bad);
        await page.click("#life-save-default");
        await page.waitForSelector(".flash-bad");
        assert.match(
          await page.textContent(".flash-bad") ?? "",
          /hours: expected a whole number of hours from 1 to 720/,
          bad,
        );
      }
      assert.equal(sys.edge.policy.revision(), lifeRev, "nothing written");
      await shot(page, "edge-connector-protection-lifetime");
      await page.goto(`${E}/passwords`);

      await page.selectOption("#lang-select", "de");
      await page.waitForSelector("text=Connector-Schutz");
      await page.waitForSelector("text=Schutz deaktivieren");
      await page.waitForSelector("text=Erneute Anmeldung");
      await shot(page, "edge-connector-passwords-de");
      await page.selectOption("#lang-select", "fr");
      await page.waitForSelector("text=Protection du connecteur");
      await page.waitForSelector("text=Désactiver la protection");
      await page.waitForSelector("text=Réauthentification");
      await shot(page, "edge-connector-passwords-fr");
      await page.selectOption("#lang-select", "en");
      // Choosing a language reloads the page: wait for it, or the next
      // navigation races the reload and is interrupted.
      await page.waitForSelector("text=Disable protection");
      await page.waitForLoadState("load");

      // The connector gets the hash with its policy and enforces it.
      const { connector } = await sys.startConnectorWithKey();
      const hash = connector.engine.passwordHashFor("disable");
      assert.match(hash ?? "", /^scrypt\$/);
      assert.equal(connector.engine.passwordHashFor("uninstall"), undefined);
      const api = createConnectorApp({
        engine: connector.engine,
        hub: connector.hub,
        store: connector.store,
      });
      const disable = (password: string) =>
        api.request("/api/v1/actions/disable", {
          method: "POST",
          headers: { host: "127.0.0.1:9080", "x-portcullis-request": "1" },
          body: JSON.stringify({ password }),
        });
      let r = await disable("disable-pw-2");
      assert.equal(r.status, 403);
      assert.equal((await r.json()).error.code, "wrong_password");
      assert.equal(connector.engine.state.kind, "connected");
      r = await disable("disable-pw-1");
      assert.equal(r.status, 200);
      assert.equal(connector.engine.state.kind, "disabled");

      // Uninstall from the connector console: its More tab asks the password.
      const set = await sys.edge.adminReq(
        "PUT",
        "/api/v1/admin/policy/app-profiles/default/passwords",
        { uninstall: "uninstall-pw-2" },
      );
      assert.equal(set.status, 200);
      await connector.engine.updatePolicy();
      let uninstalls = 0;
      const ui = createConnectorConsole({
        engine: connector.engine,
        api: createConnectorApp({
          engine: connector.engine,
          hub: connector.hub,
          store: connector.store,
          onUninstall: () => uninstalls++,
        }),
        hub: connector.hub,
        store: connector.store,
        version: "0.1.0",
        logs: new RingSink(10),
        uninstallAvailable: true,
      });
      uiServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, ui.fetch);
      await page.goto(`http://127.0.0.1:${uiServer.addr.port}/more`);
      await page.fill("#pw-uninstall", "not-the-one");
      await page.click("#uninstall");
      await page.waitForSelector(".flash-bad");
      assert.equal(uninstalls, 0);
      await shot(page, "connector-uninstall-refused");
      await page.fill("#pw-uninstall", "uninstall-pw-2");
      await page.click("#uninstall");
      await page.waitForSelector("#uninstall-done");
      assert.match(await page.textContent("#uninstall-done") ?? "", /removing itself/);
      await waitFor("the uninstall to be requested", () => uninstalls === 1);
    } finally {
      await uiServer?.shutdown();
      await ctx.close();
      await server.shutdown();
      await sys.close();
      await Deno.remove(userDir, { recursive: true }).catch(() => {});
    }
  },
});
