/**
 * Connector updates in headless Chromium. On the edge console's Updates
 * page the admin uploads two signed bundles (a file chosen in the browser),
 * creates a rule, and sees it by rule with the devices it selected and the
 * versions they run; a bundle that is not one is refused with a sentence.
 * The connector (real, in-process, with a pinned release key and a program
 * file) shows its version and update state on its More tab: a release
 * signed by another key is refused there and the refusal shows on the
 * edge's page; then the rule's target becomes the good release, "Check for
 * updates" installs it (the program file is swapped, a restart is asked
 * for); pause shows on the rule; a rollback rule is refused without an
 * authorisation and taken with its file. Pages in German and French too.
 * Screenshots land in test/output/screenshots/.
 */
import assert from "node:assert/strict";
import {
  bundleBytes,
  generateReleaseKey,
  publicKeyFileText,
  signRelease,
} from "../../src/fleet/release.ts";
import { signRollback } from "../../src/fleet/rollback_auth.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { setLogSinks } from "../../src/log.ts";
import { system, waitFor } from "../http/console/harness.ts";
import { hasChromium, launchChromium, loginAsRoot, shot } from "./chromium.ts";

setLogSinks([]);

Deno.test({
  name:
    "updates console in Chromium: releases, rules, versions by rule; the connector's Updates card",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const sys = await system();
    const { store, clock } = sys.edge;
    const work = await Deno.makeTempDir({ prefix: "pc-upd-console-" });
    const key = await generateReleaseKey();
    const stranger = await generateReleaseKey();
    const prog = (v: string) => new TextEncoder().encode(`#!/bin/sh\necho portcullis ${v}\n`);
    await Deno.writeFile(
      `${work}/good.pcr`,
      bundleBytes(await signRelease(key, "0.2.0", prog("0.2.0")), prog("0.2.0")),
    );
    await Deno.writeFile(
      `${work}/stranger.pcr`,
      bundleBytes(await signRelease(stranger, "0.3.0", prog("0.3.0")), prog("0.3.0")),
    );
    await Deno.writeFile(
      `${work}/old.pcr`,
      bundleBytes(await signRelease(key, "0.1.0", prog("0.1.0")), prog("0.1.0")),
    );
    await Deno.writeTextFile(
      `${work}/back.json`,
      JSON.stringify(await signRollback(key, ["0.2.0"], "0.1.0", 86400_000, () => clock.now())),
    );
    await Deno.writeTextFile(`${work}/junk.pcr`, "not a bundle");
    await Deno.writeTextFile(`${work}/release.pub`, publicKeyFileText(key.publicKey));
    await Deno.writeFile(`${work}/portcullis`, prog("0.1.0"), { mode: 0o755 });

    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req, info) => sys.edgeConsole.fetch(req, { remoteAddr: info.remoteAddr }),
    );
    const E = `http://127.0.0.1:${server.addr.port}`;
    const userDir = await Deno.makeTempDir({ prefix: "pc-chromium-" });
    const ctx = await launchChromium(userDir);
    let uiServer: Deno.HttpServer<Deno.NetAddr> | null = null;
    let restarts = 0;
    try {
      const { connector, ui } = await sys.startConnectorWithKey({
        updates: {
          releaseKey: `${work}/release.pub`,
          program: `${work}/portcullis`,
          firstCheckSec: 3600,
        },
        restart: () => restarts++,
      });
      const page = ctx.pages()[0] ?? await ctx.newPage();
      page.setDefaultTimeout(10_000);
      const root = store.users.byUsername("root")!;
      await loginAsRoot(page, E, totpAt(root.totpSecret, clock.now()));
      await page.click("#tab-updates");
      await page.waitForSelector("#releases-table");

      // Upload: junk is refused with a sentence, the two bundles are taken.
      await page.setInputFiles("#release-file", `${work}/junk.pcr`);
      await page.click("#release-upload");
      await page.waitForSelector(".flash-bad");
      assert.match((await page.textContent(".flash-bad")) ?? "", /not a release bundle/);
      for (const f of ["good.pcr", "stranger.pcr"]) {
        await page.setInputFiles("#release-file", `${work}/${f}`);
        await page.click("#release-upload");
        await page.waitForSelector("text=Release uploaded.");
      }
      assert.match((await page.textContent("#release-0\\.2\\.0")) ?? "", new RegExp(key.keyId));

      // A rule for every device, to the stranger's release.
      await page.fill("#rule-name", "everyone");
      await page.fill("#rule-percent", "100");
      await page.selectOption("#rule-target", "0.3.0");
      await page.click("#rule-create");
      await page.waitForSelector("text=Update rule saved.");
      assert.match(
        (await page.textContent("#rule-devices-everyone")) ?? "",
        /1 of 1 selected \(100 %\), 0 on target/,
      );
      assert.match((await page.textContent("#rule-versions-everyone")) ?? "", /0\.1\.0 × 1/);
      await shot(page, "edge-updates");

      // The connector refuses it: shown on its More tab and reported to the edge.
      uiServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, ui.fetch);
      const C = `http://127.0.0.1:${uiServer.addr.port}`;
      await page.goto(`${C}/more`);
      await page.waitForSelector("#update-status");
      assert.equal((await page.textContent("#update-version"))?.trim(), "0.1.0");
      await page.click("#check-update");
      await page.waitForSelector("#update-state >> text=Release refused");
      assert.match((await page.textContent("#update-message")) ?? "", /bad signature/);
      assert.equal(restarts, 0);
      assert.deepEqual(await Deno.readFile(`${work}/portcullis`), prog("0.1.0"));
      await shot(page, "connector-update-refused");
      await page.selectOption("#lang-select", "de");
      await page.waitForSelector("#update-state >> text=Version abgelehnt");
      await page.waitForSelector("text=Nach Updates suchen");
      await shot(page, "connector-update-refused-de");
      await page.selectOption("#lang-select", "fr");
      await page.waitForSelector("#update-state >> text=Version refusée");
      await page.selectOption("#lang-select", "en");
      await page.waitForSelector("text=Check for updates");
      await page.waitForLoadState("load");

      await page.goto(`${E}/updates`);
      await page.waitForSelector("#reports-table >> text=Refused");
      assert.match((await page.textContent("#reports-table")) ?? "", /bad signature/);

      // The rule to the good release: installed, a restart asked for.
      await page.selectOption("#target-everyone", "0.2.0");
      await page.click("#rule-save-everyone");
      await page.waitForSelector("text=Update rule saved.");
      await page.goto(`${C}/more`);
      await page.click("#check-update");
      await waitFor("the restart after the install", () => restarts === 1);
      assert.deepEqual(await Deno.readFile(`${work}/portcullis`), prog("0.2.0"));
      assert.deepEqual(await Deno.readFile(`${work}/portcullis.previous`), prog("0.1.0"));
      assert.equal(connector.updater.status().state, "restarting");

      // Pause, in three languages.
      await page.goto(`${E}/updates`);
      await page.click("#rule-pause-everyone");
      await page.waitForSelector("#rule-state-everyone >> text=Paused");
      assert.equal(store.releases.rules()[0].paused, true);
      await page.selectOption("#lang-select", "de");
      await page.waitForSelector("text=Versionen nach Regel");
      await page.waitForSelector("#rule-state-everyone >> text=Angehalten");
      await shot(page, "edge-updates-de");
      await page.selectOption("#lang-select", "fr");
      await page.waitForSelector("text=Versions par règle");
      await page.waitForSelector("#rule-state-everyone >> text=En pause");
      await shot(page, "edge-updates-fr");
      await page.selectOption("#lang-select", "en");
      await page.waitForSelector("text=Versions by rule");
      await page.waitForLoadState("load");

      // A rollback rule: refused without the release key's authorisation, taken with its file.
      await page.setInputFiles("#release-file", `${work}/old.pcr`);
      await page.click("#release-upload");
      await page.waitForSelector("text=Release uploaded.");
      await page.fill("#rule-name", "back");
      await page.fill("#rule-percent", "100");
      await page.selectOption("#rule-target", "0.1.0");
      await page.check("#rule-rollback");
      await page.click("#rule-create");
      await page.waitForSelector(".flash-bad");
      assert.match(
        (await page.textContent(".flash-bad")) ?? "",
        /needs a rollback authorisation for 0\.1\.0/,
      );
      assert.equal(store.releases.ruleByName("back"), undefined);
      await page.fill("#rule-name", "back");
      await page.fill("#rule-percent", "100");
      await page.selectOption("#rule-target", "0.1.0");
      await page.check("#rule-rollback");
      await page.setInputFiles("#rule-rollback-auth-file", `${work}/back.json`);
      await page.click("#rule-create");
      await page.waitForSelector("text=Update rule saved.");
      assert.match(
        (await page.textContent("#rule-rollback-back")) ?? "",
        /authorised from 0\.2\.0, until/,
      );
      assert.equal(
        store.releases.ruleByName("back")?.rollbackAuthorisation,
        (await Deno.readTextFile(`${work}/back.json`)).trim(),
      );
      await shot(page, "edge-updates-rollback");
      for (
        const [lang, label, note] of [
          ["de", "Freigabe zum Zurücksetzen", "freigegeben von 0.2.0"],
          ["fr", "Autorisation de retour arrière", "autorisé depuis 0.2.0"],
          ["en", "Rollback authorisation", "authorised from 0.2.0"],
        ]
      ) {
        await page.selectOption("#lang-select", lang);
        await page.waitForSelector(`label[for=rule-rollback-auth] >> text=${label}`);
        await page.waitForSelector(`#rule-rollback-back >> text=${note}`);
        await page.waitForLoadState("load");
      }
      await page.click("#rule-delete-back");
      await page.waitForSelector("text=Update rule deleted.");
      await page.click("#release-delete-0\\.1\\.0");
      await page.waitForSelector("text=Release deleted.");

      // A release a rule targets cannot be deleted (no button); without the rule it can.
      assert.equal(await page.$("#release-delete-0\\.2\\.0"), null);
      await page.click("#rule-delete-everyone");
      await page.waitForSelector("text=Update rule deleted.");
      await page.click("#release-delete-0\\.3\\.0");
      await page.waitForSelector("text=Release deleted.");
      assert.deepEqual(store.releases.list().map((r) => r.version), ["0.2.0"]);
      assert.equal(await page.$("#release-0\\.3\\.0"), null);
      // The refusal is among the edge's notifications too.
      await page.click("#tab-notifications");
      await page.waitForSelector("text=refused connector release 0.3.0");
    } finally {
      await ctx.close();
      await server.shutdown();
      await uiServer?.shutdown();
      await sys.close();
      await Deno.remove(userDir, { recursive: true }).catch(() => {});
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
