import assert from "node:assert/strict";
import { endpoint } from "../../src/net/endpoint.ts";
import { INITIATION_SIZE, RESPONSE_SIZE, timers } from "../../src/wireguard/mod.ts";
import { deliver, ipv4, open, pair, sealFrom, settle, slotWith } from "./harness.ts";

function handshake() {
  const p = pair();
  const pkt = ipv4("10.0.0.1", "10.0.0.2", 100);
  const slot = slotWith(pkt);
  const r = p.a.dev.outbound(slot, pkt.length);
  assert.equal(r.kind, "queued");
  const init = deliver(p.a, p.b);
  assert.equal(init.length, 1);
  assert.equal(init[0].data.length, INITIATION_SIZE);
  assert.equal(init[0].data[0], 1);
  const resp = deliver(p.b, p.a);
  assert.equal(resp.length, 1);
  assert.equal(resp[0].data.length, RESPONSE_SIZE);
  // A now flushes the staged packet; B decrypts it.
  const data = p.a.dev.drainOutgoing();
  assert.equal(data.length, 1);
  assert.equal(data[0].data[0], 4);
  assert.equal(data[0].endpoint, p.b.ep);
  const got = open(p.b, data[0].data, p.a.ep);
  assert.deepEqual(got.packet, pkt);
  return { ...p, pkt };
}

Deno.test("device: handshake then data both ways, events and stats", () => {
  const { a, b } = handshake();
  assert.equal(a.events.filter((e) => e.type === "handshake_complete").length, 1);
  assert.equal(
    b.events.filter((e) => e.type === "handshake_complete").length,
    1,
    "responder confirms on first data",
  );
  const back = ipv4("10.0.0.2", "10.0.0.1", 1300);
  const dg = sealFrom(b, back);
  assert.ok(dg, "responder sends at once after confirmation");
  assert.equal((dg!.length - 32) % 16, 0, "padded to 16");
  assert.deepEqual(open(a, dg!, b.ep).packet, back);
  const [sa] = a.dev.stats();
  assert.ok(sa.hasSession);
  assert.ok(sa.rxBytes > 0 && sa.txBytes > 0);
  assert.ok(sa.lastHandshakeWallMs !== null);
  assert.deepEqual(sa.allowedIps.sort(), ["10.0.0.2/32", "192.168.50.0/24"]);
});

Deno.test("device: replayed, tampered and misrouted transport packets are dropped and counted", () => {
  const { a, b } = handshake();
  const dg = sealFrom(a, ipv4("10.0.0.1", "10.0.0.2", 64))!;
  assert.ok(open(b, dg, a.ep).packet);
  assert.equal(open(b, dg, a.ep).reason, "replay");
  const dg2 = sealFrom(a, ipv4("10.0.0.1", "10.0.0.2", 64))!;
  dg2[40] ^= 0x80;
  assert.equal(open(b, dg2, a.ep).reason, "bad_auth");
  const dg3 = sealFrom(a, ipv4("10.9.9.9", "10.0.0.2", 64))!;
  assert.equal(open(b, dg3, a.ep).reason, "not_allowed_source");
  const dg4 = sealFrom(a, ipv4("10.0.0.1", "10.0.0.2", 64))!;
  dg4[4] ^= 1;
  assert.equal(open(b, dg4, a.ep).reason, "unknown_index");
  assert.equal(b.dev.drops.replay, 1);
  assert.equal(b.dev.drops.bad_auth, 1);
  assert.equal(b.dev.drops.not_allowed_source, 1);
  // Out-of-order delivery inside the window is fine.
  const x = sealFrom(a, ipv4("10.0.0.1", "10.0.0.2", 10))!;
  const y = sealFrom(a, ipv4("10.0.0.1", "10.0.0.2", 11))!;
  assert.ok(open(b, y, a.ep).packet);
  assert.ok(open(b, x, a.ep).packet);
  // No route: destination outside every peer's allowed IPs.
  const slot = slotWith(ipv4("10.0.0.1", "8.8.8.8"));
  assert.equal(a.dev.outbound(slot, 40).reason, "no_route");
});

