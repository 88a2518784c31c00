/**
 * Test/benchmark helper (not a test): serves the edge control plane over
 * plain HTTP on 127.0.0.1 with Deno.serve, creates a reusable enrolment key
 * and prints one JSON line `{"port", "key", "pid"}` on stdout.
 *
 * Usage: deno run -A test/edge/serve_edge.ts <dataDir>
 */
import { loadConfig } from "../../src/config.ts";
import { startEdgeControlPlane } from "../../src/edge/control_plane.ts";
import { createEnrollmentKey } from "../../src/edge/enrollment_keys.ts";
import { createEdgeApp } from "../../src/http/app_edge.ts";
import { setLogSinks } from "../../src/log.ts";

const dir = Deno.args[0];
if (!dir) throw new Error("usage: serve_edge.ts <dataDir>");
setLogSinks([]);
const config = await loadConfig("edge", { flags: { "data-dir": dir, "public-host": "127.0.0.1" } });
const cp = await startEdgeControlPlane(config, {
  localPrefixes: () => [],
  scrypt: { N: 1024, r: 8, p: 1 },
});
const { key } = createEnrollmentKey(cp.store, cp.ctx.clock, {
  reusable: true,
  expiresInMs: null,
  group: null,
  createdBy: "test",
  apiUrl: cp.ctx.apiUrl,
  caSha256: cp.ca.caSha256,
});
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  createEdgeApp({ ctx: cp.ctx, scrypt: { N: 1024, r: 8, p: 1 } }).fetch,
);
console.log(JSON.stringify({ port: server.addr.port, key, pid: Deno.pid }));
