/**
 * Micro-benchmark (not a test): µs per 1420-byte packet through the
 * WireGuardDevice API, encrypt (outbound) and decrypt (inbound), after a real
 * handshake between two in-process devices.
 *
 *   deno run -A test/bench/wireguard_crypto.ts [packets]
 */
import { ManualClock } from "../../src/clock.ts";
import { endpoint } from "../../src/net/endpoint.ts";
import { generatePrivateKey, publicKeyOf, WireGuardDevice } from "../../src/wireguard/mod.ts";

const N = Number(Deno.args[0] ?? 200_000);
const IP_LEN = 1420;
const SLOT = 16 + IP_LEN + 32;

const clock = new ManualClock();
const ka = generatePrivateKey(), kb = generatePrivateKey();
const a = new WireGuardDevice({ privateKey: ka, clock });
const b = new WireGuardDevice({ privateKey: kb, clock });
const epA = endpoint("udp", "127.0.0.1", 1), epB = endpoint("udp", "127.0.0.1", 2);
a.setPeer({ publicKey: publicKeyOf(kb), allowedIps: ["10.0.0.2/32"], endpoint: epB });
b.setPeer({ publicKey: publicKeyOf(ka), allowedIps: ["10.0.0.1/32"] });

const header = new Uint8Array(20);
header[0] = 0x45;
header[2] = IP_LEN >> 8;
header[3] = IP_LEN & 0xff;
header[9] = 17;
header.set([10, 0, 0, 1], 12);
header.set([10, 0, 0, 2], 16);

function move(from: WireGuardDevice, to: WireGuardDevice, ep: typeof epA): void {
  for (const d of from.drainOutgoing()) {
    const buf = new Uint8Array(SLOT);
    buf.set(d.data);
    to.inbound(buf, d.data.length, ep);
  }
}

// Handshake, started by a first packet.
const slot = new Uint8Array(SLOT);
slot.set(header, 16);
a.outbound(slot, IP_LEN);
for (let i = 0; i < 4; i++) {
  move(a, b, epA);
  move(b, a, epB);
}
if (!a.stats()[0].hasSession) throw new Error("Cannot run benchmark: handshake did not complete");

function timeIt(label: string, from: number, to: number, fn: (i: number) => void): number {
  const t0 = performance.now();
  for (let i = from; i < to; i++) fn(i);
  const us = ((performance.now() - t0) * 1000) / (to - from);
  console.log(`${label.padEnd(44)} ${us.toFixed(2)} µs/packet  (${(1 / us).toFixed(3)} Mpps)`);
  return us;
}

const encrypt = () => {
  slot.set(header, 16);
  const r = a.outbound(slot, IP_LEN);
  if (r.kind !== "send") throw new Error(`Cannot encrypt: ${r.kind} ${r.reason}`);
};
timeIt("(warm-up)", 0, 20_000, encrypt);
timeIt(`encrypt ${IP_LEN} B (outbound, in place)`, 0, N, encrypt);

// Decrypt: pre-seal distinct datagrams (the replay window forbids reuse), then
// feed them through a small ring of reused receive slots as a pump would.
const M = Math.min(N, 100_000);
const sealed = new Uint8Array(M * SLOT);
let len = 0;
for (let i = 0; i < M; i++) {
  slot.set(header, 16);
  const r = a.outbound(slot, IP_LEN);
  len = r.length;
  sealed.set(slot.subarray(0, len), i * SLOT);
}
const ring = Array.from({ length: 64 }, () => new Uint8Array(SLOT));
const copyUs = timeIt("copy only (ring slot fill, subtracted below)", 0, M, (i) => {
  ring[i & 63].set(sealed.subarray(i * SLOT, i * SLOT + len));
});
let ok = 0;
const decrypt = (j: number) => {
  const buf = ring[j & 63];
  buf.set(sealed.subarray(j * SLOT, j * SLOT + len));
  if (b.inbound(buf, len, epA).kind === "data") ok++;
};
timeIt("(warm-up)", 0, 20_000, decrypt);
const decUs = timeIt(`decrypt ${IP_LEN} B (inbound, in place) + copy`, 20_000, M, decrypt);
console.log(`${"decrypt alone (estimate)".padEnd(44)} ${(decUs - copyUs).toFixed(2)} µs/packet`);
if (ok !== M) throw new Error(`Cannot trust decrypt figure: ${ok} of ${M} packets decrypted`);
a.close();
b.close();