Deno.test("device: garbage on the port never throws and lands in the right counter", () => {
  const { b, a } = pair();
  const from = endpoint("udp", "127.0.0.9", 9);
  const cases: Array<[Uint8Array, string]> = [
    [new Uint8Array(2), "short"],
    [new Uint8Array([1, 0, 0, 0, 5]), "wrong_size"],
    [new Uint8Array([2, 0, 0, 0, 5]), "wrong_size"],
    [new Uint8Array([3, 0, 0, 0, 5]), "wrong_size"],
    [new Uint8Array([4, 0, 0, 0, 5]), "short"],
    [new Uint8Array([9, 0, 0, 0, 5]), "unknown_type"],
    [new Uint8Array([1, 1, 0, 0]), "unknown_type"],
    [Object.assign(new Uint8Array(INITIATION_SIZE), { 0: 1 }), "bad_mac1"],
    [Object.assign(new Uint8Array(RESPONSE_SIZE), { 0: 2 }), "bad_mac1"],
    [Object.assign(new Uint8Array(64), { 0: 3 }), "unknown_index"],
    [Object.assign(new Uint8Array(100), { 0: 4 }), "unknown_index"],
  ];
  for (const [dg, want] of cases) {
    assert.equal(open(b, dg, from).reason, want, `${dg[0]} len ${dg.length}`);
  }
  for (let i = 0; i < 300; i++) {
    const dg = crypto.getRandomValues(new Uint8Array(1 + (i % 200)));
    dg[0] = 1 + (i % 4);
    dg[1] = dg[2] = dg[3] = 0;
    assert.equal(open(b, dg, from).packet, null);
  }
  assert.equal(b.dev.hasOutgoing, false);
  assert.equal(a.dev.stats()[0].hasSession, false);
});

Deno.test("device: replayed initiation is rejected by its timestamp; bad mac1 dropped", () => {
  const { a, b, clock } = pair();
  a.dev.outbound(slotWith(ipv4("10.0.0.1", "10.0.0.2")), 40);
  const [init] = a.dev.drainOutgoing();
  assert.equal(open(b, init.data, a.ep).reason, null);
  b.dev.drainOutgoing();
  clock.advance(1000);
  assert.equal(open(b, init.data, a.ep).reason, "handshake_replay");
  const bad = init.data.slice();
  bad[120] ^= 1;
  assert.equal(open(b, bad, a.ep).reason, "bad_mac1");
});

Deno.test("device: mismatched preshared keys fail the handshake", () => {
  const psk = crypto.getRandomValues(new Uint8Array(32));
  const ok = pair({ psk });
  ok.a.dev.outbound(slotWith(ipv4("10.0.0.1", "10.0.0.2")), 40);
  settle(ok.a, ok.b);
  assert.ok(ok.a.dev.stats()[0].hasSession);
  const bad = pair({ psk, pskB: crypto.getRandomValues(new Uint8Array(32)) });
  bad.a.dev.outbound(slotWith(ipv4("10.0.0.1", "10.0.0.2")), 40);
  settle(bad.a, bad.b);
  assert.equal(bad.a.dev.stats()[0].hasSession, false);
  assert.equal(bad.a.dev.drops.bad_handshake, 1);
});

Deno.test("device: under load, initiations get a cookie reply and succeed with mac2", () => {
  const { a, b, clock } = pair();
  b.dev.setUnderLoad(true);
  a.dev.outbound(slotWith(ipv4("10.0.0.1", "10.0.0.2")), 40);
  deliver(a, b);
  assert.equal(b.dev.cookieRepliesSent, 1);
  const [reply] = deliver(b, a);
  assert.equal(reply.data.length, 64);
  assert.equal(reply.data[0], 3);
  assert.equal(a.dev.drops.bad_cookie, 0);
  assert.equal(a.dev.stats()[0].hasSession, false);
  clock.advance(timers.REKEY_TIMEOUT_MS + timers.REKEY_TIMEOUT_JITTER_MAX_MS + 1);
  a.dev.tick();
  settle(a, b);
  assert.equal(b.dev.cookieRepliesSent, 1, "second initiation carried a valid mac2");
  assert.ok(a.dev.stats()[0].hasSession);
});

