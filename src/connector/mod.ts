/**
 * The connector role: open state, load or make this device's identity, enrol
 * (first run, with a key) or reuse the stored enrolment (later runs), then
 * run the engine over the tunnel and network ports. main.ts installs the
 * signal handlers and serves the local API; this module never touches
 * process-wide state.
 */
import { BrowserSignIn } from "./browser_signin.ts";
import { deviceSignIn } from "./signin.ts";
import { logger } from "../log.ts";
import type { Clock } from "../clock.ts";
import type { PolicyBundle } from "../policy/types.ts";
import type { PostureReport } from "../control/mod.ts";
import { collectFacts, collectOs, type PostureSources } from "../posture/mod.ts";
import { factsToWire, postureSigningMessage } from "../posture/report.ts";
import { ConnectorState } from "../store/connector_state.ts";
import type { EdgeApi, EdgeApiFactory } from "./edge_api.ts";
import { ZdxUploader } from "./zdx_upload.ts";
import { bootstrapBase, parseEnrollmentKey } from "./enrollment_key.ts";
import { type DeviceInfo, Engine } from "./engine/mod.ts";
import { type DeviceIdentity, loadOrCreateIdentity, toBase64 } from "./identity.ts";
import { type NetworkPort, OffTrustedNetworkPort } from "./network_port.ts";
import { NotificationHub } from "./notifications.ts";
import { ConnectorDlp, type ConnectorDlpOptions } from "./dlp_agent.ts";
import type { TunnelPort } from "./tunnel_port.ts";
import { VERSION } from "../version.ts";
import { SystemTrustStore } from "./trust_store.ts";
import { LocalProxy, type LocalProxyOptions } from "./local_proxy.ts";
import { PacCache } from "./pac_cache.ts";
import type { EngineState } from "./engine_state.ts";
import { ZdxRunner } from "../zdx/runner.ts";
import { physicalInterface, probeWebDirect } from "../zdx/direct_probe.ts";
import { probeWeb } from "../zdx/web_probe.ts";
import { dnsProbe } from "./liveness.ts";
import { pinReleaseKey } from "./release_pin.ts";
import { Updater } from "./updater.ts";

export { Engine } from "./engine/mod.ts";
export type { EngineStatus } from "./engine/mod.ts";
export { NotificationHub } from "./notifications.ts";
export type { TunnelConfig, TunnelEvent, TunnelPort, TunnelStatus } from "./tunnel_port.ts";
export type { NetworkPort } from "./network_port.ts";
export { SystemNetworkPort } from "./network/system_port.ts";

const log = logger("connector");

/** Connector settings (from the command line / config file). */
export interface ConnectorConfig {
  /** Default "./data/connector". */
  dataDir?: string;
  /** "Tunnel with local proxy": listener and system proxy file (defaults 127.0.0.1:9000, /etc/profile.d). */
  localProxy?: LocalProxyOptions;
  /** Enrolment key (first run); later runs reuse the stored enrolment. */
  enrollmentKey?: string | null;
  /** Sign this user in (device flow) before enrolling, so the device is theirs. */
  signIn?: { email: string; tell: (message: string) => void };
  /** Default: Deno.hostname(). */
  hostname?: string;
  /** Our tunnel interface, left out of the fingerprint (default "pcc0", as src/connector/tunnel.ts). */
  tunnelInterface?: string;
  machineIdPath?: string;
  sysNetPath?: string;
  heartbeatSec?: number;
  postureSec?: number;
  /** How often posture facts are looked at for a change (default 2 s). */
  postureCheckSec?: number;
  policyRefreshSec?: number;
  streamBackoffMs?: { min: number; max: number };
  /** Captive-portal / edge probe interval while all is well (default 60 s). */
  probeIdleSec?: number;
  /** Probe interval while a captive portal holds the device (default 3 s). */
  probePortalSec?: number;
  /** The edge's plain-HTTP bootstrap URL (default http://<API host>:8081). */
  bootstrapUrl?: string;
  /** Block traffic until the first enrolment (then the policy decides); default false. */
  strictEnforcement?: boolean;
  /** Backoff of enrolment retries while the edge cannot be reached (default 1–30 s). */
  enrollRetryMs?: { min: number; max: number };
  /** Connector updates (src/connector/updater.ts); off without a pinned release key and a program. */
  updates?: {
    /** A release public key file to pin at the first run (release_pin.ts). */
    releaseKey?: string;
    /** The installed program (default: this executable when compiled). */
    program?: string;
    checkSec?: number;
    healthSec?: number;
    firstCheckSec?: number;
  };
  /** Endpoint DLP (removable media, network shares); off unless given (the CLI passes its "auto" default). */
  dlp?: Partial<Omit<ConnectorDlpOptions, "dataDir" | "clock">>;
}

