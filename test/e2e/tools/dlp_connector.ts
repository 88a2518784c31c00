/**
 * Test helper (not a test): a connector with endpoint DLP for
 * test/e2e/dlp_endpoint_test.ts, run inside that test's mount namespace. It
 * enrols with the real edge over HTTPS (the edge's own CA, pinned), fetches
 * its DLP bundle, watches the namespace's mounts with fanotify and reports
 * incidents. Only the tunnel is the in-memory fake: endpoint DLP does not
 * use it. Serves the connector's console and local API on 127.0.0.1.
 *
 * Usage: deno run -A dlp_connector.ts <config.json>
 *   {dataDir, key, caPemPath, apiPort, udevDataDir, mode}
 * Prints one JSON line {"ready": true, "consolePort": N} once listening.
 */
import { startConnector } from "../../../src/connector/mod.ts";
import { FakeTunnelPort } from "../../../src/connector/tunnel_port.ts";
import { EdgeClient } from "../../../src/http/edge_client.ts";
import { connectorListenerApp } from "../../../src/http/console/mod.ts";
import { ConnectorConfig } from "../../../src/config.ts";

const cfg = JSON.parse(await Deno.readTextFile(Deno.args[0]));
const caPem = await Deno.readTextFile(cfg.caPemPath);
const handle = await startConnector({
  dataDir: cfg.dataDir,
  enrollmentKey: cfg.key,
  hostname: "dlp-workstation",
  dlp: {
    mode: cfg.mode,
    refreshSec: 2,
    endpoint: { sources: { udevDataDir: cfg.udevDataDir }, rescanMs: 500, settleMs: 300 },
  },
}, {
  tunnel: new FakeTunnelPort(),
  edge: {
    fetchCa: () => Promise.resolve(caPem),
    client: (_apiUrl, pem) =>
      new EdgeClient({ apiUrl: `https://127.0.0.1:${cfg.apiPort}`, caPem: pem }),
  },
});
const config = ConnectorConfig.parse({ dataDir: cfg.dataDir, dlpMode: cfg.mode });
const app = connectorListenerApp({ handle, tunnel: null as never, config, requestExit: () => {} });
const server = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  (req, info) => app.fetch(req, info),
);
console.log(JSON.stringify({ ready: true, consolePort: (server.addr as Deno.NetAddr).port }));
const stop = async () => {
  await server.shutdown();
  await handle.stop();
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