Deno.test("device: handshake retries every 5 s, gives up after 90 s, zeroes keys after 540 s", () => {
  const { a, clock } = pair();
  a.dev.outbound(slotWith(ipv4("10.0.0.1", "10.0.0.2")), 40);
  assert.equal(a.dev.drainOutgoing().length, 1);
  // Rate limit: another packet within REKEY_TIMEOUT does not send another initiation.
  clock.advance(1000);
  a.dev.outbound(slotWith(ipv4("10.0.0.1", "10.0.0.2")), 40);
  a.dev.tick();
  assert.equal(a.dev.drainOutgoing().length, 0);
  let initiations = 1, elapsed = 1000;
  while (!a.events.some((e) => e.type === "handshake_failed")) {
    const next = a.dev.nextDeadline() - clock.monotonic();
    assert.ok(next > 0 && next <= timers.REKEY_TIMEOUT_MS + timers.REKEY_TIMEOUT_JITTER_MAX_MS);
    clock.advance(next);
    elapsed += next;
    a.dev.tick();
    initiations += a.dev.drainOutgoing().length;
    assert.ok(elapsed < 200_000, "gave up in time");
  }
  assert.equal(initiations, 1 + timers.MAX_TIMER_HANDSHAKES + 1);
  assert.ok(
    elapsed >= timers.REKEY_ATTEMPT_TIME_MS && elapsed < timers.REKEY_ATTEMPT_TIME_MS + 15_000,
  );
  assert.equal(a.dev.stats()[0].stagedPackets, 0);
  clock.advance(timers.ZERO_KEYS_AFTER_MS);
  a.dev.tick();
  assert.ok(a.events.some((e) => e.type === "keys_zeroed"));
  assert.equal(a.dev.nextDeadline(), Infinity);
});

Deno.test("device: passive keepalive 10 s after receiving data without sending", () => {
  const { a, b, clock } = handshake();
  a.dev.drainOutgoing();
  b.dev.drainOutgoing();
  clock.advance(timers.KEEPALIVE_TIMEOUT_MS - 1);
  b.dev.tick();
  assert.equal(b.dev.drainOutgoing().length, 0);
  clock.advance(1);
  b.dev.tick();
  const ka = b.dev.drainOutgoing();
  assert.equal(ka.length, 1);
  assert.equal(ka[0].data.length, 32, "keepalive is header + tag");
  const r = open(a, ka[0].data, b.ep);
  assert.equal(r.packet, null);
  assert.equal(r.reason, null, "keepalive is not a drop");
});

Deno.test("device: sent data with no reply for 15 s starts a new handshake", () => {
  const { a, clock } = handshake();
  a.dev.drainOutgoing();
  clock.advance(6000); // past the REKEY_TIMEOUT rate limit of the first handshake
  assert.ok(sealFrom(a, ipv4("10.0.0.1", "10.0.0.2")));
  clock.advance(
    timers.KEEPALIVE_TIMEOUT_MS + timers.REKEY_TIMEOUT_MS + timers.REKEY_TIMEOUT_JITTER_MAX_MS,
  );
  a.dev.tick();
  const out = a.dev.drainOutgoing();
  assert.equal(out.length, 1);
  assert.equal(out[0].data[0], 1);
});

