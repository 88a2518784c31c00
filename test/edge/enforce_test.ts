import assert from "node:assert/strict";
import { deviceRouteFn } from "../../src/edge/enforce.ts";
import { buildIcmpEcho } from "../../src/packet/build.ts";
import type { Peer } from "../../src/wireguard/mod.ts";

const from = {} as Peer;

Deno.test("edge enforcement: device-to-device only with client-to-client on", () => {
  const cases: [string, boolean, "tun" | "drop"][] = [
    ["198.18.0.80", false, "tun"], // the internet
    ["100.64.0.1", false, "tun"], // the edge itself (DNS, am-I-protected)
    ["100.64.0.7", false, "drop"], // another device
    ["100.64.255.254", false, "drop"],
    ["100.65.0.7", false, "tun"], // outside the device network
    ["100.64.0.7", true, "tun"], // client-to-client enabled
  ];
  for (const [dst, c2c, want] of cases) {
    const fn = deviceRouteFn("100.64.0.0/16", "100.64.0.1", c2c);
    const pkt = buildIcmpEcho({ src: "100.64.0.2", dst });
    const slot = new Uint8Array(16 + pkt.length);
    slot.set(pkt, 16);
    assert.equal(fn(slot, 16, pkt.length, from), want, `${dst} c2c=${c2c}`);
  }
  const v6 = buildIcmpEcho({ src: "fd00::2", dst: "fd00::3" });
  assert.equal(deviceRouteFn("100.64.0.0/16", "100.64.0.1", false)(v6, 0, v6.length, from), "tun");
});
