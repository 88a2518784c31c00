/**
 * The real edge tunnel's peer questions: `hasPeer` is what the sign-in
 * sweep asks before it takes a lapsed device out (and tells the fleet), so
 * it must say yes for a device in the WireGuard device, and no once it is
 * removed, for an unknown or malformed key, and for another edge's mesh
 * peer (an edge is not a device). Runs the real EdgeTunnel on a TUN of its
 * own (no NAT, UDP on loopback); the TUN goes with it.
 */
import assert from "node:assert/strict";
import { EdgeTunnel } from "../../src/edge/tunnel.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/mod.ts";
import { setLogSinks } from "../../src/log.ts";
import { canUseNetns } from "../e2e/netns.ts";

setLogSinks([]);

const b64 = (k: Uint8Array) => btoa(String.fromCharCode(...k));

Deno.test({
  name: "edge tunnel: hasPeer for devices, not for removed, unknown or malformed keys, nor edges",
  ignore: !canUseNetns,
  async fn() {
    const t = await EdgeTunnel.start({
      privateKey: generatePrivateKey(),
      network: "100.127.250.0/24",
      edgeAddress: "100.127.250.1",
      port: 0,
      bindAddress: "127.0.0.1",
      tls: null,
      tunName: "pcht%d",
      nat: false,
    });
    try {
      const device = b64(publicKeyOf(generatePrivateKey()));
      const edge = b64(publicKeyOf(generatePrivateKey()));
      t.upsertPeer({ id: "dev_1", wgPublicKey: device, address: "100.127.250.7" });
      t.mesh.setMeshPeer({
        edgeId: "eb",
        name: "edge-b",
        publicKey: edge,
        endpoint: { host: "127.0.0.1", port: 9 },
        addresses: ["100.127.250.9"],
      });
      const rows: [string, string, boolean][] = [
        ["a device in the tunnel", device, true],
        ["another edge's mesh peer", edge, false],
        ["an unknown key", b64(publicKeyOf(generatePrivateKey())), false],
        ["a malformed key", "not-a-key", false],
      ];
      for (const [what, key, want] of rows) assert.equal(t.hasPeer(key), want, what);
      assert.equal(t.peerStats().has(device), true);
      t.removePeer(device);
      assert.equal(t.hasPeer(device), false, "removed");
      // Removing a device key leaves the edge's mesh peer alone.
      t.removePeer(edge);
      assert.equal(t.mesh.views().length, 1);
    } finally {
      await t.close();
    }
  },
});
