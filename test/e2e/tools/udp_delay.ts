/**
 * A long, slow path for UDP, for "far edge" scenarios on kernels without
 * tc netem: every datagram that arrives on LISTEN is sent on to TARGET after
 * DELAY_MS, and every answer back after DELAY_MS again, so the round trip
 * grows by twice the delay. The test's nftables DNATs the connector's
 * datagrams for the edge to LISTEN (conntrack turns the answers' source back
 * into the edge's), and this relay sends from SOURCE_PORT, which the DNAT
 * rule leaves alone.
 *
 *   deno run -A udp_delay.ts LISTEN_HOST:PORT TARGET_HOST:PORT SOURCE_PORT DELAY_MS
 */
import dgram from "node:dgram";

const [listen, target, sourcePort, delay] = Deno.args;
const split = (hp: string) => {
  const i = hp.lastIndexOf(":");
  return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
};
if (!listen || !target || !sourcePort || !delay) {
  console.error("usage: udp_delay.ts LISTEN_HOST:PORT TARGET_HOST:PORT SOURCE_PORT DELAY_MS");
  Deno.exit(2);
}
const l = split(listen), t = split(target), ms = Number(delay);
const front = dgram.createSocket("udp4");
const back = dgram.createSocket("udp4");
let client: { address: string; port: number } | null = null;
front.on("message", (msg: Uint8Array, from: { address: string; port: number }) => {
  client = { address: from.address, port: from.port };
  setTimeout(() => back.send(msg, t.port, t.host), ms);
});
back.on("message", (msg: Uint8Array) => {
  const c = client;
  if (c) setTimeout(() => front.send(msg, c.port, c.address), ms);
});
front.bind(l.port, l.host, () => back.bind(Number(sourcePort), l.host, () => console.log("ready")));
