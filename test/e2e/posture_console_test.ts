/**
 * The device page shows the edge's own posture judgement in headless
 * Chromium: a device reports signed facts through the real device API, and
 * the page lists each check with expected vs what the device reports, in
 * English, German and French. Screenshots go to test/output/screenshots/.
 */
import assert from "node:assert/strict";
import { createEdgeConsole } from "../../src/http/console/edge_console.tsx";
import { totpAt } from "../../src/identity/totp.ts";
import { setLogSinks } from "../../src/log.ts";
import { fixture, signedPosture } from "../http/helpers.ts";
import { hasChromium, launchBrowser, serve, shot, SHOTS } from "./browser.ts";

setLogSinks([]);

Deno.test({
  name:
    "posture console: the device page lists the edge's checks, expected vs reported, in three languages",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await Deno.mkdir(SHOTS, { recursive: true });
    const f = await fixture({ sseKeepaliveMs: 1000 });
    f.clock.setWall(Date.now());
    const sig = f.signer();
    const d = await f.enroll({ hostname: "laptop-ana", signingPublicKey: sig.publicKey });
    const id = d.json.deviceId as string;
    await f.adminReq("PUT", "/api/v1/admin/policy/posture-profiles", {
      items: [
        { name: "disk-encrypted", checks: [{ type: "disk_encryption" }] },
        {
          name: "corp-agent",
          checks: [{ type: "file_exists", path: "/etc/corp/agent.conf" }, {
            type: "edr",
            service: "falcon-sensor",
          }],
        },
      ],
    });
    const rep = await f.req(
      "POST",
      "/api/v1/posture",
      signedPosture(sig, id, f.clock.now(), {
        diskEncryption: false,
        files: [{ path: "/etc/corp/agent.conf", exists: true }],
        services: [{ name: "falcon-sensor", running: true }],
      }),
      d.headers,
    );
    assert.equal(rep.status, 200);

    const edgeConsole = createEdgeConsole({
      api: f.app,
      notifier: f.notifier,
      clock: f.clock,
      sseKeepaliveMs: 1000,
    });
    const { server, base: E } = serve((req, info) =>
      edgeConsole.fetch(req, { remoteAddr: info.remoteAddr })
    );
    const userDir = await Deno.makeTempDir({ prefix: "pc-chromium-" });
    const ctx = await launchBrowser(userDir);
    try {
      const page = ctx.pages()[0] ?? await ctx.newPage();
      page.setDefaultTimeout(10_000);
      await page.goto(`${E}/login`);
      const root = f.store.users.byUsername("root")!;
      await page.fill("#username", "root");
      await page.fill("#password", "correct horse battery");
      await page.fill("#totp", totpAt(root.totpSecret, f.clock.now()));
      await page.keyboard.press("Enter");
      await page.waitForSelector("#fleet-stats");

      await page.goto(`${E}/devices/${id}`);
      await page.waitForSelector("#posture-checks");
      const rows = await page.$$eval(
        "#posture-checks tbody tr",
        (trs) =>
          trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent?.trim())),
      );
      assert.deepEqual(rows, [
        ["disk-encrypted", "disk_encryption", "Failed", "disk encrypted", "disk not encrypted"],
        [
          "corp-agent",
          "file_exists:/etc/corp/agent.conf",
          "Passed",
          "/etc/corp/agent.conf exists",
          "/etc/corp/agent.conf exists",
        ],
        [
          "corp-agent",
          "edr:falcon-sensor",
          "Passed",
          "service falcon-sensor running",
          "service falcon-sensor running",
        ],
      ]);
      await shot(page, "edge-device-posture");

      for (
        const [lang, title, failed] of [
          ["de", "Posture-Prüfungen, wie der Edge sie beurteilt hat", "Nicht bestanden"],
          ["fr", "Contrôles de conformité, tels que l’edge les a jugés", "Non conforme"],
        ] as const
      ) {
        await page.selectOption("#lang-select", lang);
        await page.waitForSelector(`text=${title}`);
        assert.equal(await page.getAttribute("html", "lang"), lang);
        const head = await page.$$eval(
          "#posture-checks thead th",
          (ths) => ths.map((t) => t.textContent),
        );
        assert.notDeepEqual(head, ["Profile", "Check", "Result", "Expected", "Device reports"]);
        assert.match(await page.textContent("#posture-checks tbody tr") ?? "", new RegExp(failed));
        await shot(page, `edge-device-posture-${lang}`);
      }
    } finally {
      await ctx.close();
      await server.shutdown();
      f.store.close();
      await Deno.remove(userDir, { recursive: true }).catch(() => {});
    }
  },
});
