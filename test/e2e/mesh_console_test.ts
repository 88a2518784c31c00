/**
 * The edge mesh on the console's Edges page, in headless Chromium: a second
 * edge registers, a device is located there (its handshake seen by that
 * edge), and this edge's real mesh (EdgeMesh over a TunnelMeshPort in a
 * WireGuard device) gets a peer for it; the two edges' WireGuard devices
 * complete a real handshake in memory. The page shows the peer, its
 * endpoint, its last handshake and the device routed there, in en/de/fr.
 * Screenshots land in test/output/screenshots/.
 */
import assert from "node:assert/strict";
import { EdgeRegistry } from "../../src/fleet/edge_registry.ts";
import { EdgeMesh } from "../../src/fleet/mesh.ts";
import { TunnelMeshPort } from "../../src/edge/mesh_port.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { setLogSinks } from "../../src/log.ts";
import { Notifier } from "../../src/notify/mod.ts";
import { endpoint } from "../../src/net/endpoint.ts";
import {
  encodeKey,
  generatePrivateKey,
  publicKeyOf,
  WireGuardDevice,
} from "../../src/wireguard/mod.ts";
import { deviceRecord } from "../store/backends.ts";
import { system } from "../http/console/harness.ts";
import { hasChromium, launchChromium, loginAsRoot, shot } from "./chromium.ts";

setLogSinks([]);

Deno.test({
  name: "mesh console in Chromium: the Edges page lists the mesh peers with handshake and devices",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const sys = await system();
    const { store, clock } = sys.edge;
    // This edge's tunnel device and the other edge's, joined by an in-memory wire.
    const ourKey = generatePrivateKey(), theirKey = generatePrivateKey();
    const ours = new WireGuardDevice({ privateKey: ourKey, clock });
    const theirs = new WireGuardDevice({ privateKey: theirKey, clock });
    theirs.setPeer({ publicKey: publicKeyOf(ourKey), allowedIps: [] });
    const port = new TunnelMeshPort({ device: ours, kick: () => {} });
    const other = new EdgeRegistry({
      store,
      clock,
      notifier: new Notifier(store, clock),
      identity: {
        name: "edge-far",
        region: "us-east",
        wgPublicKey: encodeKey(publicKeyOf(theirKey)),
        endpoints: [{ transport: "udp", host: "198.51.100.1", port: 4443 }],
        apiUrl: "https://198.51.100.1:8443",
        bootstrapUrl: "http://198.51.100.1:8081",
        caPem: "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n",
        version: "0.1.0",
      },
      heartbeatMs: 3600_000,
    });
    const mesh = new EdgeMesh({
      store,
      clock,
      selfId: sys.edge.ctx.fleet.id,
      plane: port,
      addresses: () => new Map([["dev-far", "100.64.0.42"]]),
      refreshMs: 3600_000,
    });
    sys.edge.ctx.mesh = () => port.views();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req, info) => sys.edgeConsole.fetch(req, { remoteAddr: info.remoteAddr }),
    );
    const E = `http://127.0.0.1:${server.addr.port}`;
    const userDir = await Deno.makeTempDir({ prefix: "pc-chromium-" });
    const ctx = await launchChromium(userDir);
    try {
      sys.edge.ctx.fleet.start({ devicesConnected: () => 0 });
      other.start();
      store.devices.insert(deviceRecord("dev-far"));
      store.deviceLocations.claim("dev-far", other.id, clock.now());
      mesh.start();
      assert.equal(port.views()[0]?.name, "edge-far");
      assert.equal(port.views()[0].lastHandshake, null);

      const page = ctx.pages()[0] ?? await ctx.newPage();
      page.setDefaultTimeout(10_000);
      const root = store.users.byUsername("root")!;
      await loginAsRoot(page, E, totpAt(root.totpSecret, clock.now()));
      await page.click("#tab-edges");
      await page.waitForSelector("#mesh-table");
      assert.equal((await page.textContent(`#mesh-handshake-${other.id}`))?.trim(), "never");
      assert.equal((await page.textContent(`#mesh-devices-${other.id}`))?.trim(), "100.64.0.42");

      // The mesh peer's keepalive starts a handshake; the wire carries it both ways.
      const ourEp = endpoint("udp", "192.0.2.1", 4443),
        theirEp = endpoint("udp", "198.51.100.1", 4443);
      const carry = (from: WireGuardDevice, to: WireGuardDevice, ep: typeof ourEp) => {
        for (const d of from.drainOutgoing()) {
          const buf = new Uint8Array(2048);
          buf.set(d.data);
          to.inbound(buf, d.data.length, ep);
        }
      };
      for (let i = 0; i < 4; i++) {
        carry(ours, theirs, ourEp);
        carry(theirs, ours, theirEp);
      }
      assert.ok(port.views()[0].lastHandshake !== null, "the handshake completed");
      await page.goto(`${E}/edges`);
      await page.waitForSelector("#mesh-table");
      const row = (await page.textContent(`#mesh-${other.id}`)) ?? "";
      assert.match(row, /edge-far.*198\.51\.100\.1:4443/s);
      assert.notEqual((await page.textContent(`#mesh-handshake-${other.id}`))?.trim(), "never");
      await shot(page, "edge-fleet-mesh");
      await page.selectOption("#lang-select", "de");
      await page.waitForSelector("text=Mesh zwischen den Edges");
      await page.waitForSelector("text=Dorthin geleitete Geräte");
      await shot(page, "edge-fleet-mesh-de");
      await page.selectOption("#lang-select", "fr");
      await page.waitForSelector("text=Maillage entre les edges");
      await page.waitForSelector("text=Appareils acheminés vers elle");
      await shot(page, "edge-fleet-mesh-fr");
      await page.selectOption("#lang-select", "en");
      await page.waitForSelector("text=Devices routed there");
      await page.waitForLoadState("load");

      // The other edge stops: its mesh peer goes, and the page says there is none.
      other.stop();
      mesh.refresh();
      await page.goto(`${E}/edges`);
      await page.waitForSelector("text=No mesh peer");
    } finally {
      mesh.stop();
      other.stop();
      sys.edge.ctx.fleet.stop();
      await ctx.close();
      await server.shutdown();
      await sys.close();
      await Deno.remove(userDir, { recursive: true }).catch(() => {});
    }
  },
});
