/**
 * Test and benchmark helper (not a test; spawned by edge_process.ts): one real edge in
 * its own process, as `portcullis edge` composes it (src/edge/run.ts
 * startEdge with src/http's edgeApps: the HTTPS API listener with the edge's
 * own CA, the console and bootstrap listeners), without the data plane (no
 * TUN, which the control-plane figures do not need and which would need
 * root and namespaces). The store is the SQLite file in the data directory,
 * or PostgreSQL with `--database`.
 *
 * It creates a reusable enrolment key and an admin API token in the store,
 * prints one JSON line `{"api","console","key","token","caPem","pid"}` and
 * runs until SIGTERM or until its stdin closes (the parent died), then
 * stops the edge.
 *
 * Usage: deno run -A test/fleet/edge_main.ts <dataDir> <edgeName> [postgres://…]
 */
import { loadConfig } from "../../src/config.ts";
import { createEnrollmentKey } from "../../src/edge/enrollment_keys.ts";
import { startEdge } from "../../src/edge/run.ts";
import { edgeApps } from "../../src/http/edge_apps.ts";
import { sha256Hex } from "../../src/identity/secrets.ts";
import { setLogSinks } from "../../src/log.ts";
import { answerAfterBody, type ServeFn } from "../../src/serve.ts";

const [dir, name, database] = Deno.args;
if (!dir || !name) throw new Error("usage: edge_main.ts <dataDir> <edgeName> [postgres://…]");
setLogSinks([]);

/** A free loopback port (the config takes no port 0; the gap before the bind is loopback-only). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** As main.ts serves (answers only after the request body is in). */
const serve: ServeFn = (o, handler) =>
  Deno.serve(
    o.cert && o.key
      ? { hostname: o.hostname, port: o.port, cert: o.cert, key: o.key, onListen: o.onListen }
      : { hostname: o.hostname, port: o.port, onListen: o.onListen },
    answerAfterBody(handler),
  );

const config = await loadConfig("edge", {
  flags: {
    "data-dir": dir,
    "public-host": "127.0.0.1",
    "edge-name": name,
    "api-listen": `127.0.0.1:${freePort()}`,
    "console-listen": `127.0.0.1:${freePort()}`,
    "bootstrap-listen": `127.0.0.1:${freePort()}`,
    "log-level": "error",
    ...(database ? { database } : {}),
  },
});
const edge = await startEdge(config, { serve, apps: edgeApps(), noTunnel: true });
const { store, ctx, ca } = edge.cp;
const { key } = createEnrollmentKey(store, ctx.clock, {
  reusable: true,
  expiresInMs: null,
  group: null,
  createdBy: "fleet-test",
  apiUrl: `https://127.0.0.1:${edge.ports.api}`,
  caSha256: ca.caSha256,
});
const token = `pca_fleet_${name.replace(/[^A-Za-z0-9_-]/g, "_")}_${crypto.randomUUID()}`;
const admin = store.users.list().find((u) => u.role === "admin");
if (!admin) throw new Error("The edge has no administrator");
store.apiTokens.insert({
  id: `tok_${crypto.randomUUID()}`,
  tokenHash: sha256Hex(token),
  name: `fleet-${name}`,
  userId: admin.id,
  createdAt: Date.now(),
  lastUsedAt: null,
});

let stopping: Promise<void> | null = null;
const stop = () => {
  stopping ??= edge.stop().finally(() => Deno.exit(0));
  return stopping;
};
Deno.addSignalListener("SIGTERM", stop);
console.log(JSON.stringify({
  api: edge.ports.api,
  console: edge.ports.console,
  key,
  token,
  caPem: ca.caCertPem,
  pid: Deno.pid,
}));
// The parent holds our stdin open; its end (it exited or died) stops us.
for await (const _ of Deno.stdin.readable) { /* nothing is sent */ }
await stop();
