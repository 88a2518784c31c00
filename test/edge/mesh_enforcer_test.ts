/**
 * Client-to-client across two edges on real packets: two enforcers (edge A
 * holding the workstation, edge B the branch box) with one shared policy,
 * each routing the other's device to its mesh peer. The first edge decides
 * and logs; the second delivers without deciding, recognises the device's
 * replies as replies, and never sends mesh traffic anywhere but to one of
 * its own devices.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { Enforcer, type FlowDecision, type PeerDevice } from "../../src/edge/access/enforcer.ts";
import { isMeshPeer, MeshTag } from "../../src/edge/mesh_port.ts";
import { compileAccessPolicy } from "../../src/policy/access.ts";
import { AccessRule, AppSegment } from "../../src/policy/types.ts";
import { buildTcp } from "../../src/packet/build.ts";
import { TCP_FLAGS } from "../../src/packet/transport.ts";
import type { Peer } from "../../src/wireguard/mod.ts";

const WS = "100.64.0.2", GW = "100.64.0.3", APP = "198.19.0.10";
const groups: Record<string, string> = { dev_ws: "engineering", dev_gw: "branch" };
const owner: Record<string, string> = { [WS]: "dev_ws", [GW]: "dev_gw" };
const access = compileAccessPolicy(
  [AppSegment.parse({ name: "peers", domains: ["*.clients.portcullis.internal"], ports: ["22"] })],
  [AccessRule.parse({ name: "eng peers", segments: ["peers"], machineGroups: ["engineering"] })],
);

/** One edge: `local` is the address of the device it terminates, `remote` the one behind `mesh`. */
function edge(local: string, remote: string, mesh: Peer) {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const device = { userData: owner[local] } as Peer;
  const decisions: FlowDecision[] = [];
  const injected: Peer[] = [];
  const dst = (buf: Uint8Array, off: number) =>
    `${buf[off + 16]}.${buf[off + 17]}.${buf[off + 18]}.${buf[off + 19]}`;
  const e = new Enforcer({
    network: "100.64.0.0/16",
    edgeAddress: "100.64.0.1",
    clock,
    capacity: 1024,
    loadDevice: (id) =>
      groups[id]
        ? {
          subject: {
            deviceId: id,
            deviceName: id.slice(4),
            user: null,
            groups: [{ name: groups[id], source: "machine" }],
            machine: true,
          },
          posture: new Map(),
        }
        : null,
    lookupAddress: (ip): PeerDevice | null =>
      owner[ip]
        ? {
          deviceId: owner[ip],
          name: owner[ip].slice(4),
          fqdn: `${owner[ip].slice(4)}.clients.portcullis.internal`,
        }
        : null,
    // The other edge's device goes to its mesh peer; this edge's own to its tunnel.
    peerForDestination: (buf, off) =>
      dst(buf, off) === remote ? mesh : dst(buf, off) === local ? device : null,
    isTransit: isMeshPeer,
    localPeerForDestination: (buf, off) => dst(buf, off) === local ? device : null,
    inject: (to) => injected.push(to),
    onDecision: (d) => decisions.push(d),
  });
  e.setPolicy({ access, c2cEnabled: true });
  const from = (p: Peer, pkt: Uint8Array) => e.route(pkt, 0, pkt.length, p);
  return { e, device, decisions, injected, from };
}

const tcp = (
  src: string,
  dst: string,
  sport: number,
  dport: number,
  flags: number = TCP_FLAGS.SYN,
) => buildTcp({ src, dst, srcPort: sport, dstPort: dport, seq: 1000, flags });

function fleet() {
  const meshToB = { userData: new MeshTag("eb", "edge-b") } as Peer;
  const meshToA = { userData: new MeshTag("ea", "edge-a") } as Peer;
  return { meshToA, meshToB, a: edge(WS, GW, meshToB), b: edge(GW, WS, meshToA) };
}

Deno.test("mesh enforcement: the first edge decides and forwards, the second delivers, replies return", () => {
  const { a, b, meshToA, meshToB } = fleet();
  const syn = tcp(WS, GW, 40000, 22);
  assert.equal(a.from(a.device, syn), meshToB, "A sends the allowed flow over the mesh");
  assert.equal(a.decisions.length, 1);
  assert.equal(a.decisions[0].allowed, true);
  assert.equal(a.decisions[0].rule, "eng peers");
  assert.equal(b.from(meshToA, syn), b.device, "B delivers it to its device");
  assert.equal(b.decisions.length, 0, "B does not decide again");
  assert.equal(b.e.stats.transit, 1);
  // The branch box's reply: B knows it as a reply (no rule lets branch reach peers).
  const synAck = tcp(GW, WS, 22, 40000, TCP_FLAGS.SYN | TCP_FLAGS.ACK);
  assert.equal(b.from(b.device, synAck), meshToA, "B sends the reply back over the mesh");
  assert.equal(b.decisions.length, 0);
  assert.equal(a.from(meshToB, synAck), a.device, "A delivers the reply");
  // Later packets of the flow take the same way.
  const ack = tcp(WS, GW, 40000, 22, TCP_FLAGS.ACK);
  assert.equal(a.from(a.device, ack), meshToB);
  assert.equal(b.from(meshToA, ack), b.device);
  assert.equal(a.decisions.length, 1, "decided once");
});

Deno.test("mesh enforcement: denied at the first edge with its reason, never forwarded", () => {
  const { a, b } = fleet();
  assert.equal(a.from(a.device, tcp(WS, GW, 40001, 23)), "drop", "port 23 is in no segment");
  assert.equal(a.decisions.at(-1)!.allowed, false);
  assert.match(a.decisions.at(-1)!.reason, /no application segment covers it \(default deny\)/);
  assert.deepEqual(a.injected, [a.device], "the RST goes to the workstation");
  // A flow the branch box opens itself is decided at B, where it is connected.
  assert.equal(b.from(b.device, tcp(GW, WS, 40002, 22)), "drop");
  assert.match(b.decisions.at(-1)!.reason, /no rule allows device "gw" to reach "peers"/);
  assert.equal(a.e.stats.transit, 0);
});

Deno.test("mesh enforcement: mesh traffic goes only to this edge's own devices", () => {
  const { b, meshToA } = fleet();
  // Not to the TUN (the internet, private apps), not to the edge, not to a device elsewhere.
  for (const dst of [APP, "100.64.0.1", "100.64.0.9", WS]) {
    assert.equal(b.from(meshToA, tcp(WS, dst, 40003, 22)), "drop", dst);
  }
  assert.equal(b.e.stats.transitDropped, 4);
  assert.equal(b.e.stats.transit, 0);
});
