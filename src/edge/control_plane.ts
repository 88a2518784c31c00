/**
 * Start-up of the edge control plane, for main.ts: open and migrate the
 * store, make the CA and server certificate, the WireGuard key and the first
 * admin if this is the first start, choose (once) the device network, load
 * every enabled device into the tunnel port. The HTTP apps over it are built
 * by the caller (main.ts composes src/http's apps; tests build them directly).
 */
import { type Clock, systemClock } from "../clock.ts";
import { defaultPublicHost, type EdgeConfig, splitListen } from "../config.ts";
import type { TunnelEndpoint } from "../net/endpoint.ts";
import type { ScryptParams } from "../identity/password.ts";
import { logger } from "../log.ts";
import { Notifier } from "../notify/mod.ts";
import { openStore, type Store } from "../store/mod.ts";
import {
  DeferredSealer,
  loadOrCreateSecretKey,
  SecretBox,
  type SecretSealer,
} from "../identity/secret_box.ts";
import { ensureFleetKeys } from "./fleet_keys.ts";
import { ensureFleetInspectionCa } from "./fleet_inspection_ca.ts";
import { chooseDeviceNetwork, hostAddress, readLocalPrefixes } from "./addresses.ts";
import { type CaInfo, ensureCa } from "./ca.ts";
import { ReleaseService } from "./releases.ts";
import type { EdgeContext } from "./context.ts";
import { type EdgeTunnelPort, MemoryTunnelPort } from "./dataplane_port.ts";
import { loadPeers } from "./devices.ts";
import { ensureInitialAdmin } from "./initial_admin.ts";
import { DlpService } from "./dlp.ts";
import { InputError } from "../errors.ts";
import { createEdgeSaas } from "./saas.ts";
import { SHIPPED_CATEGORIES, WebSecurityService } from "./web_security.ts";
import { CategorySource } from "./url_categories.ts";
import { InspectionCa } from "../proxy/inspection_ca.ts";
import { PolicyService } from "./policy.ts";
import { ensureWgKey, type WgKeyPair } from "./wg_key.ts";
import { EdgePostureSource, type PostureSource } from "./access/posture_source.ts";
import { DeviceSignal } from "./signal.ts";
import { EdgeRegistry } from "../fleet/edge_registry.ts";
import { VERSION } from "../version.ts";

const log = logger("edge");

/** Optional seams for `startEdgeControlPlane`. */
export interface ControlPlaneDeps {
  clock?: Clock;
  /** The data plane's port; default: an in-memory fake (nothing is tunnelled). */
  tunnel?: EdgeTunnelPort;
  /** Prefixes of local networks; default: `ip -j addr`. */
  localPrefixes?: () => Promise<string[]> | string[];
  /** scrypt parameters for the initial admin (tests lower them). */
  scrypt?: ScryptParams;
  /** Posture results for access decisions; default: the connectors' own reports. */
  posture?: PostureSource;
}

/** A started control plane. */
export interface EdgeControlPlane {
  store: Store;
  ca: CaInfo;
  ctx: EdgeContext;
  notifier: Notifier;
  policy: PolicyService;
  /** The edge's WireGuard key pair (the data plane needs the private half). */
  wgKey: WgKeyPair;
  /** Path of the initial admin file if it was written on this start. */
  initialAdminPath: string | null;
  /** Stops running SaaS scans and closes the store. */
  close(): Promise<void>;
}

/** The device network, chosen at first start and then read back. */
export async function deviceNetwork(
  store: Store,
  preferred: string,
  localPrefixes: () => Promise<string[]> | string[],
): Promise<string> {
  const stored = store.settings.get("device_network");
  if (stored) return stored;
  const network = chooseDeviceNetwork(await localPrefixes(), preferred);
  store.settings.set("device_network", network);
  if (network !== preferred) {
    log.warn(`device range ${preferred} overlaps a local network; using ${network}`);
  }
  return network;
}

/** The host name, as the default edge name (a name the registry accepts). */
function defaultEdgeName(): string {
  let h = "edge";
  try {
    h = Deno.hostname();
  } catch { /* no permission: "edge" */ }
  const name = h.replace(/[^A-Za-z0-9._-]/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 63);
  return name || "edge";
}

/** Reads the PEM CA file of `saasCaFile`. */
async function readCaFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new InputError(
      "invalid_configuration",
      `Cannot read saasCaFile "${path}": ${(e as Error).message}`,
    );
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new InputError(
      "invalid_configuration",
      `Invalid configuration: edge.saasCaFile: "${path}" holds no PEM certificate`,
    );
  }
  return text;
}

