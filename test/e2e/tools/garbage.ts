/**
 * Test tool: throws garbage at a WireGuard port — random, truncated and
 * oversized datagrams, handshake initiations from a key the target does not
 * know, and replays of captured transport packets — and prints what it sent
 * as JSON.
 *
 *   deno run -A garbage.ts HOST PORT TARGET_PUBKEY_B64 [REPLAY_HEX_FILE]
 */
import dgram from "node:dgram";
import {
  decodeKey,
  generatePrivateKey,
  TRANSPORT_HEADER_SIZE,
  WireGuardDevice,
} from "../../../src/wireguard/mod.ts";
import { endpoint } from "../../../src/net/endpoint.ts";
import { systemClock } from "../../../src/clock.ts";

const [host, portText, target, replayFile] = Deno.args;
const port = Number(portText);
const sock = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
const send = (b: Uint8Array) => new Promise<void>((res) => sock.send(b, port, host, () => res()));
const rand = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const sent = { random: 0, truncated: 0, oversized: 0, wrongKey: 0, replayed: 0 };

for (let i = 0; i < 300; i++) {
  await send(rand(1 + Math.floor(Math.random() * 1500)));
  sent.random++;
}
for (const type of [1, 2, 3, 4]) {
  for (const len of [1, 4, 15, 31, 60, 91, 147]) {
    const b = rand(len);
    b[0] = type;
    b[1] = b[2] = b[3] = 0;
    await send(b);
    sent.truncated++;
  }
}
for (const len of [2000, 9000, 60000]) {
  const b = rand(len);
  b[0] = 4;
  b[1] = b[2] = b[3] = 0;
  await send(b);
  sent.oversized++;
}
// Valid-looking initiations (correct mac1) from a static key the target has never heard of.
const stranger = new WireGuardDevice({ privateKey: generatePrivateKey(), clock: systemClock });
const peer = stranger.setPeer({
  publicKey: decodeKey(target)!,
  allowedIps: ["0.0.0.0/0"],
  endpoint: endpoint("udp", host, port),
});
for (let i = 0; i < 20; i++) {
  stranger.initiateHandshake(peer, undefined, true);
  for (const m of stranger.drainOutgoing()) {
    await send(m.data);
    sent.wrongKey++;
  }
}
stranger.close();
if (replayFile) {
  const lines = (await Deno.readTextFile(replayFile)).split("\n").filter((l) => l.trim());
  for (let round = 0; round < 3; round++) {
    for (const hex of lines) {
      const b = new Uint8Array(hex.trim().match(/../g)!.map((h) => parseInt(h, 16)));
      if (b.length < TRANSPORT_HEADER_SIZE) continue;
      await send(b);
      sent.replayed++;
    }
  }
}
sock.close();
console.log(JSON.stringify(sent));
