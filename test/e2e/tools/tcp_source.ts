/**
 * Test tool: sends `bytes` of deterministic pseudo-random data to host:port
 * over TCP and prints `<sha256-hex> <bytes>` of what it sent.
 *
 *   deno run -A tcp_source.ts 10.9.0.2 5001 52428800 [seed] [bytesPerSec]
 *
 * With bytesPerSec the transfer is paced (so it spans a rekey, say).
 */
import { createHash } from "node:crypto";

const [host, port, bytes, seed, rate] = [
  Deno.args[0],
  Number(Deno.args[1]),
  Number(Deno.args[2]),
  Number(Deno.args[3] ?? 1),
  Number(Deno.args[4] ?? 0),
];
const started = performance.now();
const conn = await Deno.connect({ hostname: host, port });
const hash = createHash("sha256");
const chunk = new Uint8Array(64 * 1024);
const view = new Uint32Array(chunk.buffer);
let x = seed >>> 0 || 1;
let sent = 0;
while (sent < bytes) {
  for (let i = 0; i < view.length; i++) {
    // xorshift32: cheap, deterministic, incompressible enough for a transfer test.
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    view[i] = x;
  }
  const part = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
  let off = 0;
  while (off < part.length) off += await conn.write(part.subarray(off));
  hash.update(part);
  sent += part.length;
  if (rate > 0) {
    const due = started + (sent / rate) * 1000;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  }
}
conn.close();
console.log(`${hash.digest("hex")} ${sent}`);
