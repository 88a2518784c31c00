/** Two WireGuardDevices wired back to back over a fake network, for protocol tests. */
import { ManualClock } from "../../src/clock.ts";
import { type Endpoint, endpoint } from "../../src/net/endpoint.ts";
import {
  generatePrivateKey,
  type OutgoingDatagram,
  type PeerConfig,
  type PeerEvent,
  publicKeyOf,
  WireGuardDevice,
} from "../../src/wireguard/mod.ts";

/** Slot size used by the tests: headroom + MTU + padding + tag. */
export const SLOT = 16 + 1500 + 32;

/** Builds an IPv4 packet (20-byte header, no options) carrying `payload`. */
export function ipv4(src: string, dst: string, payload: Uint8Array | number = 20): Uint8Array {
  const body = typeof payload === "number" ? new Uint8Array(payload).map((_, i) => i) : payload;
  const p = new Uint8Array(20 + body.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(src.split(".").map(Number), 12);
  p.set(dst.split(".").map(Number), 16);
  p.set(body, 20);
  return p;
}

/** Copies an IP packet into a fresh slot at the 16-byte headroom. */
export function slotWith(packet: Uint8Array): Uint8Array {
  const s = new Uint8Array(SLOT);
  s.set(packet, 16);
  return s;
}

/** A device with its clock, its endpoint on the fake network and collected events. */
export interface Side {
  dev: WireGuardDevice;
  pub: Uint8Array;
  ep: Endpoint;
  events: PeerEvent[];
}

/** Two devices sharing one ManualClock: a (10.0.0.1) and b (10.0.0.2). */
export function pair(opts: {
  psk?: Uint8Array;
  pskB?: Uint8Array;
  keepaliveA?: number;
  aKnowsB?: boolean;
} = {}) {
  const clock = new ManualClock();
  const mk = (port: number): Side => {
    const priv = generatePrivateKey();
    const events: PeerEvent[] = [];
    const dev = new WireGuardDevice({ privateKey: priv, clock, onEvent: (e) => events.push(e) });
    return { dev, pub: publicKeyOf(priv), ep: endpoint("udp", "127.0.0.1", port), events };
  };
  const a = mk(40001), b = mk(40002);
  const peerB: PeerConfig = {
    publicKey: b.pub,
    presharedKey: opts.psk,
    allowedIps: ["10.0.0.2/32", "192.168.50.0/24"],
    endpoint: opts.aKnowsB === false ? undefined : b.ep,
    persistentKeepaliveSec: opts.keepaliveA,
  };
  a.dev.setPeer(peerB);
  b.dev.setPeer({
    publicKey: a.pub,
    presharedKey: opts.pskB ?? opts.psk,
    allowedIps: ["10.0.0.1/32"],
  });
  return { clock, a, b };
}

/** Moves every outgoing datagram of `from` into `to` (as if from from.ep); returns what moved. */
export function deliver(from: Side, to: Side, via?: Endpoint): OutgoingDatagram[] {
  const out = from.dev.drainOutgoing();
  for (const d of out) {
    const buf = new Uint8Array(SLOT);
    buf.set(d.data);
    to.dev.inbound(buf, d.data.length, via ?? from.ep);
  }
  return out;
}

/** Runs both directions until no side has anything left to send. */
export function settle(a: Side, b: Side): void {
  for (let i = 0; i < 10 && (a.dev.hasOutgoing || b.dev.hasOutgoing); i++) {
    deliver(a, b);
    deliver(b, a);
  }
}

/** Sends `packet` from `from` via outbound(); returns the sealed datagram when sent at once. */
export function sealFrom(from: Side, packet: Uint8Array): Uint8Array | null {
  const slot = slotWith(packet);
  const r = from.dev.outbound(slot, packet.length);
  return r.kind === "send" ? slot.slice(0, r.length) : null;
}

/** Delivers a datagram to `to` and returns the decrypted packet (or null) plus the result's reason. */
export function open(to: Side, datagram: Uint8Array, from: Endpoint) {
  const buf = new Uint8Array(SLOT);
  buf.set(datagram);
  const r = to.dev.inbound(buf, datagram.length, from);
  return {
    packet: r.kind === "data" ? buf.slice(r.offset, r.offset + r.length) : null,
    reason: r.reason,
    peer: r.peer,
  };
}
