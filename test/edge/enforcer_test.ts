/**
 * The enforcer on real packets (built with src/packet), with its edge-side
 * dependencies as plain functions: route and filter verdicts, RST/ICMP
 * rejections (parsed back), re-decisions after policy and posture changes,
 * client-to-client, FQDN segments through DNS bindings, the decision log.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { Enforcer, type FlowDecision, type PeerDevice } from "../../src/edge/access/enforcer.ts";
import { DnsBindings } from "../../src/edge/access/dns_bindings.ts";
import { SegmentResolver } from "../../src/edge/access/segment_resolver.ts";
import { compileAccessPolicy, type PostureState } from "../../src/policy/access.ts";
import { AccessRule, AppSegment } from "../../src/policy/types.ts";
import { buildIcmpEcho, buildIp, buildTcp, buildUdp } from "../../src/packet/build.ts";
import { IpHeader, IPPROTO, parseIp } from "../../src/packet/ip.ts";
import {
  ICMP_TYPE,
  parseTransport,
  TCP_FLAGS,
  transportChecksumOk,
  TransportHeader,
} from "../../src/packet/transport.ts";
import type { Peer } from "../../src/wireguard/mod.ts";

const WS = "100.64.0.2", GW = "100.64.0.3", APP = "198.19.0.10";

const segments = [
  AppSegment.parse({
    name: "app",
    cidrs: ["198.19.0.0/24"],
    ports: ["80"],
    protocols: ["tcp", "udp"],
  }),
  AppSegment.parse({ name: "wiki", domains: ["wiki.corp.internal"], ports: ["443"] }),
  AppSegment.parse({ name: "peers", domains: ["*.clients.portcullis.internal"] }),
];
const rules = (postureFor?: string) => [
  AccessRule.parse({
    name: "engineering apps",
    segments: ["app", "wiki"],
    machineGroups: ["engineering"],
    postureProfiles: postureFor ? [postureFor] : [],
  }),
  AccessRule.parse({ name: "eng peers", segments: ["peers"], machineGroups: ["engineering"] }),
];

function setup() {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const peers = new Map<string, Peer>([
    [WS, { userData: "dev_ws" } as Peer],
    [GW, { userData: "dev_gw" } as Peer],
    ["100.64.0.9", { userData: "dev_ghost" } as Peer],
  ]);
  const groups: Record<string, string> = { dev_ws: "engineering", dev_gw: "branch" };
  const posture = new Map<string, Map<string, PostureState>>();
  const fqdns = new Map<string, string | null>([[WS, null], [GW, null]]);
  const injected: { to: Peer; packet: Uint8Array }[] = [];
  const decisions: FlowDecision[] = [];
  const dns = new DnsBindings(clock);
  const e = new Enforcer({
    network: "100.64.0.0/16",
    edgeAddress: "100.64.0.1",
    clock,
    capacity: 1024,
    dns,
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
          posture: posture.get(id) ?? new Map(),
        }
        : null,
    lookupAddress: (ip): PeerDevice | null => {
      const p = peers.get(ip);
      if (!p) return null;
      const id = p.userData as string;
      return { deviceId: id, name: id.slice(4), fqdn: fqdns.get(ip) ?? null };
    },
    peerForDestination: (buf, off) => {
      const d = `${buf[off + 16]}.${buf[off + 17]}.${buf[off + 18]}.${buf[off + 19]}`;
      return peers.get(d) ?? null;
    },
    inject: (to, packet) => injected.push({ to, packet }),
    onDecision: (d) => decisions.push(d),
  });
  const policy = (postureFor?: string, c2cEnabled = false) =>
    e.setPolicy({ access: compileAccessPolicy(segments, rules(postureFor)), c2cEnabled });
  policy();
  const from = (src: string, pkt: Uint8Array) => e.route(pkt, 0, pkt.length, peers.get(src)!);
  const back = (pkt: Uint8Array) => e.filter(pkt, 0, pkt.length);
  return { clock, e, peers, injected, decisions, posture, fqdns, dns, policy, from, back };
}

function parsed(pkt: Uint8Array) {
  const ip = new IpHeader(), tp = new TransportHeader();
  assert.equal(parseIp(pkt, 0, pkt.length, ip), null);
  assert.equal(parseTransport(ip, tp), null);
  assert.ok(transportChecksumOk(ip), "checksum of the rejection is right");
  return { ip, tp };
}

const syn = (src: string, dst: string, sport: number, dport: number) =>
  buildTcp({ src, dst, srcPort: sport, dstPort: dport, seq: 1000 });

Deno.test("enforcer: allowed flows pass, denied TCP gets a RST to the device, others ICMP prohibited", () => {
  const t = setup();
  assert.equal(t.from(WS, syn(WS, APP, 40000, 80)), "tun");
  assert.equal(t.decisions.length, 1);
  assert.equal(t.decisions[0].allowed, true);
  assert.equal(t.decisions[0].rule, "engineering apps");
  assert.equal(t.decisions[0].deviceId, "dev_ws");
  assert.equal(t.decisions[0].dst, APP);
  assert.equal(t.decisions[0].port, 80);

  // The branch box is denied: a RST from the app's address answers its SYN.
  assert.equal(t.from(GW, syn(GW, APP, 41000, 80)), "drop");
  assert.equal(t.injected.length, 1);
  assert.equal(t.injected[0].to, t.peers.get(GW));
  const rst = parsed(t.injected[0].packet);
  assert.equal(rst.ip.srcText(), APP);
  assert.equal(rst.ip.dstText(), GW);
  assert.equal(rst.tp.srcPort, 80);
  assert.equal(rst.tp.dstPort, 41000);
  assert.equal(rst.tp.tcpFlags, TCP_FLAGS.RST | TCP_FLAGS.ACK);
  assert.equal(rst.tp.ack, 1001);
  assert.match(t.decisions[1].reason, /^denied: no rule allows device "gw" to reach "app"/);

  // UDP is refused with ICMP type 3 code 13 from the edge, quoting the datagram.
  const udp = buildUdp({ src: GW, dst: APP, srcPort: 5000, dstPort: 80, data: new Uint8Array(10) });
  assert.equal(t.from(GW, udp), "drop");
  const icmp = parsed(t.injected[1].packet);
  assert.equal(icmp.ip.srcText(), "100.64.0.1");
  assert.equal(icmp.tp.icmpType, ICMP_TYPE.DEST_UNREACHABLE);
  assert.equal(icmp.tp.icmpCode, 13);
  assert.deepEqual(t.injected[1].packet.subarray(28), udp);

  // A segment's established verdict costs a lookup: no new decision, no new log.
  const ack = buildTcp({ src: WS, dst: APP, srcPort: 40000, dstPort: 80, flags: TCP_FLAGS.ACK });
  for (let i = 0; i < 5; i++) assert.equal(t.from(WS, ack), "tun");
  assert.equal(t.e.stats.newFlows, 3);
  assert.equal(t.decisions.length, 3);
  // Retransmitted SYNs of a denied flow are answered, but logged once.
  assert.equal(t.from(GW, syn(GW, APP, 41000, 80)), "drop");
  assert.equal(t.injected.length, 3);
  assert.equal(t.decisions.length, 3);

  // Internet and the edge itself: allowed, not in the decision log.
  assert.equal(t.from(GW, syn(GW, "8.8.8.8", 1, 443)), "tun");
  assert.equal(
    t.from(GW, buildUdp({ src: GW, dst: "100.64.0.1", srcPort: 9, dstPort: 53 })),
    "tun",
  );
  assert.equal(t.decisions.length, 3);
  // Garbage and unknown devices are dropped.
  assert.equal(t.from(WS, new Uint8Array([0x45, 0, 0])), "drop");
  assert.equal(t.from("100.64.0.9", syn("100.64.0.9", "8.8.8.8", 1, 443)), "drop");
  assert.equal(t.e.stats.malformed, 1);
  assert.equal(t.e.stats.unknownDevice, 1);
});

Deno.test("enforcer: replies pass the filter, unsolicited packets to devices do not", () => {
  const t = setup();
  t.from(WS, syn(WS, APP, 40000, 80));
  const synAck = buildTcp({
    src: APP,
    dst: WS,
    srcPort: 80,
    dstPort: 40000,
    flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK,
  });
  assert.equal(t.back(synAck), "pass");
  assert.equal(t.back(buildTcp({ src: APP, dst: WS, srcPort: 80, dstPort: 40001 })), "drop");
  assert.equal(
    t.back(buildTcp({ src: "198.19.0.11", dst: WS, srcPort: 80, dstPort: 40000 })),
    "drop",
  );
  // An ICMP "fragmentation needed" about the flow passes (path MTU discovery).
  const quoted = syn(WS, APP, 40000, 80).subarray(0, 28);
  const frag = new Uint8Array(8 + quoted.length);
  frag[0] = 3;
  frag[1] = 4;
  frag.set(quoted, 8);
  const err = buildIp({ src: "198.19.0.1", dst: WS }, IPPROTO.ICMP, frag);
  assert.equal(t.back(err), "pass");
  const other = syn(WS, APP, 49999, 80).subarray(0, 28);
  frag.set(other, 8);
  assert.equal(t.back(buildIp({ src: "198.19.0.1", dst: WS }, IPPROTO.ICMP, frag)), "drop");
  // Pings: the reply matches by identifier.
  t.from(WS, buildIcmpEcho({ src: WS, dst: "9.9.9.9", ident: 77 }));
  assert.equal(
    t.back(buildIcmpEcho({ src: "9.9.9.9", dst: WS, ident: 77, kind: "reply" })),
    "pass",
  );
  assert.equal(
    t.back(buildIcmpEcho({ src: "9.9.9.9", dst: WS, ident: 78, kind: "reply" })),
    "drop",
  );
  assert.equal(t.e.stats.unsolicited, 4);
});

Deno.test("enforcer: a policy swap or a posture change re-decides established flows on their next packet", () => {
  const t = setup();
  const ack = buildTcp({
    src: WS,
    dst: APP,
    srcPort: 40000,
    dstPort: 80,
    flags: TCP_FLAGS.ACK,
    seq: 5,
    ack: 77,
  });
  assert.equal(t.from(WS, syn(WS, APP, 40000, 80)), "tun");
  const reply = buildTcp({ src: APP, dst: WS, srcPort: 80, dstPort: 40000, flags: TCP_FLAGS.ACK });
  assert.equal(t.back(reply), "pass");
  // Now the rule needs posture "disk" that the workstation does not have.
  t.policy("disk");
  assert.equal(t.back(reply), "drop", "the server's packets stop at once too");
  assert.equal(t.from(WS, ack), "drop");
  const rst = parsed(t.injected.at(-1)!.packet);
  assert.equal(rst.tp.tcpFlags, TCP_FLAGS.RST);
  assert.equal(rst.tp.seq, 77, "a RST for an established flow carries its ACK number");
  const denied = t.decisions.at(-1)!;
  assert.equal(denied.allowed, false);
  assert.equal(
    denied.reason,
    'denied: rule "engineering apps" needs posture "disk", the device has not reported it',
  );
  // The device reports a passing result: allowed again after deviceChanged.
  const now = t.clock.now();
  t.posture.set(
    "dev_ws",
    new Map([["disk", { passed: true, reason: "ok", evaluatedAt: now, expiresAt: now + 10_000 }]]),
  );
  assert.equal(t.from(WS, ack), "drop", "still the old device state");
  t.e.deviceChanged("dev_ws");
  const v = t.from(WS, ack);
  assert.equal(v, "tun", JSON.stringify(t.decisions.at(-1)));
  assert.equal(t.decisions.at(-1)!.allowed, true);
  // The result expires: tick() re-decides.
  t.clock.advance(10_001);
  t.e.tick();
  assert.equal(t.from(WS, ack), "drop");
  assert.match(t.decisions.at(-1)!.reason, /expired/);
});

Deno.test("enforcer: client-to-client needs it on, a valid host name, and a rule", () => {
  const t = setup();
  const ping = buildIcmpEcho({ src: WS, dst: GW, ident: 5 });
  assert.equal(t.from(WS, ping), "drop");
  assert.equal(t.decisions.at(-1)!.reason, "denied: client-to-client is disabled");
  t.policy(undefined, true);
  assert.equal(t.from(WS, ping), "drop");
  assert.equal(t.decisions.at(-1)!.reason, 'denied: device "gw" has no valid registered host name');
  t.fqdns.set(GW, "gw.clients.portcullis.internal");
  t.e.peersChanged();
  assert.equal(
    t.from(WS, ping),
    t.peers.get(GW),
    "forwarded straight to the other device's tunnel",
  );
  assert.equal(t.decisions.at(-1)!.rule, "eng peers");
  assert.equal(t.decisions.at(-1)!.name, "gw.clients.portcullis.internal");
  // Its reply goes back to the workstation; the branch box may not open its own.
  assert.equal(
    t.from(GW, buildIcmpEcho({ src: GW, dst: WS, ident: 5, kind: "reply" })),
    t.peers.get(WS),
  );
  t.fqdns.set(WS, "ws.clients.portcullis.internal");
  t.e.peersChanged();
  assert.equal(t.from(GW, buildIcmpEcho({ src: GW, dst: WS, ident: 6 })), "drop");
  assert.match(t.decisions.at(-1)!.reason, /no rule allows device "gw" to reach "peers"/);
  assert.equal(t.from(WS, buildIcmpEcho({ src: WS, dst: "100.64.7.7", ident: 1 })), "drop");
  assert.equal(t.decisions.at(-1)!.reason, "denied: no device holds 100.64.7.7");
});

Deno.test("enforcer: FQDN segments match flows to the addresses the edge DNS gave that device", () => {
  const t = setup();
  t.dns.record(WS, "Wiki.Corp.Internal.", ["10.1.2.3"], 30);
  t.dns.record(GW, "wiki.corp.internal", ["10.1.2.3"], 30);
  assert.equal(t.from(WS, syn(WS, "10.1.2.3", 1, 443)), "tun");
  assert.equal(t.decisions.at(-1)!.name, "wiki.corp.internal");
  assert.equal(t.decisions.at(-1)!.rule, "engineering apps");
  assert.equal(t.from(GW, syn(GW, "10.1.2.3", 1, 443)), "drop");
  assert.deepEqual(t.decisions.at(-1)!.segments, ["wiki"]);
  // After the binding expires (TTL floor 60 s) the address is just an
  // address: a private one, which no segment holds, so default deny.
  t.clock.advance(61_000);
  assert.equal(t.from(GW, syn(GW, "10.1.2.3", 2, 443)), "drop");
  assert.deepEqual(t.decisions.at(-1)!.segments, []);
  assert.match(t.decisions.at(-1)!.reason, /10\.1\.2\.3 is a private address, not the internet/);
});

Deno.test("enforcer: an address that is not the internet is private without a segment", () => {
  const t = setup();
  // A device that routes them into its tunnel reaches nothing behind the edge.
  const cases: [string, number, string, RegExp | null][] = [
    ["10.9.9.9", 22, "drop", /private address/],
    ["192.168.1.1", 80, "drop", /private address/],
    ["169.254.169.254", 80, "drop", /link-local address/],
    ["127.0.0.1", 8443, "drop", /loopback address/],
    ["100.127.0.1", 53, "drop", /shared address/],
    ["198.18.0.80", 443, "tun", null],
    ["8.8.8.8", 53, "tun", null],
  ];
  for (const [dst, port, want, reason] of cases) {
    const before = t.decisions.length;
    assert.equal(t.from(WS, syn(WS, dst, 7, port)), want, dst);
    if (reason) assert.match(t.decisions.at(-1)!.reason, reason, dst);
    else assert.equal(t.decisions.length, before, `${dst}: internet flows are not logged`);
  }
});

Deno.test("enforcer: rejections are rate-limited per device", () => {
  const t = setup();
  for (let p = 1; p <= 100; p++) t.from(GW, syn(GW, APP, p, 80));
  assert.equal(t.injected.length, 40, "a burst of twice the rate");
  assert.equal(t.e.stats.rejectsLimited, 60);
  t.clock.advance(1000);
  t.from(GW, syn(GW, APP, 500, 80));
  assert.equal(t.injected.length, 41);
});

Deno.test("enforcer: names the edge resolved itself hold for every device", async () => {
  const t = setup();
  const resolver = new SegmentResolver(
    t.dns,
    (name) => Promise.resolve(name === "wiki.corp.internal" ? ["10.1.2.3"] : []),
    { intervalMs: 60_000 },
  );
  await resolver.setNames(["wiki.corp.internal", "gone.corp.internal"]);
  // The branch box never asked the edge DNS; the address is still the wiki's.
  assert.equal(t.from(GW, syn(GW, "10.1.2.3", 1, 443)), "drop");
  assert.deepEqual(t.decisions.at(-1)!.segments, ["wiki"]);
  assert.equal(t.decisions.at(-1)!.name, "wiki.corp.internal");
  assert.equal(t.from(WS, syn(WS, "10.1.2.3", 1, 443)), "tun");
  await resolver.close();
});