Deno.test("device: initiator rekeys after 120 s, old keys still decrypt, 180 s rejects", () => {
  const { a, b, clock } = handshake();
  clock.advance(timers.REKEY_AFTER_TIME_MS);
  const old = sealFrom(a, ipv4("10.0.0.1", "10.0.0.2"));
  assert.ok(old, "still sends on the old key");
  const init = a.dev.drainOutgoing();
  assert.equal(init.length, 1, "rekey initiation");
  assert.equal(init[0].data[0], 1);
  open(b, init[0].data, a.ep);
  deliver(b, a); // response
  settle(a, b);
  assert.ok(open(b, old!, a.ep).packet, "previous keypair still accepted");
  const dg = sealFrom(a, ipv4("10.0.0.1", "10.0.0.2"));
  assert.ok(open(b, dg!, a.ep).packet);
  assert.equal(a.events.filter((e) => e.type === "handshake_complete").length, 2);

  // Without a peer, the session expires after REJECT_AFTER_TIME and packets queue again.
  const lone = handshake();
  lone.clock.advance(timers.REJECT_AFTER_TIME_MS);
  const r = lone.a.dev.outbound(slotWith(ipv4("10.0.0.1", "10.0.0.2")), 40);
  assert.equal(r.kind, "queued");
  assert.equal(lone.a.dev.stats()[0].hasSession, false);
});

Deno.test("device: endpoint roams to the source of the last authenticated packet", () => {
  const { a, b } = handshake();
  const moved = endpoint("tls", "127.0.0.7", 4443, 12);
  const dg = sealFrom(b, ipv4("10.0.0.2", "10.0.0.1"))!;
  assert.ok(open(a, dg, moved).packet);
  assert.equal(a.dev.stats()[0].endpoint, moved);
  const r = a.dev.outbound(slotWith(ipv4("10.0.0.1", "10.0.0.2")), 40);
  assert.equal(r.endpoint, moved);
  // A forged packet from elsewhere does not move it.
  const forged = sealFrom(b, ipv4("10.0.0.2", "10.0.0.1"))!;
  forged[20] ^= 1;
  open(a, forged, endpoint("udp", "127.0.0.66", 1));
  assert.equal(a.dev.stats()[0].endpoint, moved);
});

Deno.test("device: persistent keepalive starts a handshake and keeps the path warm", () => {
  const { a, b, clock } = pair({ keepaliveA: 25 });
  settle(a, b); // handshake triggered by the keepalive at setPeer
  assert.ok(a.dev.stats()[0].hasSession);
  assert.ok(b.dev.stats()[0].hasSession, "the initial keepalive confirmed the responder");
  clock.advance(24_999);
  a.dev.tick();
  assert.equal(a.dev.drainOutgoing().length, 0);
  clock.advance(1);
  a.dev.tick();
  const out = a.dev.drainOutgoing();
  assert.equal(out.length, 1);
  assert.equal(out[0].data.length, 32);
});

Deno.test("device: staged queue is bounded and flushed in order after the handshake", () => {
  const { a, b } = pair();
  for (let i = 0; i < 1030; i++) {
    a.dev.outbound(slotWith(ipv4("10.0.0.1", "10.0.0.2", new Uint8Array([i >> 8, i & 0xff]))), 22);
  }
  assert.equal(a.dev.drops.staged_overflow, 6);
  deliver(a, b);
  deliver(b, a);
  const out = a.dev.drainOutgoing();
  assert.equal(out.length, 1024);
  const first = open(b, out[0].data, a.ep).packet!;
  assert.equal((first[20] << 8) | first[21], 6, "oldest were dropped");
});

Deno.test("device: setPeer validates input and removePeer forgets routes and sessions", () => {
  const { a, b } = handshake();
  assert.throws(
    () => a.dev.setPeer({ publicKey: new Uint8Array(31), allowedIps: [] }),
    /length 31 is not 32/,
  );
  assert.throws(
    () => a.dev.setPeer({ publicKey: b.pub, allowedIps: ["10.0.0.300/32"] }),
    /allowed IP "10.0.0.300\/32"/,
  );
  assert.throws(() => a.dev.setPeer({ publicKey: a.pub, allowedIps: [] }), /own public key/);
  assert.ok(a.dev.removePeer(b.pub));
  assert.equal(a.dev.peerForAddress("10.0.0.2"), null);
  assert.equal(a.dev.outbound(slotWith(ipv4("10.0.0.1", "10.0.0.2")), 40).reason, "no_route");
  const dg = sealFrom(b, ipv4("10.0.0.2", "10.0.0.1"))!;
  assert.equal(open(a, dg, b.ep).reason, "unknown_index");
});

