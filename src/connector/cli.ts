/**
 * `portcullis connect [--key-file FILE|-]`: enrols this host (first run, with
 * a key: src/connector/key_source.ts says where it may come from) and runs
 * the connector; later starts need only `portcullis connect`. Also
 * `portcullis check`: "am I protected?" from the command line.
 */
import { parseCliArgs } from "../cli_args.ts";
import { ConnectorConfig, loadConfig, splitListen } from "../config.ts";
import { InputError } from "../errors.ts";
import { type HttpApp, type ServeFn, shutdownWithin } from "../serve.ts";
import type { EdgeApiFactory } from "./edge_api.ts";
import { type ConnectorHandle, startConnector } from "./mod.ts";
import { ConnectorTunnel } from "./tunnel.ts";
import { resolveEnrollmentKey } from "./key_source.ts";
import { SystemNetworkMonitor } from "./network/monitor.ts";
import { SystemNetworkPort } from "./network/system_port.ts";
import { logger, logLevel, setLogLevel } from "../log.ts";
import { attachLogFiles, type RotatingLogFiles } from "../diag/log_files.ts";
import { removeConnector } from "./uninstall.ts";
import { superviseUpdate, updatePending } from "./update_guard.ts";
import {
  awaitPredecessor,
  type RestartPlan,
  restartPlan,
  restartUnit,
  spawnSuccessor,
} from "./restart.ts";

const log = logger("connector");
const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * What main.ts hands in: the listener, the HTTP client of the edge, and the
 * console listener's app (local API and web console, from src/http).
 */
export interface ConnectOptions {
  serve: ServeFn;
  /** How to reach the edge's API (src/http/edge_client.ts `httpEdgeApi()`). */
  edge: EdgeApiFactory;
  /** Builds the console listener's app for the running connector. */
  app: (parts: ConnectorParts) => HttpApp | Promise<HttpApp>;
}

/** What the console listener's app is built from: the running connector. */
export interface ConnectorParts {
  handle: ConnectorHandle;
  tunnel: ConnectorTunnel;
  config: ConnectorConfig;
  /** Asks the connector to stop (the local API's exit action). */
  requestExit: () => void;
  /** Asks the connector to stop and remove itself (the local API's uninstall action). */
  requestUninstall?: () => void;
  /** The log files in the data directory (cleared by "Clear logs", part of the export). */
  logFiles?: RotatingLogFiles | null;
  /**
   * Restarts the connector's process: its systemd unit, or a re-executed
   * successor. Absent (embedded use): "Restart service" restarts the engine.
   */
  requestRestart?: () => void;
}

/** Settings given on the command line as bare switches (`--gateway`). */
const BOOLEAN_OPTIONS = new Set(["gateway", "manageDns", "strictEnforcement"]);

function options(): Record<string, { type: "string" | "boolean" }> {
  const o: Record<string, { type: "string" | "boolean" }> = { config: { type: "string" } };
  for (const k of Object.keys(ConnectorConfig.shape)) {
    o[kebab(k)] = { type: BOOLEAN_OPTIONS.has(k) ? "boolean" : "string" };
  }
  o["no-dns"] = { type: "boolean" };
  o["key-file"] = { type: "string" };
  o["email"] = { type: "string" };
  return o;
}

