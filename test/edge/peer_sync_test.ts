/**
 * Any edge terminates any device: two edges over one store (the fixture's
 * edge "A" serving the API, and "B" with its own tunnel port), joined only by
 * the store's change feed. Every device change made through A's API shows in
 * B's tunnel, read back from the store; a lost message is made good by the
 * reconcile that follows a feed reconnect.
 */
import assert from "node:assert/strict";
import { reenrollMessage } from "../../src/control/mod.ts";
import type { EdgeContext } from "../../src/edge/context.ts";
import { MemoryTunnelPort } from "../../src/edge/dataplane_port.ts";
import { FleetTunnelPort, PEERS_CHANNEL } from "../../src/edge/peer_sync.ts";
import { fingerprintHash } from "../../src/identity/secrets.ts";
import { fixture } from "../http/helpers.ts";

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 2000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

Deno.test("peer sync: enrol, disable, enable, re-enrol and delete on edge A reach edge B's tunnel", async () => {
  const f = await fixture();
  const tunnelA = f.tunnel;
  const a = new FleetTunnelPort(tunnelA, f.ctx, "edge-a", []);
  f.ctx.tunnel = a; // the API of A now changes peers through the fleet port
  const tunnelB = new MemoryTunnelPort();
  const ctxB: EdgeContext = { ...f.ctx, tunnel: tunnelB };
  const b = new FleetTunnelPort(tunnelB, ctxB, "edge-b", []);
  try {
    const sig = f.signer();
    const dev = await f.enroll({ signingPublicKey: sig.publicKey });
    const id = dev.json.deviceId;
    const key = dev.body.wgPublicKey;
    await until(() => tunnelB.peers.has(key), "the enrolled device on edge B");
    assert.deepEqual(tunnelB.peers.get(key), { id, wgPublicKey: key, address: dev.json.address });
    assert.ok(tunnelA.peers.has(key));

    await f.adminReq("POST", `/api/v1/admin/devices/${id}/disable`);
    await until(() => !tunnelB.peers.has(key), "the disabled device to leave edge B");
    await f.adminReq("POST", `/api/v1/admin/devices/${id}/enable`);
    await until(() => tunnelB.peers.has(key), "the enabled device back on edge B");

    // Re-enrolment with a new tunnel key: the old key goes, the new one comes.
    const fingerprint = dev.body.fingerprint;
    const wgPublicKey = f.enrollBody("x").wgPublicKey;
    const proof = sig.sign(
      reenrollMessage(fingerprintHash(fingerprint), wgPublicKey, sig.publicKey),
    );
    await f.enroll({ fingerprint, wgPublicKey, signingPublicKey: sig.publicKey, proof });
    await until(
      () => tunnelB.peers.has(wgPublicKey) && !tunnelB.peers.has(key),
      "edge B to swap the device's key",
    );
    assert.equal(tunnelB.peers.get(wgPublicKey)!.address, dev.json.address);

    await f.adminReq("DELETE", `/api/v1/admin/devices/${id}`);
    await until(() => tunnelB.peers.size === 0, "the deleted device to leave edge B");
    assert.equal(tunnelA.peers.size, 0);
    // B never echoes A's changes back to A's tunnel.
    assert.ok(tunnelA.calls.every((c) => !c.startsWith("remove ?")), tunnelA.calls.join(", "));
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("peer sync: the store decides, not the message; a reconnect reconciles missed changes", async () => {
  const f = await fixture();
  const a = new FleetTunnelPort(f.tunnel, f.ctx, "edge-a", []);
  f.ctx.tunnel = a;
  const tunnelB = new MemoryTunnelPort();
  const ctxB: EdgeContext = { ...f.ctx, tunnel: tunnelB };
  const b = new FleetTunnelPort(tunnelB, ctxB, "edge-b", []);
  try {
    const one = await f.enroll();
    const two = await f.enroll();
    await until(() => tunnelB.peers.size === 2, "both devices on edge B");

    // A stale or forged announcement for a disabled device adds nothing.
    f.store.devices.setDisabled(one.json.deviceId, true, f.clock.now());
    f.store.feed.publish(PEERS_CHANNEL, JSON.stringify({ o: "edge-x", k: one.body.wgPublicKey }));
    await until(() => !tunnelB.peers.has(one.body.wgPublicKey), "the disabled device removed");
    f.store.feed.publish(PEERS_CHANNEL, "not json");
    f.store.feed.publish(PEERS_CHANNEL, JSON.stringify({ o: "edge-x", k: "unknown-key" }));

    // Changes whose messages were lost (written straight to the store) are
    // made good when B reconciles: the second device's deletion, the first
    // one's return.
    f.store.devices.setDisabled(one.json.deviceId, false, f.clock.now());
    f.store.devices.delete(two.json.deviceId);
    assert.equal(b.reconcile(), 1);
    assert.deepEqual([...tunnelB.peers.keys()], [one.body.wgPublicKey]);
  } finally {
    a.close();
    b.close();
  }
});