Deno.test("device: cookies expire with the 120 s secret rotation", () => {
  const { a, b, clock } = pair();
  b.dev.setUnderLoad(true);
  a.dev.outbound(slotWith(ipv4("10.0.0.1", "10.0.0.2")), 40);
  deliver(a, b);
  deliver(b, a); // cookie reply
  clock.advance(121_000); // both the responder's secret and the initiator's cookie are now stale
  a.dev.tick();
  deliver(a, b);
  assert.equal(b.dev.cookieRepliesSent, 2, "stale cookie earns a fresh cookie reply");
  deliver(b, a);
  clock.advance(5_400);
  a.dev.tick();
  settle(a, b);
  assert.equal(b.dev.cookieRepliesSent, 2);
  assert.ok(a.dev.stats()[0].hasSession);
});

Deno.test("device: IPv6 inner packets route and pass the source check", () => {
  const { a, b } = handshake();
  a.dev.setPeer({ publicKey: b.pub, allowedIps: ["fd00::2/128"], endpoint: b.ep });
  b.dev.setPeer({ publicKey: a.pub, allowedIps: ["fd00::1/128"] });
  const p = new Uint8Array(40 + 8);
  p[0] = 0x60;
  p[5] = 8;
  p[6] = 17;
  p[7] = 64;
  p[23] = 1; // fd00::1
  p[8] = 0xfd;
  p[24] = 0xfd;
  p[39] = 2; // fd00::2
  const dg = sealFrom(a, p)!;
  assert.ok(dg);
  assert.deepEqual(open(b, dg, a.ep).packet, p);
  const spoof = p.slice();
  spoof[23] = 9;
  assert.equal(open(b, sealFrom(a, spoof)!, a.ep).reason, "not_allowed_source");
});

Deno.test("device: a responder with a packet to send before the initiator's data starts no handshake", () => {
  const { a, b } = pair();
  a.dev.outbound(slotWith(ipv4("10.0.0.1", "10.0.0.2")), 40);
  deliver(a, b); // initiation -> b answers
  // b has traffic for a before a's first data confirms the session.
  const r = b.dev.outbound(slotWith(ipv4("10.0.0.2", "10.0.0.1", 30)), 50);
  assert.equal(r.kind, "queued");
  const fromB = b.dev.drainOutgoing();
  assert.deepEqual(fromB.map((d) => d.data[0]), [2], "only the response, no initiation of b's own");
  for (const d of fromB) {
    const buf = new Uint8Array(2048);
    buf.set(d.data);
    a.dev.inbound(buf, d.data.length, b.ep);
  }
  settle(a, b);
  // a's data confirmed the session; b's staged packet went out on it.
  const bStats = b.dev.stats()[0];
  assert.ok(bStats.hasSession);
  assert.equal(a.dev.drops.unknown_index, 0);
  assert.equal(b.dev.drops.unknown_index, 0);
});

Deno.test("device: handshake secrets are wiped once used, and close() wipes the private key", () => {
  const { a, b } = pair();
  a.dev.outbound(slotWith(ipv4("10.0.0.1", "10.0.0.2")), 40);
  const state = a.dev.peers()[0].handshake!;
  assert.ok(state.chainKey.some((x) => x !== 0) && state.hash.some((x) => x !== 0));
  settle(a, b);
  assert.ok(a.dev.stats()[0].hasSession);
  assert.equal(a.dev.peers()[0].handshake, null);
  for (const [name, buf] of Object.entries(state)) {
    if (buf instanceof Uint8Array) assert.ok(buf.every((x) => x === 0), `${name} wiped`);
  }
  // After close() the device cannot decrypt a new initiation: its key is gone.
  b.dev.close();
  const before = b.dev.drops.bad_handshake;
  assert.ok(a.dev.initiateHandshake(a.dev.peers()[0], undefined, true));
  deliver(a, b);
  assert.equal(b.dev.drops.bad_handshake, before + 1);
  assert.equal(b.dev.hasOutgoing, false);
});