/** Runs `portcullis connect`; returns the exit code when stopped. */
export async function connectCommand(args: string[], opts: ConnectOptions): Promise<number> {
  const { values, positionals } = parseCliArgs(args, options(), "portcullis connect");
  if (positionals.length > 1) {
    throw new InputError("usage", "Unexpected arguments: give at most one enrolment key");
  }
  const { config: file, "no-dns": noDns, "key-file": keyFile, email, ...flags } = values as Record<
    string,
    string | boolean
  >;
  if (noDns) flags["manage-dns"] = false;
  // A successor of "Restart service" starts once its predecessor is gone.
  await awaitPredecessor();
  // The key first: a bad or unsafe one stops us before anything on the system changes.
  const enrollment = await resolveEnrollmentKey({
    argument: positionals[0],
    keyFile: keyFile as string | undefined,
  });
  if (enrollment) log.info("Enrolment key given", { source: enrollment.source });
  const config = await loadConfig("connector", {
    file: file as string | undefined,
    env: Deno.env.toObject(),
    flags,
  });
  setLogLevel(config.logLevel);
  // Logs on disk from here on; the policy's log mode sets the level once it arrives.
  const logs = attachLogFiles({ dir: `${config.dataDir}/logs`, name: "connector" });
  let policyLogMode: string | null = null;
  const onPolicy = (p: { appProfile: { logMode: "error" | "warn" | "info" | "debug" } }) => {
    const mode = p.appProfile.logMode;
    if (mode === policyLogMode) return;
    policyLogMode = mode;
    if (mode !== logLevel()) {
      log.info("Log level set by the policy's log mode", { mode });
      setLogLevel(mode);
    }
  };
  const tunnel = new ConnectorTunnel({
    tunName: config.tunInterface,
    gateway: config.gateway,
    manageDns: config.manageDns,
    lanDnsListen: config.lanDnsListen ? splitListen(config.lanDnsListen) : undefined,
    udpProbeMs: config.udpProbeSec * 1000,
    resolvBackupPath: `${config.dataDir}/resolv.conf.backup`,
  });
  // resolv.conf is polled, not watched: under `ip netns exec` and in
  // containers it is a bind mount, whose changes a directory watch misses.
  const monitor = await SystemNetworkMonitor.start({
    ignoreInterfaces: [config.tunInterface],
    forcePolling: true,
    pollMs: 1000,
  });
  const network = new SystemNetworkPort({ monitor, ourInterface: config.tunInterface });
  // A run killed before it could clean up may have left its block behind.
  await tunnel.removeStaleRules();
  // ... and resolv.conf pointing at its dead stub: names resolve again now.
  if (await tunnel.recoverDns()) log.info("Restored resolv.conf left behind by an earlier run");
  // Listen for signals before anything is set up, so that a stop during
  // start-up still runs the cleanup below instead of killing the process
  // with a traffic block (strict enforcement) left in place.
  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((r) => (stopRequested = r));
  const onSignal = () => stopRequested();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let successor: Extract<RestartPlan, { kind: "reexec" }> | null = null;
  // With an installed program (updates), restarts run that file: it may be a new version now.
  const program = config.program ?? (Deno.build.standalone ? Deno.execPath() : undefined);
  const requestRestart = () => {
    const plan = restartPlan(
      undefined,
      undefined,
      program ? { path: program, args: Deno.args } : undefined,
    );
    if (plan.kind === "systemd") {
      // systemd stops us (SIGTERM, the cleanup below) and starts the unit again.
      restartUnit(plan.unit).catch((e) => {
        log.error("Cannot restart the service through systemd", { error: e.message });
      });
      return;
    }
    log.info("Restarting the connector process");
    successor = plan;
    stopRequested();
  };
  let handle;
  try {
    handle = await startConnector({
      dataDir: config.dataDir,
      enrollmentKey: enrollment?.key ?? null,
      // Headless sign-in: the device flow's URL and code go to the terminal.
      signIn: typeof email === "string"
        ? { email, tell: (m: string) => console.log(m) }
        : undefined,
      hostname: config.hostname,
      tunnelInterface: config.tunInterface,
      probeIdleSec: config.probeIdleSec,
      probePortalSec: config.probePortalSec,
      strictEnforcement: config.strictEnforcement,
      dlp: { mode: config.dlpMode, refreshSec: config.dlpRefreshSec },
      updates: {
        releaseKey: config.releaseKey,
        program,
        checkSec: config.updateCheckSec,
        healthSec: config.updateHealthSec,
      },
    }, { tunnel, network, edge: opts.edge, onPolicy, restart: requestRestart });
  } catch (e) {
    await network.close();
    await tunnel.close().catch(() => {});
    logs.detach();
    throw e;
  }
  let server: ReturnType<ServeFn> | null = null;
  let uninstall = false;
  try {
    const app = await opts.app({
      handle,
      tunnel,
      config,
      requestExit: () => stopRequested(),
      requestUninstall: () => {
        uninstall = true;
        stopRequested();
      },
      requestRestart,
      logFiles: logs.files,
    });
    server = opts.serve(
      { ...splitListen(config.consoleListen), onListen: () => {} },
      (req, info) => app.fetch(req, info),
    );
    log.info("Connector console listening", { address: config.consoleListen });
    console.log(`Portcullis connector is running. Console: http://${config.consoleListen}/`);
    await stopped;
    log.info("Stopping connector");
  } finally {
    try {
      if (server) await shutdownWithin(server);
      await handle.stop();
    } finally {
      // Whatever state we stopped in, no route, DNS change or traffic block stays behind.
      await tunnel.close();
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
    }
  }
  logs.detach();
  if (uninstall) {
    // The local API checked the uninstall password; everything is stopped now.
    await removeConnector({
      dataDir: config.dataDir,
      tunInterface: config.tunInterface,
      consoleListen: config.consoleListen,
      say: (line) => log.info(line),
      self: true,
    });
    console.log("Portcullis connector uninstalled.");
  }
  // Everything is released (console port, TUN, resolv.conf): start the new process.
  if (successor && !uninstall) {
    const plan: Extract<RestartPlan, { kind: "reexec" }> = successor;
    if (program && await updatePending(config.dataDir)) {
      // A new version: stay as its guard until it reports (src/connector/update_guard.ts).
      const outcome = await superviseUpdate({ dataDir: config.dataDir, program, plan });
      log.info("Update guard done", { outcome });
    } else {
      spawnSuccessor(plan);
    }
  }
  return 0;
}

/** What the edge's "am I protected" page answers. */
interface Answer {
  protected: boolean;
  hostname: string | null;
  user: string | null;
  address: string;
  reason: string;
}

/** Runs `portcullis check [--url URL]`: 0 when protected, 1 when not, 2 when unknown. */
export async function checkCommand(args: string[]): Promise<number> {
  const { values } = parseCliArgs(args, { url: { type: "string" } }, "portcullis check");
  const url = (values.url as string | undefined) ?? "http://protected.portcullis.internal/";
  let a: Answer;
  try {
    const res = await fetch(url, {
      headers: { Accept: "application/json" },
      signal: AbortSignal.timeout(5000),
    });
    a = await res.json();
  } catch (e) {
    console.log(
      `Not protected (as far as we can tell): cannot reach ${url} — ${(e as Error).message}. ` +
        "That page is only reachable through a Portcullis tunnel.",
    );
    return 2;
  }
  if (a.protected) {
    console.log(
      `Protected: this traffic goes through the Portcullis tunnel of device ${a.hostname}` +
        `${a.user ? ` (user ${a.user})` : ""}, tunnel address ${a.address}.`,
    );
    return 0;
  }
  console.log(`Not protected: ${a.reason}`);
  return 1;
}
