/**
 * Entry point of the web consoles: the two apps main.ts mounts on the
 * console listeners through the app hooks of `startEdge` (src/edge/run.ts)
 * and `connectCommand` (src/connector/cli.ts). Each serves its console at "/"
 * and keeps the role's JSON API reachable under "/api/" on the same listener,
 * as before the console existed.
 */
import { Hono } from "hono";
import type { ConnectorParts } from "../../connector/cli.ts";
import { EdgeClient } from "../edge_client.ts";
import { createConnectorApp } from "../connector_app.ts";
import { Repairer } from "../../connector/repair.ts";
import { CaptureController } from "../../diag/capture.ts";
import { ConnectorFacts } from "../../connector/doctor_probes.ts";
import { diagnose } from "../../diag/doctor/mod.ts";
import type { EdgeControlPlane } from "../../edge/control_plane.ts";
import { addLogSink, RingSink } from "../../log.ts";
import { VERSION } from "../../version.ts";
import { createConnectorConsole, edgeSupportSender } from "./connector_console.tsx";
import { createEdgeConsole } from "./edge_console.tsx";
import { allowedHostGuard, LOOPBACK_HOSTS } from "./host_guard.ts";

export { createConnectorConsole, edgeSupportSender } from "./connector_console.tsx";
export type { ConnectorConsoleDeps } from "./connector_console.tsx";
export { createEdgeConsole } from "./edge_console.tsx";
export type { EdgeConsoleDeps } from "./edge_console.tsx";

/** Options of `edgeConsoleApp`. */
export interface EdgeConsoleOptions {
  /** The connector release this edge ships (older ones count as outdated). */
  currentConnectorVersion?: string;
  productVersion?: string;
  /** Host names the console listener answers to besides 127.0.0.1, localhost and [::1]. */
  allowedHosts?: string[];
}

/** The edge console listener's app: the console at "/", the edge API `api` under "/api/" and "/metrics". */
export function edgeConsoleApp(
  cp: Pick<EdgeControlPlane, "notifier" | "ctx">,
  api: Hono<any>,
  opts: EdgeConsoleOptions = {},
): Hono {
  const ui = createEdgeConsole({
    api,
    notifier: cp.notifier,
    clock: cp.ctx.clock,
    currentConnectorVersion: opts.currentConnectorVersion ?? VERSION,
    productVersion: opts.productVersion,
    allowedHosts: opts.allowedHosts,
  });
  const app = new Hono();
  // The API and metrics on this listener get the same DNS-rebinding guard as the pages.
  const guard = allowedHostGuard([...LOOPBACK_HOSTS, ...(opts.allowedHosts ?? [])]);
  app.use("/api/*", guard);
  app.use("/metrics", guard);
  app.all("/api/*", (c) => api.fetch(c.req.raw, c.env));
  app.get("/metrics", (c) => api.fetch(c.req.raw, c.env));
  app.route("/", ui);
  // Mounted routes do not carry their app's notFound; hand unknown paths to
  // the console so they get its own page.
  app.notFound((c) => ui.fetch(c.req.raw, c.env));
  return app;
}

/** What the connector console needs: the running connector and its local JSON API. */
export interface ConsoleParts
  extends Omit<ConnectorParts, "requestExit" | "requestUninstall" | "requestRestart"> {
  api: Hono;
  /** Whether the local API can uninstall (its `onUninstall` is wired); shows the button. */
  uninstallAvailable?: boolean;
  /** The repairer the API runs (its last report is shown on the More tab). */
  repair?: Repairer;
}

/** The connector console listener's app for a running connector: its local API and the console. */
export function connectorListenerApp(
  parts: ConnectorParts,
  opts: ConnectorConsoleOptions = {},
): Hono {
  const { handle } = parts;
  const repair = new Repairer({ tunnel: parts.tunnel, store: handle.store });
  const api = createConnectorApp({
    engine: handle.engine,
    hub: handle.hub,
    store: handle.store,
    onExit: parts.requestExit,
    onUninstall: parts.requestUninstall,
    onRestart: parts.requestRestart,
    dlp: handle.dlp,
    repair,
    zdx: handle.zdx,
    updates: handle.updater,
    diagnose: () =>
      diagnose(
        new ConnectorFacts({
          engine: handle.engine,
          store: handle.store,
          identity: handle.identity,
          tunnelInterface: parts.config.tunInterface,
          zdxScore: () => handle.zdx.status().deviceScore,
        }),
      ),
  });
  return connectorConsoleApp(
    { ...parts, api, repair, uninstallAvailable: parts.requestUninstall !== undefined },
    opts,
  );
}

/** Options of `connectorConsoleApp`. */
export interface ConnectorConsoleOptions {
  /** Where recent log records are kept for export; default a new 5000-record ring added as a log sink. */
  logs?: RingSink;
  /** Capture limits. */
  captureMaxBytes?: number;
  captureMaxDurationMs?: number;
}

/**
 * The connector console listener's app: the console at "/", the local JSON
 * API under "/api/". Packet capture taps the tunnel's pump; captures live in
 * `<dataDir>/captures`; Report an Issue goes to the edge with the device
 * credential.
 */
export function connectorConsoleApp(parts: ConsoleParts, opts: ConnectorConsoleOptions = {}): Hono {
  const { api, handle, tunnel, config } = parts;
  let logs = opts.logs;
  if (!logs) {
    logs = new RingSink(5000);
    addLogSink(logs);
  }
  const capture = new CaptureController({
    dir: `${handle.dataDir}/captures`,
    source: () => (tunnel.status() ? tunnel : null),
    maxBytes: opts.captureMaxBytes,
    maxDurationMs: opts.captureMaxDurationMs,
  });
  const ui = createConnectorConsole({
    engine: handle.engine,
    signIn: handle.browserSignIn,
    api,
    hub: handle.hub,
    store: handle.store,
    version: VERSION,
    logs,
    capture,
    support: edgeSupportSender(
      handle.store,
      handle.identity,
      (apiUrl, caPem) => new EdgeClient({ apiUrl, caPem }),
    ),
    config,
    dlp: handle.dlp,
    uninstallAvailable: parts.uninstallAvailable,
    repair: parts.repair ?? null,
    logFiles: parts.logFiles,
    zdx: handle.zdx,
    updates: handle.updater,
  });
  const app = new Hono();
  app.all("/api/*", (c) => api.fetch(c.req.raw, c.env));
  app.route("/", ui);
  // Mounted routes do not carry their app's notFound; hand unknown paths to
  // the console so they get its own page.
  app.notFound((c) => ui.fetch(c.req.raw, c.env));
  return app;
}