/** Injected seams. */
export interface ConnectorPorts {
  tunnel: TunnelPort;
  /** Default: OffTrustedNetworkPort (no detection). */
  network?: NetworkPort;
  /**
   * How to reach the edge: main.ts hands in the HTTP client (src/http/edge_client.ts
   * `httpEdgeApi()`); tests hand it an in-process transport or a fake.
   */
  edge: EdgeApiFactory;
  clock?: Clock;
  posture?: PostureSources;
  /** Called with each policy applied (the CLI sets the log level from its log mode). */
  onPolicy?: (policy: PolicyBundle) => void;
  /** Where the inspection CA goes (default: this host's system store and NSS databases). */
  trust?: { sync(ca: PolicyBundle["inspectionCa"]): Promise<void> };
  /** Restarts the process into the program file (the updater's last step; absent: no updates). */
  restart?: () => void;
}

/** A running connector. */
export interface ConnectorHandle {
  /** Endpoint DLP (null when its mode is "off"). */
  dlp: ConnectorDlp | null;
  engine: Engine;
  store: ConnectorState;
  hub: NotificationHub;
  identity: DeviceIdentity;
  dataDir: string;
  /** Digital-experience probes of the policy in force. */
  zdx: ZdxRunner;
  /** Browser sign-in through the edge (the console's Sign in). */
  browserSignIn: BrowserSignIn;
  /** Connector updates: checks, verification, install, health and rollback. */
  updater: Updater;
  /** Stops the engine, tears the tunnel down and closes the store; idempotent. */
  stop(): Promise<void>;
}

