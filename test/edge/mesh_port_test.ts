/**
 * The mesh's data side on a real WireGuardDevice: a mesh peer per edge with
 * the registry's endpoint and its devices as transit addresses, routing by
 * destination, updates as devices move, removal, and a key that belongs to
 * a device refused.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { isMeshPeer, TunnelMeshPort } from "../../src/edge/mesh_port.ts";
import {
  encodeKey,
  generatePrivateKey,
  publicKeyOf,
  WireGuardDevice,
} from "../../src/wireguard/mod.ts";
import { ipv4 } from "../wireguard/harness.ts";

const key = () => encodeKey(publicKeyOf(generatePrivateKey()));

function setup() {
  const device = new WireGuardDevice({
    privateKey: generatePrivateKey(),
    clock: new ManualClock(),
  });
  let kicks = 0;
  const port = new TunnelMeshPort({ device, kick: () => kicks++ });
  return { device, port, kicks: () => kicks };
}

Deno.test("mesh port: peers per edge, routed by destination, updated as devices move", () => {
  const { device, port, kicks } = setup();
  const kb = key(), kc = key();
  port.setMeshPeer({
    edgeId: "eb",
    name: "edge-b",
    publicKey: kb,
    endpoint: { host: "198.51.100.1", port: 4443 },
    addresses: ["100.64.0.3", "100.64.0.4"],
  });
  port.setMeshPeer({
    edgeId: "ec",
    name: "edge-c",
    publicKey: kc,
    endpoint: null,
    addresses: [],
  });
  assert.ok(kicks() >= 2);
  const pb = device.peers().find((p) => p.publicKeyText === kb)!;
  assert.ok(isMeshPeer(pb));
  assert.equal(pb.endpoint?.key, "udp:198.51.100.1:4443");
  assert.equal(pb.persistentKeepaliveMs, 25_000, "kept up between edges");
  assert.deepEqual(device.allowedIpsOf(pb), [], "nothing routed to it by allowed IPs");
  assert.deepEqual(device.transitIpsOf(pb).sort(), ["100.64.0.3/32", "100.64.0.4/32"]);
  const to = (dst: string) => {
    const p = ipv4("100.64.0.2", dst);
    return port.peerForDestination(p, 0, p.length);
  };
  assert.equal(to("100.64.0.3"), pb);
  assert.equal(to("100.64.0.5"), null);
  // 100.64.0.4 moves to edge C; B keeps .3.
  port.setMeshPeer({
    edgeId: "ec",
    name: "edge-c",
    publicKey: kc,
    endpoint: null,
    addresses: ["100.64.0.4"],
  });
  port.setMeshPeer({
    edgeId: "eb",
    name: "edge-b",
    publicKey: kb,
    endpoint: { host: "198.51.100.1", port: 4443 },
    addresses: ["100.64.0.3"],
  });
  const pc = device.peers().find((p) => p.publicKeyText === kc)!;
  assert.equal(to("100.64.0.4"), pc);
  assert.equal(to("100.64.0.3"), pb);
  assert.deepEqual(port.views().map((v) => [v.name, v.addresses]), [
    ["edge-b", ["100.64.0.3"]],
    ["edge-c", ["100.64.0.4"]],
  ]);
  assert.deepEqual([...port.publicKeys()].sort(), [kb, kc].sort());
  port.removeMeshPeer("eb");
  assert.equal(to("100.64.0.3"), null);
  assert.equal(device.peers().length, 1);
  port.close();
  assert.equal(device.peers().length, 0);
});

Deno.test("mesh port: an edge key that is a device's is refused", () => {
  const { device, port } = setup();
  const k = publicKeyOf(generatePrivateKey());
  device.setPeer({ publicKey: k, allowedIps: ["100.64.0.7/32"] }).userData = "dev_1";
  assert.throws(
    () =>
      port.setMeshPeer({
        edgeId: "eb",
        name: "edge-b",
        publicKey: encodeKey(k),
        endpoint: null,
        addresses: [],
      }),
    /Cannot add mesh peer "edge-b": its key belongs to a device/,
  );
  assert.equal(device.peerForAddress("100.64.0.7")?.userData, "dev_1", "the device is untouched");
});
