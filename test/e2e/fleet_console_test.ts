/**
 * The fleet in headless Chromium. The edge console's Edges page lists the
 * edges sharing the store — this one, a second healthy one, one whose
 * heartbeat lapsed (marked unhealthy by this edge), one stopped — with
 * endpoints, health, last heartbeat and devices connected; a stopped edge is
 * forgotten, a healthy one cannot be; the page reads in German and French.
 * The connector, given both healthy edges in its bundle and probes that make
 * the second nearer, moves to it, and its console shows the chosen edge, its
 * round trip and the alternative. Screenshots land in test/output/screenshots/.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import type { CaptiveProbeResult } from "../../src/connector/network/captive.ts";
import { FakeNetworkPort } from "../../src/connector/network_port.ts";
import { EdgeRegistry } from "../../src/fleet/edge_registry.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { setLogSinks } from "../../src/log.ts";
import { Notifier } from "../../src/notify/mod.ts";
import { key32 } from "../http/helpers.ts";
import { system, waitFor } from "../http/console/harness.ts";
import { hasChromium, launchChromium, loginAsRoot, shot } from "./chromium.ts";

setLogSinks([]);

/** The connector's network, with a bootstrap probe answering from a table. */
class ProbedNetwork extends FakeNetworkPort {
  rtt = new Map<string, number>();
  probeEdge(url: string): Promise<CaptiveProbeResult> {
    const ms = this.rtt.get(url);
    return Promise.resolve(
      ms === undefined
        ? { kind: "unreachable", detail: "no answer" }
        : { kind: "clear", latencyMs: ms },
    );
  }
}

