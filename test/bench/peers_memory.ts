/**
 * Benchmark (not a test): resident memory of the edge's WireGuard device with
 * N peers loaded (each with its allowed /32), as the edge holds them after a
 * restart. Complements test/bench/enroll.ts, which measures the control plane.
 *
 *   deno run -A test/bench/peers_memory.ts [peers=5000]
 */
import { generatePrivateKey, publicKeyOf, WireGuardDevice } from "../../src/wireguard/mod.ts";
import { systemClock } from "../../src/clock.ts";

const n = Number(Deno.args[0] ?? 5000);
const rss = () => {
  const m = Deno.readTextFileSync("/proc/self/status").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
};
// Make the keys first so their cost is not counted as the device's.
const keys = Array.from({ length: n }, () => publicKeyOf(generatePrivateKey()));
(globalThis as { gc?: () => void }).gc?.();
const before = rss();
const dev = new WireGuardDevice({ privateKey: generatePrivateKey(), clock: systemClock });
const t0 = performance.now();
keys.forEach((k, i) => {
  dev.setPeer({ publicKey: k, allowedIps: [`100.64.${(i + 2) >> 8}.${(i + 2) & 255}/32`] });
});
const ms = performance.now() - t0;
const after = rss();
console.log(
  `${n} peers: load ${ms.toFixed(0)} ms (${(ms * 1000 / n).toFixed(1)} µs/peer); ` +
    `RSS ${before.toFixed(1)} → ${after.toFixed(1)} MiB (+${(after - before).toFixed(1)} MiB, ` +
    `${((after - before) * 1024 / n).toFixed(2)} KiB/peer)`,
);
// A lookup through the allowed-IPs table stays fast with the table full.
console.log(`peer for 100.64.19.136: ${dev.peerForAddress("100.64.19.136") ? "found" : "missing"}`);
dev.close();
