/**
 * The pump with fake TUN devices and real loopback UDP sockets: packets
 * injected into one side's TUN come out of the other side's TUN, through a
 * real handshake and real encryption; the UAPI socket reports the session.
 */
import assert from "node:assert/strict";
import { MemoryTun } from "../../src/tun/memory.ts";
import { UdpSocket } from "../../src/net/udp.ts";
import { endpoint } from "../../src/net/endpoint.ts";
import { Pump } from "../../src/dataplane/pump.ts";
import { queryStats, queryUapi, serveUapi } from "../../src/dataplane/uapi.ts";
import {
  encodeKey,
  generatePrivateKey,
  publicKeyOf,
  WireGuardDevice,
} from "../../src/wireguard/mod.ts";
import { systemClock } from "../../src/clock.ts";
import { buildIcmpEcho } from "../../src/packet/build.ts";

function side(address: string) {
  const priv = generatePrivateKey();
  const device = new WireGuardDevice({ privateKey: priv, clock: systemClock });
  const tun = new MemoryTun({ name: `mem${address.split(".").pop()}`, mtu: 1420 });
  const udp = UdpSocket.bind({ address: "127.0.0.1", port: 0 });
  const pump = new Pump({ tun, device, udp });
  return { priv, pub: publicKeyOf(priv), device, tun, udp, pump, address };
}

async function until<T>(fn: () => T | null | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("timed out");
}

Deno.test("pump: packets cross a real WireGuard session between two fake TUNs", async () => {
  const a = side("10.7.0.1"), b = side("10.7.0.2");
  const dir = await Deno.makeTempDir();
  const runs = [a.pump.run(), b.pump.run()];
  const uapi = await serveUapi(
    "pctest0",
    a.device,
    () => ({
      privateKey: a.priv,
      listenPort: a.udp.port,
    }),
    dir,
    () => ({ ...a.pump.stats }),
  );
  try {
    a.device.setPeer({
      publicKey: b.pub,
      allowedIps: ["10.7.0.2/32"],
      endpoint: endpoint("udp", "127.0.0.1", b.udp.port),
    });
    b.device.setPeer({ publicKey: a.pub, allowedIps: ["10.7.0.1/32"] });
    a.pump.kick();
    b.pump.kick();
    // Packets sent before the handshake are staged, then delivered in order.
    for (let seq = 1; seq <= 20; seq++) {
      a.tun.inject(buildIcmpEcho({ src: "10.7.0.1", dst: "10.7.0.2", ident: 9, seq }));
    }
    const got: Uint8Array[] = [];
    await until(() => {
      got.push(...b.tun.take());
      return got.length >= 20;
    });
    assert.equal(got.length, 20);
    assert.equal(got[0][9], 1, "ICMP arrives intact");
    assert.equal((got[19][26] << 8) | got[19][27], 20, "in order");
    // The reply path works too, and a packet to an address nobody owns is dropped.
    b.tun.inject(buildIcmpEcho({ src: "10.7.0.2", dst: "10.7.0.1", kind: "reply", seq: 1 }));
    b.tun.inject(buildIcmpEcho({ src: "10.7.0.2", dst: "10.7.0.99", seq: 2 }));
    const back = await until(() => {
      const t = a.tun.take();
      return t.length ? t : null;
    });
    assert.equal(back.length, 1);
    await until(() => b.device.drops.no_route >= 1);

    const show = await queryUapi(`${dir}/pctest0.sock`, "pctest0");
    assert.equal(show.publicKey, encodeKey(a.pub));
    assert.equal(show.peers[0].publicKey, encodeKey(b.pub));
    assert.equal(show.peers[0].endpoint, `127.0.0.1:${b.udp.port}`);
    assert.ok(show.peers[0].txBytes > 0 && show.peers[0].rxBytes > 0);
    assert.ok(Date.now() / 1000 - show.peers[0].lastHandshakeSec < 10);
    const stats = await queryStats(`${dir}/pctest0.sock`);
    assert.equal(stats.tunRead, 20);
    assert.equal(stats.tunWritten, 1);
  } finally {
    await uapi.close();
    await Promise.all([a.pump.stop(), b.pump.stop()]);
    await Promise.all(runs);
    for (const s of [a, b]) {
      s.device.close();
      s.udp.close();
      s.tun.close();
    }
    await Deno.remove(dir, { recursive: true });
  }
});
