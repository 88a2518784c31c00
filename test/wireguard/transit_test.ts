import assert from "node:assert/strict";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/mod.ts";
import { deliver, ipv4, open, pair, sealFrom, slotWith } from "./harness.ts";

/** a and b with a session, as two edges of a mesh; b also holds a device that owns 100.64.0.5. */
function meshPair() {
  const p = pair();
  const pkt = ipv4("10.0.0.1", "10.0.0.2", 20);
  p.a.dev.outbound(slotWith(pkt), pkt.length);
  deliver(p.a, p.b);
  deliver(p.b, p.a);
  const first = p.a.dev.drainOutgoing();
  assert.ok(open(p.b, first[0].data, p.a.ep).packet, "session up");
  const device = p.b.dev.setPeer({
    publicKey: publicKeyOf(generatePrivateKey()),
    allowedIps: ["100.64.0.5/32"],
  });
  const edgeA = p.b.dev.getPeer(p.a.pub)!;
  return { ...p, device, edgeA };
}

Deno.test("transit IPs: a mesh peer is accepted for them, and nothing is routed to it by them", () => {
  const { a, b, device, edgeA } = meshPair();
  const from = (src: string) => open(b, sealFrom(a, ipv4(src, "10.0.0.2", 30))!, a.ep);
  assert.equal(from("100.64.0.5").reason, "not_allowed_source", "not before it carries it");
  b.dev.setTransitIps(edgeA, ["100.64.0.5/32"]);
  const got = from("100.64.0.5");
  assert.ok(got.packet, "a source located at that edge is accepted");
  assert.equal(got.peer, edgeA);
  assert.equal(from("100.64.0.6").reason, "not_allowed_source", "any other source is not");
  // The device keeps its own address: outbound traffic is routed to it, not to the edge.
  assert.equal(b.dev.peerForAddress("100.64.0.5"), device);
  assert.deepEqual(b.dev.transitIpsOf(edgeA), ["100.64.0.5/32"]);
  const st = b.dev.stats().find((s) => s.publicKey === edgeA.publicKeyText)!;
  assert.deepEqual(st.allowedIps.sort(), ["10.0.0.1/32", "100.64.0.5/32"]);
  // Replaced, not added to; removing the peer removes them.
  b.dev.setTransitIps(edgeA, ["100.64.0.6/32"]);
  assert.equal(from("100.64.0.5").reason, "not_allowed_source");
  assert.ok(from("100.64.0.6").packet);
  // Setting its allowed IPs again leaves its transit IPs alone.
  b.dev.setPeer({ publicKey: a.pub, allowedIps: ["10.0.0.1/32"] });
  assert.ok(from("100.64.0.6").packet);
  b.dev.removePeer(a.pub);
  assert.deepEqual(b.dev.transitIpsOf(edgeA), []);
});

Deno.test("transit IPs: bad input is refused with the value named", () => {
  const { b, edgeA } = meshPair();
  assert.throws(
    () => b.dev.setTransitIps(edgeA, ["100.64.0.300/32"]),
    /"100\.64\.0\.300\/32" is not an IPv4 or IPv6 prefix/,
  );
  b.dev.removePeer(edgeA.publicKey);
  assert.throws(() => b.dev.setTransitIps(edgeA, ["100.64.0.5/32"]), /is not configured/);
});