/** Starts the connector; resolves once the first enrolment or refresh attempt has been made. */
export async function startConnector(
  config: ConnectorConfig,
  ports: ConnectorPorts,
): Promise<ConnectorHandle> {
  const dataDir = config.dataDir ?? "./data/connector";
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const store = ConnectorState.open(`${dataDir}/connector.db`);
  let updateClient: ReturnType<typeof edgeClientFor> | null = null;
  try {
    // The key comes from the operator's file, never from the edge; a wrong one stops us here.
    const releaseKey = await pinReleaseKey(dataDir, config.updates?.releaseKey);
    const now = () => (ports.clock ?? { now: Date.now }).now();
    const hub = new NotificationHub(store, now);
    const outcome = await loadOrCreateIdentity(store, {
      machineIdPath: config.machineIdPath,
      sysNetPath: config.sysNetPath,
      excludeInterfaces: [config.tunnelInterface ?? "pcc0"],
    }, now);
    const identity = outcome.identity;
    if (outcome.status === "replaced") {
      log.warn("Discarded the stored device identity; enrolling afresh with new keys", {
        reason: outcome.reason,
      });
      hub.raise(
        "identity_replaced",
        "warn",
        `Device keys discarded and made anew: ${outcome.reason}`,
        { fingerprintHash: identity.fingerprintHash },
      );
    } else if (outcome.status === "created") {
      log.info("Made new device keys", { wgPublicKey: identity.wgPublicKey });
    }

    const os = await collectOs(ports.posture?.osReleasePath).catch(() => ({
      name: Deno.build.os,
      version: Deno.osRelease(),
      id: Deno.build.os,
    }));
    const device: DeviceInfo = {
      hostname: sanitizeHostname(config.hostname ?? Deno.hostname()),
      os: os.id.slice(0, 64) || Deno.build.os,
      osVersion: (os.version || Deno.osRelease()).slice(0, 128),
      connectorVersion: VERSION,
    };
    const postureSources: PostureSources = {
      ...ports.posture,
      connectorVersion: VERSION,
    };
    // Side clients (PAC, ZDX, DLP) talk to the edge the engine uses now (fleet edge selection).
    let engineRef: Engine | null = null;
    const currentEdge = () => engineRef?.edge ?? null;
    const pacClient = edgeClientFor(store, identity, ports.edge, currentEdge);
    const pac = new PacCache({ dataDir, client: pacClient.get });
    const localProxy = new LocalProxy({ ...config.localProxy, pac: () => pac.text() });
    const engine: Engine = engineRef = new Engine({
      store,
      identity,
      hub,
      tunnel: ports.tunnel,
      network: ports.network ?? new OffTrustedNetworkPort(),
      makeClient: (apiUrl, caPem) => ports.edge.client(apiUrl, caPem),
      fetchCa: (p) => ports.edge.fetchCa(p),
      device,
      enrollmentKey: config.enrollmentKey ?? null,
      signIn: config.signIn
        ? async (client) =>
          (await deviceSignIn(client, config.signIn!.email, { tell: config.signIn!.tell })).token
        : undefined,
      collectPosture: (policy) =>
        postureReport(policy, postureSources, {
          deviceId: () => store.getEnrollment()?.deviceId ?? null,
          sign: (data) => identity.sign(data),
        }, now),
      clock: ports.clock,
      heartbeatSec: config.heartbeatSec,
      postureSec: config.postureSec,
      postureCheckSec: config.postureCheckSec,
      policyRefreshSec: config.policyRefreshSec,
      streamBackoffMs: config.streamBackoffMs,
      probeIdleSec: config.probeIdleSec,
      probePortalSec: config.probePortalSec,
      bootstrapUrl: config.bootstrapUrl ?? bootstrapFromKey(config.enrollmentKey),
      strictEnforcement: config.strictEnforcement,
      enrollRetryMs: config.enrollRetryMs,
      onPolicy: ports.onPolicy,
      trust: ports.trust ?? new SystemTrustStore({ dataDir }),
      // "Tunnel with local proxy" and "enforce PAC": the listener runs while that action applies.
      onForwarding: (s, p) => {
        void pac.sync(p?.pac ?? null);
        const mode = localProxyMode(s);
        localProxy.set(mode ? p?.webProxy ?? null : null, mode ?? undefined).catch((e) =>
          log.warn("Cannot run the local proxy", { error: (e as Error).message })
        );
      },
    });
    await engine.start();
    // Endpoint DLP runs beside the engine: it needs the enrolment, not the tunnel.
    const dlpMode = config.dlp?.mode ?? "off";
    const dlp = dlpMode === "off" ? null : new ConnectorDlp(
      { store, identity, hub, edge: ports.edge, currentEdge },
      { refreshSec: 30, ...config.dlp, mode: dlpMode, dataDir, clock: ports.clock },
    );
    dlp?.start();
    const zdx = startZdx(
      engine,
      store,
      identity,
      ports.edge,
      config.tunnelInterface ?? "pcc0",
      currentEdge,
    );
    updateClient = edgeClientFor(store, identity, ports.edge, currentEdge);
    const program = config.updates?.program ?? (Deno.build.standalone ? Deno.execPath() : null);
    const updater = new Updater({
      dataDir,
      program: ports.restart ? program : null,
      disabledReason: ports.restart
        ? undefined
        : "This connector cannot restart itself: updates are off",
      key: releaseKey,
      client: () => updateClient!.get(),
      hub,
      restart: () => ports.restart?.(),
      healthy: () => {
        const s = engine.state;
        return s.enrolled && s.kind !== "error";
      },
      checkMs: (config.updates?.checkSec ?? 7200) * 1000,
      healthMs: (config.updates?.healthSec ?? 120) * 1000,
      firstCheckMs: (config.updates?.firstCheckSec ?? 60) * 1000,
    });
    await updater.start();
    let stopped = false;
    const browserSignIn = new BrowserSignIn(
      () => config.enrollmentKey,
      ports.edge,
      (token) => engine.enrollWithSignIn(token),
      now,
      {
        edge: () => engine.state.kind === "signin_required" ? engine.status().edge : null,
        withGrant: (grant) => engine.reauth.withGrant(grant),
        local: (u, p, totp) => engine.reauth.local(u, p, totp),
      },
    );
    return {
      engine,
      store,
      hub,
      dlp,
      identity,
      dataDir,
      zdx: zdx.runner,
      browserSignIn,
      updater,
      async stop() {
        if (stopped) return;
        stopped = true;
        updater.stop();
        updateClient?.close();
        zdx.stop();
        await dlp?.stop();
        await engine.stop();
        await localProxy.stop();
        pacClient.close();
        await (ports.network?.close() ?? Promise.resolve());
        store.close();
      },
    };
  } catch (err) {
    store.close();
    throw err;
  }
}

/**
 * Which local listener a state asks for: the relay (and PAC URL) while
 * connected with "tunnel with local proxy"; with "enforce PAC" the PAC is
 * served from the tunnel's first attempt on, and also while the edge is
 * unreachable (fail-open or fail-closed), from the cached copy, so browsers
 * still follow it (its DIRECT fallback when the profile fails open). Not
 * behind a captive portal (the portal's login must go direct), not on a
 * trusted network ("none") and not while disabled.
 */
