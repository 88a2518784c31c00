/**
 * Test tool: accepts one TCP connection on the given address and port, reads
 * until EOF and prints `<sha256-hex> <bytes>`. Used to prove a transfer
 * through the tunnel arrived intact.
 *
 *   deno run -A tcp_sink.ts 0.0.0.0 5001
 */
import { createHash } from "node:crypto";

const [host, port] = [Deno.args[0] ?? "0.0.0.0", Number(Deno.args[1] ?? 5001)];
const listener = Deno.listen({ hostname: host, port });
console.log("listening");
const conn = await listener.accept();
const hash = createHash("sha256");
let total = 0;
const buf = new Uint8Array(256 * 1024);
while (true) {
  const n = await conn.read(buf);
  if (n === null) break;
  hash.update(buf.subarray(0, n));
  total += n;
}
conn.close();
listener.close();
console.log(`${hash.digest("hex")} ${total}`);