Deno.test({
  name: "fleet console in Chromium: the Edges page, and the connector's chosen edge",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const network = new ProbedNetwork();
    const sys = await system({ network });
    const { store, clock } = sys.edge;
    const other = (name: string, region: string, at = clock) =>
      new EdgeRegistry({
        store,
        clock: at,
        notifier: new Notifier(store, at),
        identity: {
          name,
          region,
          wgPublicKey: key32(),
          endpoints: [
            { transport: "udp", host: `${name}.example`, port: 443 },
            { transport: "tls", host: `${name}.example`, port: 443 },
          ],
          apiUrl: `https://${name}.example:8443`,
          bootstrapUrl: `http://${name}.example:8081`,
          caPem: "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n",
          version: "0.1.0",
        },
        heartbeatMs: 3600_000,
      });
    const near = other("edge-near", "eu-west");
    // Its clock is 20 s behind: its only heartbeat is older than 15 s from the start.
    const lapsed = other("edge-lapsed", "ap-south", new ManualClock(Date.now() - 20_000));
    const stopped = other("edge-old", "");
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req, info) => sys.edgeConsole.fetch(req, { remoteAddr: info.remoteAddr }),
    );
    const E = `http://127.0.0.1:${server.addr.port}`;
    const userDir = await Deno.makeTempDir({ prefix: "pc-chromium-" });
    const ctx = await launchChromium(userDir);
    let uiServer: Deno.HttpServer<Deno.NetAddr> | null = null;
    try {
      sys.edge.ctx.fleet.start({ devicesConnected: () => 1 });
      near.start();
      lapsed.start();
      stopped.start();
      stopped.stop();
      sys.edge.ctx.fleet.tick(); // notices the lapse
      assert.equal(store.edges.get(lapsed.id)?.status, "unhealthy");

      const page = ctx.pages()[0] ?? await ctx.newPage();
      page.setDefaultTimeout(10_000);
      const root = store.users.byUsername("root")!;
      await loginAsRoot(page, E, totpAt(root.totpSecret, clock.now()));
      await page.click("#tab-edges");
      await page.waitForSelector("#edges-table");
      const health = async (id: string) => (await page.textContent(`#edge-health-${id}`))?.trim();
      assert.equal(await health(sys.edge.ctx.fleet.id), "Healthy");
      assert.equal(await health(near.id), "Healthy");
      assert.equal(await health(lapsed.id), "Unhealthy");
      assert.equal(await health(stopped.id), "Stopped");
      assert.equal((await page.textContent(`#edge-devices-${sys.edge.ctx.fleet.id}`))?.trim(), "1");
      const row = (await page.textContent(`#edge-${near.id}`)) ?? "";
      assert.match(row, /edge-near.*eu-west.*udp:\/\/edge-near\.example:443/s);
      assert.match((await page.textContent(`#edge-${sys.edge.ctx.fleet.id}`)) ?? "", /this edge/);
      assert.equal(await page.$(`#edge-forget-${near.id}`), null, "a healthy edge has no Forget");
      assert.match((await page.textContent(".card h2, .card-title")) ?? "", /2 of 4 edges healthy/);
      await shot(page, "edge-fleet-edges");

      // Forget the stopped edge; the lapsed one's Forget is refused once it is healthy again.
      await page.click(`#edge-forget-${stopped.id}`);
      await page.waitForSelector(".flash-ok");
      assert.equal(await page.$(`#edge-${stopped.id}`), null);
      assert.equal(store.edges.get(stopped.id), undefined);
      lapsed.stop(); // not running any more: it would register again on a heartbeat
      store.edges.heartbeat(lapsed.id, clock.now(), 0); // …as an edge coming back would
      await page.click(`#edge-forget-${lapsed.id}`);
      await page.waitForSelector(".flash-bad");
      assert.match((await page.textContent(".flash-bad")) ?? "", /cannot be forgotten/);
      await page.goto(`${E}/edges`);

      await page.selectOption("#lang-select", "de");
      await page.waitForSelector("text=Verbundene Geräte");
      await page.waitForSelector("text=diese Edge");
      await shot(page, "edge-fleet-edges-de");
      await page.selectOption("#lang-select", "fr");
      await page.waitForSelector("text=Appareils connectés");
      await page.waitForSelector("text=cette edge");
      await shot(page, "edge-fleet-edges-fr");
      await page.selectOption("#lang-select", "en");
      await page.waitForSelector("text=Devices connected");
      await page.waitForLoadState("load");

      // The connector: this edge answers in 60 ms, edge-near in 12 ms.
      store.edges.markStopped(lapsed.id, clock.now());
      sys.edge.ctx.fleet.refresh();
      network.rtt.set("http://edge.test:8081", 60).set("http://edge-near.example:8081", 12);
      const { connector, ui } = await sys.startConnectorWithKey();
      // It leaves the edge it enrolled with once a second measurement, 10 s
      // after the first, agrees.
      await waitFor(
        "the connector to move to edge-near",
        () => connector.engine.status().edgeSelection?.current?.name === "edge-near",
        20_000,
      );
      uiServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, ui.fetch);
      const C = `http://127.0.0.1:${uiServer.addr.port}`;
      await page.goto(`${C}/`);
      await page.waitForSelector("#edge-choice");
      assert.match((await page.textContent("#edge-current-name")) ?? "", /edge-near \(eu-west\)/);
      assert.equal((await page.textContent("#edge-current-rtt"))?.trim(), "12 ms");
      const alt = (await page.textContent("#edge-alternatives")) ?? "";
      assert.match(alt, /edge-test.*60 ms/s);
      assert.match(
        (await page.textContent("#edge-last-move")) ?? "",
        /edge-test → edge-near \(nearest\)/,
      );
      await shot(page, "connector-service-edge");
      await page.selectOption("#lang-select", "de");
      await page.waitForSelector("text=Verbundene Edge");
      await page.waitForSelector("text=nächstgelegen");
      await shot(page, "connector-service-edge-de");
      await page.selectOption("#lang-select", "fr");
      await page.waitForSelector("text=Edge connectée");
      await page.waitForSelector("text=la plus proche");
      await shot(page, "connector-service-edge-fr");
      await page.selectOption("#lang-select", "en");
      await page.waitForSelector("text=Connected edge");
      await page.waitForLoadState("load");
      // The move is in the connector's notifications, in the page's language.
      await page.goto(`${C}/notifications`);
      await page.waitForSelector("text=Now using edge “edge-near”.");
      await page.selectOption("#lang-select", "de");
      await page.waitForSelector("text=Jetzt über Edge „edge-near“ verbunden.");
      await page.selectOption("#lang-select", "en");
      await page.waitForSelector("text=Now using edge “edge-near”.");
      await page.waitForLoadState("load");
    } finally {
      near.stop();
      lapsed.stop();
      sys.edge.ctx.fleet.stop();
      await ctx.close();
      await server.shutdown();
      await uiServer?.shutdown();
      await sys.close();
      await Deno.remove(userDir, { recursive: true }).catch(() => {});
    }
  },
});