export function localProxyMode(s: EngineState): "local_proxy" | "enforce_pac" | null {
  const action = s.verdict?.action;
  if (action === "tunnel_local_proxy" && s.kind === "connected") return "local_proxy";
  if (
    action === "enforce_pac" &&
    (s.kind === "connected" || s.kind === "connecting" || s.kind === "fail_open" ||
      s.kind === "fail_closed")
  ) return "enforce_pac";
  return null;
}

/** The edge the engine uses now (its API URL and CA), when it knows. */
type CurrentEdge = () => { apiUrl: string; caPem: string } | null;

/**
 * An edge API client for the stored enrolment, at the edge the engine uses
 * now; made again when the enrolment or that edge changes.
 */
function edgeClientFor(
  store: ConnectorState,
  identity: DeviceIdentity,
  edge: EdgeApiFactory,
  current: CurrentEdge = () => null,
) {
  let client: { key: string; api: EdgeApi } | null = null;
  return {
    get: (): EdgeApi | null => {
      const e = store.getEnrollment();
      const credential = identity.credential;
      if (!e || !credential) return null;
      const t = current() ?? e;
      const key = `${t.apiUrl}\n${e.deviceId}`;
      if (client?.key !== key) {
        client?.api.close();
        client = { key, api: edge.client(t.apiUrl, t.caPem) };
      }
      client.api.setCredentials(credential, identity.fingerprintHash);
      return client.api;
    },
    close: () => client?.api.close(),
  };
}

/**
 * Runs the policy's digital-experience probes; follows policy changes (looked
 * at every 2 s: probes run at 5 s intervals at the shortest). The tunnel's
 * round trip rides with each result so the score can tell the device → edge
 * part from the rest.
 */
function startZdx(
  engine: Engine,
  store: ConnectorState,
  identity: DeviceIdentity,
  edge: EdgeApiFactory,
  tunnelInterface: string,
  current: CurrentEdge,
) {
  const client = edgeClientFor(store, identity, edge, current);
  const upload = new ZdxUploader(() => client.get());
  upload.start();
  const runner = new ZdxRunner({
    onResult: (r) => upload.push(r),
    probe: (t) => probeWeb(t),
    // For comparison, while the probe goes through the tunnel: the same URL over the
    // physical interface (src/zdx/direct_probe.ts).
    direct: async (t) =>
      engine.state.kind === "connected"
        ? probeWebDirect(t, await physicalInterface(tunnelInterface))
        : null,
    edgeRtt: async () => {
      const e = store.getEnrollment();
      if (!e || engine.state.kind !== "connected") return null;
      const ms = await dnsProbe(engine.policy?.edgeDns ?? e.edgeAddress, 1000)();
      return ms === null ? null : Math.round(ms * 10) / 10;
    },
  });
  let seen: string | null = null;
  const look = () => {
    const probes = engine.policy?.appProfile.zdxProbes ?? [];
    const key = JSON.stringify(probes);
    if (key !== seen) {
      seen = key;
      runner.configure(probes);
    }
  };
  look();
  const timer = setInterval(look, 2000);
  return {
    runner,
    stop() {
      clearInterval(timer);
      runner.stop();
      upload.stop();
      client.close();
    },
  };
}

/**
 * Collects the facts the policy's posture profiles need and signs them with
 * the device key for the edge, which evaluates the profiles itself (the
 * connector's own verdict would be worth nothing to it).
 */
export async function postureReport(
  policy: PolicyBundle,
  sources: PostureSources,
  signer: { deviceId: () => string | null; sign: (data: Uint8Array) => Promise<Uint8Array> },
  now: () => number = Date.now,
): Promise<PostureReport> {
  const deviceId = signer.deviceId();
  if (!deviceId) throw new Error("Cannot report posture before enrolment");
  // The edge sends exactly the profiles this device is judged by.
  const facts = await collectFacts(policy.postureProfiles.flatMap((p) => p.checks), sources);
  const payload = JSON.stringify({
    deviceId,
    collectedAt: new Date(now()).toISOString(),
    facts: factsToWire(facts),
  });
  const signature = await signer.sign(postureSigningMessage(payload));
  return { payload, signature: toBase64(signature) };
}

/** The bootstrap URL an enrolment key names explicitly (its `b`), if any. */
function bootstrapFromKey(key: string | null | undefined): string | undefined {
  if (!key) return undefined;
  try {
    const p = parseEnrollmentKey(key);
    return p.b ? bootstrapBase(p) : undefined;
  } catch {
    return undefined;
  }
}

/** Makes a host name acceptable to the enrolment schema (letters, digits, dots, dashes). */
export function sanitizeHostname(name: string): string {
  const s = name.replace(/[^A-Za-z0-9.-]/g, "-").replace(/^[.-]+|[.-]+$/g, "").slice(0, 253);
  return s || "device";
}