/** Starts the edge control plane for `config`. */
export async function startEdgeControlPlane(
  config: EdgeConfig,
  deps: ControlPlaneDeps = {},
): Promise<EdgeControlPlane> {
  const clock = deps.clock ?? systemClock;
  await Deno.mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const publicHost = config.publicHost ?? defaultPublicHost();
  const api = splitListen(config.apiListen);
  const hostForUrl = publicHost.includes(":") ? `[${publicHost}]` : publicHost;
  const apiUrl = config.publicUrl ?? `https://${hostForUrl}:${api.port}`;

  const isIp = (h: string) => /^[\d.]+$/.test(h) || h.includes(":");
  const names = [publicHost, ...config.tlsNames, new URL(apiUrl).hostname.replace(/^\[|\]$/g, "")];
  const caNames = {
    hostnames: [...new Set(names.filter((n) => !isIp(n)))],
    ips: [...new Set(names.filter(isIp))],
  };
  const edgeName = config.edgeName ?? defaultEdgeName();

  // Secrets (TOTP seeds, IdP client secrets…) are sealed at rest under a key
  // kept beside (not in) the database. On a shared database the fleet's key
  // and CA come from the database, opened with the operator's join key.
  let sealer: SecretSealer;
  let store: Store;
  if (config.database) {
    const deferred = new DeferredSealer();
    store = openStore(config.database, { sealer: deferred, application: `portcullis ${edgeName}` });
    try {
      await ensureFleetKeys({
        store,
        sealer: deferred,
        dataDir: config.dataDir,
        keyFile: config.fleetKeyFile,
        edgeName,
        now: () => clock.now(),
        makeCa: async () => {
          const made = await ensureCa(`${config.dataDir}/ca`, caNames);
          return { certPem: made.caCertPem, keyPem: await Deno.readTextFile(made.caKeyPath) };
        },
      });
    } catch (err) {
      await store.close();
      throw err;
    }
    sealer = deferred;
  } else {
    sealer = new SecretBox(await loadOrCreateSecretKey(`${config.dataDir}/secret.key`));
    store = openStore(`${config.dataDir}/edge.db`, { sealer });
  }
  let ca: CaInfo;
  let wgKey: WgKeyPair;
  try {
    ca = await ensureCa(`${config.dataDir}/ca`, caNames);
    wgKey = await ensureWgKey(`${config.dataDir}/wg.key`);
  } catch (err) {
    await store.close();
    throw err;
  }
  try {
    const network = await deviceNetwork(
      store,
      config.deviceRange,
      deps.localPrefixes ?? readLocalPrefixes,
    );
    const edgeAddress = hostAddress(network, 1);
    const notifier = new Notifier(store, clock);
    const posture = deps.posture ?? new EdgePostureSource(store, clock);
    // One inspection root for the whole fleet on a shared database (devices
    // keep trusting it when they move between edges); per edge on SQLite.
    const inspectionCa = config.database
      ? (await ensureFleetInspectionCa({
        store,
        sealer,
        dir: `${config.dataDir}/inspection`,
        edgeName,
        now: () => clock.now(),
      })).ca
      : await InspectionCa.loadOrCreate(`${config.dataDir}/inspection`, sealer);
    const endpoints: TunnelEndpoint[] = [
      { transport: "udp", host: publicHost, port: config.tunnelPort },
      { transport: "tls", host: publicHost, port: config.tunnelPort },
    ];
    // The bootstrap URL other edges' devices probe to measure this edge (its
    // bound port is filled in by startEdge when the listener is up).
    const fleet = new EdgeRegistry({
      store,
      clock,
      notifier,
      identity: {
        name: edgeName,
        region: config.region,
        wgPublicKey: wgKey.publicKey,
        endpoints,
        apiUrl,
        bootstrapUrl: `http://${hostForUrl}:${splitListen(config.bootstrapListen).port}`,
        caPem: ca.caCertPem,
        version: VERSION,
      },
    });
    const policy = new PolicyService(store, clock, notifier, {
      edges: () => fleet.healthy(),
      edgeAddress,
      posture,
      inspectionCa,
      webProxy: config.webProxyPort !== undefined
        ? { address: edgeAddress, port: config.webProxyPort }
        : null,
    });
    const dlp = new DlpService(store, clock, notifier);
    const saas = createEdgeSaas({
      store,
      clock,
      notifier,
      dlp,
      authorityUrl: config.saasAuthorityUrl,
      graphUrl: config.saasGraphUrl,
      caCertificates: config.saasCaFile ? [await readCaFile(config.saasCaFile)] : undefined,
    });
    const web = new WebSecurityService(
      store,
      clock,
      notifier,
      dlp,
      // Edits to <dataDir>/url_categories take effect within seconds, without a restart.
      CategorySource.load([SHIPPED_CATEGORIES, `${config.dataDir}/url_categories`], clock),
      inspectionCa,
    );
    const ctx: EdgeContext = {
      store,
      clock,
      notifier,
      tunnel: deps.tunnel ?? new MemoryTunnelPort(),
      policy,
      dlp,
      saas,
      web,
      network,
      edgeAddress,
      edgePublicKey: wgKey.publicKey,
      endpoints,
      apiUrl,
      caSha256: ca.caSha256,
      posture,
      c2cChanged: new DeviceSignal(),
      subjectChanged: new DeviceSignal(),
      fleet,
      releases: new ReleaseService(store, clock, notifier, config.dataDir),
    };
    fleet.onChange(() => policy.edgesChanged());
    ctx.subjectChanged.on((id) => policy.forgetDevice(id));
    const initialAdminPath = await ensureInitialAdmin(store, clock, config.dataDir, deps.scrypt);
    const peers = loadPeers(ctx);
    log.info("edge control plane ready", { network, edgeAddress, apiUrl, peers });
    return {
      store,
      ca,
      ctx,
      notifier,
      policy,
      wgKey,
      initialAdminPath,
      // Scans stop between two requests first, then the database closes.
      close: () =>
        saas.close().finally(() => {
          fleet.stop();
          web.close();
          // Resolves once the change feed's own connection is closed too.
          return store.close();
        }),
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
