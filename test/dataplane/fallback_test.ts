/**
 * TransportFallback with no TLS to fall back to: two real WireGuard devices
 * on a fake network that drops everything, a manual clock. It gives up once
 * per outage after giveUpMs (the engine's fail mode), keeps a handshake in
 * flight past WireGuard's own 90 s give-up, and the tunnel forms by itself
 * when the path passes again. With a TLS target it never gives up (the TLS
 * path is tried instead).
 */
import assert from "node:assert/strict";
import { TransportFallback } from "../../src/dataplane/fallback.ts";
import { pair, settle } from "../wireguard/harness.ts";

function setup(tls: boolean) {
  const { clock, a, b } = pair();
  const peer = a.dev.peers()[0];
  const gaveUp: number[] = [];
  const fb = new TransportFallback({
    device: a.dev,
    peer,
    udp: b.ep,
    tls: tls ? { hostname: "127.0.0.1", port: 9 } : null,
    tlsStream: null,
    udpTimeoutMs: 5000,
    giveUpMs: 10_000,
    clock,
    kick: () => {},
    onGiveUp: (ms) => gaveUp.push(ms),
  });
  fb.start();
  fb.stop(); // the test drives tick() itself
  /** `ms` of a dead path: every datagram of a dropped, timers and the selector run. */
  const dead = (ms: number) => {
    let sent = 0;
    for (let t = 0; t < ms; t += 250) {
      clock.advance(250);
      a.dev.tick();
      fb.tick();
      sent += a.dev.drainOutgoing().length;
    }
    return sent;
  };
  /** The path passes again: the next initiation (within a retry interval) is delivered. */
  const live = () => {
    for (let t = 0; t < 10_000 && !a.dev.hasOutgoing; t += 250) {
      clock.advance(250);
      a.dev.tick();
      fb.tick();
    }
    settle(a, b);
  };
  return { a, b, peer, fb, gaveUp, dead, live };
}

Deno.test("fallback: with no TLS, gives up once per outage and keeps handshaking", () => {
  const s = setup(false);
  s.dead(9_500);
  assert.deepEqual(s.gaveUp, [], "not before giveUpMs");
  s.dead(1_000);
  assert.equal(s.gaveUp.length, 1);
  assert.ok(s.gaveUp[0] >= 10_000 && s.gaveUp[0] < 11_000, `${s.gaveUp[0]}`);
  // Past WireGuard's own 90 s give-up: initiations still go out.
  s.dead(90_000);
  const late = s.dead(20_000);
  assert.ok(late >= 2, `initiations in the last 20 s: ${late}`);
  assert.equal(s.gaveUp.length, 1, "once per outage");
  // The path passes again: the next initiation is answered, the session forms.
  s.live();
  assert.ok(s.peer.current, "a session after the path came back");
  s.fb.onHandshakeComplete();
  // A new outage is told again.
  s.peer.handshake = null;
  s.a.dev.initiateHandshake(s.peer, undefined, true);
  s.dead(10_500);
  assert.equal(s.gaveUp.length, 2);
});

Deno.test("fallback: with a TLS target it never gives up (TLS is tried instead)", () => {
  const s = setup(true);
  s.dead(30_000);
  assert.deepEqual(s.gaveUp, []);
});

Deno.test("fallback: an outage the session outlives (answers again, no new handshake) ends the give-up", () => {
  const s = setup(false);
  s.dead(10_500);
  assert.equal(s.gaveUp.length, 1);
  s.fb.onPathAlive();
  // The next outage is told again.
  s.dead(10_500);
  assert.equal(s.gaveUp.length, 2);
});
