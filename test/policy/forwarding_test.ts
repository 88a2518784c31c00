import assert from "node:assert/strict";
import {
  actionFor,
  decideForwarding,
  transportPolicy,
  usesTunnel,
} from "../../src/policy/forwarding.ts";
import { ForwardingProfile, type NetworkType } from "../../src/policy/types.ts";

Deno.test("forwarding: the profile's action per network type", () => {
  const defaults = ForwardingProfile.parse({ name: "default" });
  // Packet slots hold at most a 2000-byte MTU.
  assert.equal(ForwardingProfile.parse({ name: "j", mtu: 2000 }).mtu, 2000);
  assert.throws(
    () => ForwardingProfile.parse({ name: "j", mtu: 9000 }),
    /MTU must be a whole number from 576 to 2000/,
  );
  const custom = ForwardingProfile.parse({
    name: "custom",
    actions: { on_trusted: "enforce_pac", off_trusted: "tunnel_local_proxy", vpn_trusted: "none" },
    udpTimeoutSec: 20,
    tlsFallback: false,
    mtu: 1280,
  });
  const table: [ForwardingProfile, NetworkType, string][] = [
    [defaults, "on_trusted", "none"],
    [defaults, "off_trusted", "tunnel"],
    [defaults, "vpn_trusted", "tunnel"],
    [custom, "on_trusted", "enforce_pac"],
    [custom, "off_trusted", "tunnel_local_proxy"],
    [custom, "vpn_trusted", "none"],
  ];
  for (const [p, t, want] of table) {
    assert.equal(actionFor(p, t), want, `${p.name} ${t}`);
    const d = decideForwarding(p, { networkType: t, explanation: "Because" });
    assert.equal(d.action, want);
    assert.equal(d.networkType, t);
    assert.equal(d.reason, `Because → action ${want} (profile "${p.name}")`);
  }
  assert.deepEqual(transportPolicy(defaults), { udpTimeoutMs: 5000, tlsFallback: true, mtu: 1420 });
  assert.deepEqual(transportPolicy(custom), { udpTimeoutMs: 20000, tlsFallback: false, mtu: 1280 });
  assert.deepEqual(
    (["tunnel", "tunnel_local_proxy", "enforce_pac", "none"] as const).map(usesTunnel),
    [true, true, false, false],
  );
});
