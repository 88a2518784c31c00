/**
 * Enforcement in a real pump: a "device" and an "edge", each a WireGuard
 * device with a fake TUN and a real loopback UDP socket, with a real
 * handshake and real encryption between them. The edge's pump runs the
 * enforcer's route and filter hooks: an allowed SYN comes out of the edge's
 * TUN, a denied one is answered by a RST that comes out of the device's TUN
 * (it crossed the tunnel back), replies pass, unsolicited packets do not.
 */
import assert from "node:assert/strict";
import { MemoryTun } from "../../src/tun/memory.ts";
import { UdpSocket } from "../../src/net/udp.ts";
import { endpoint } from "../../src/net/endpoint.ts";
import { Pump } from "../../src/dataplane/pump.ts";
import { generatePrivateKey, publicKeyOf, WireGuardDevice } from "../../src/wireguard/mod.ts";
import { systemClock } from "../../src/clock.ts";
import { buildTcp } from "../../src/packet/build.ts";
import { IpHeader, parseIp } from "../../src/packet/ip.ts";
import { parseTransport, TCP_FLAGS, TransportHeader } from "../../src/packet/transport.ts";
import { Enforcer } from "../../src/edge/access/enforcer.ts";
import { compileAccessPolicy } from "../../src/policy/access.ts";
import { AccessRule, AppSegment } from "../../src/policy/types.ts";

function side(name: string) {
  const priv = generatePrivateKey();
  const device = new WireGuardDevice({ privateKey: priv, clock: systemClock });
  const tun = new MemoryTun({ name, mtu: 1420 });
  const udp = UdpSocket.bind({ address: "127.0.0.1", port: 0 });
  const pump = new Pump({ tun, device, udp });
  return { pub: publicKeyOf(priv), device, tun, udp, pump };
}

async function until<T>(fn: () => T | null | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error("timed out");
}

Deno.test("enforcement in a real pump: allowed reaches the TUN, denied gets a RST through the tunnel", async () => {
  const dev = side("memdev"), edge = side("memedge");
  const runs = [dev.pump.run(), edge.pump.run()];
  try {
    dev.device.setPeer({
      publicKey: edge.pub,
      allowedIps: ["0.0.0.0/0"],
      endpoint: endpoint("udp", "127.0.0.1", edge.udp.port),
    });
    const peer = edge.device.setPeer({ publicKey: dev.pub, allowedIps: ["100.64.0.2/32"] });
    peer.userData = "dev_ws";
    const enforcer = new Enforcer({
      network: "100.64.0.0/16",
      edgeAddress: "100.64.0.1",
      clock: systemClock,
      loadDevice: (id) => ({
        subject: {
          deviceId: id,
          deviceName: "ws",
          user: null,
          groups: [{ name: "engineering", source: "machine" }],
          machine: true,
        },
        posture: new Map(),
      }),
      lookupAddress: () => null,
      peerForDestination: (b, o, l) => edge.device.peerForDestination(b, o, l),
      inject: (p, pkt) => edge.pump.sendTo(p, pkt),
    });
    enforcer.setPolicy({
      access: compileAccessPolicy(
        [
          AppSegment.parse({ name: "app", cidrs: ["198.19.0.10/32"], ports: ["80"] }),
          AppSegment.parse({ name: "hr", cidrs: ["198.19.0.20/32"] }),
        ],
        [AccessRule.parse({ name: "eng", segments: ["app"], machineGroups: ["engineering"] })],
      ),
      c2cEnabled: false,
    });
    edge.pump.setRoute(enforcer.route);
    edge.pump.setFilter(enforcer.filter);
    dev.pump.kick();

    dev.tun.inject(
      buildTcp({ src: "100.64.0.2", dst: "198.19.0.10", srcPort: 40000, dstPort: 80 }),
    );
    dev.tun.inject(
      buildTcp({ src: "100.64.0.2", dst: "198.19.0.20", srcPort: 40001, dstPort: 443, seq: 7 }),
    );
    const out = await until(() => {
      const t = edge.tun.take();
      return t.length ? t : null;
    });
    assert.equal(out.length, 1, "only the allowed SYN reaches the edge's TUN");
    assert.equal(out[0][19], 10);
    const rst = await until(() => {
      const t = dev.tun.take();
      return t.length ? t[0] : null;
    });
    const ip = new IpHeader(), tp = new TransportHeader();
    assert.equal(parseIp(rst, 0, rst.length, ip), null);
    assert.equal(parseTransport(ip, tp), null);
    assert.equal(ip.srcText(), "198.19.0.20");
    assert.equal(tp.tcpFlags, TCP_FLAGS.RST | TCP_FLAGS.ACK);
    assert.equal(tp.ack, 8);
    assert.equal(edge.pump.stats.injected, 1);
    assert.equal(edge.pump.stats.routedDrop, 1);

    // The server's answer goes back; a packet nobody asked for does not.
    edge.tun.inject(buildTcp({
      src: "198.19.0.10",
      dst: "100.64.0.2",
      srcPort: 80,
      dstPort: 40000,
      flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK,
    }));
    edge.tun.inject(buildTcp({ src: "198.19.0.10", dst: "100.64.0.2", srcPort: 80, dstPort: 1 }));
    const back = await until(() => {
      const t = dev.tun.take();
      return t.length ? t : null;
    });
    assert.equal(back.length, 1);
    assert.equal(back[0][33], TCP_FLAGS.SYN | TCP_FLAGS.ACK);
    await until(() => edge.pump.stats.filtered >= 1);
    assert.equal(enforcer.stats.unsolicited, 1);
  } finally {
    await Promise.all([dev.pump.stop(), edge.pump.stop()]);
    await Promise.all(runs);
    for (const s of [dev, edge]) {
      s.device.close();
      s.udp.close();
      s.tun.close();
    }
  }
});
