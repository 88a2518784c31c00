/**
 * `portcullis edge`: builds the whole edge role from its configuration —
 * control plane (store, CA, API), data plane (TUN, WireGuard over UDP and
 * TLS, NAT), the bootstrap listener, the "am I protected" page and the DNS
 * for private names — and runs it until SIGINT/SIGTERM.
 *
 * Listeners are opened through the `serve` function main.ts hands in, so
 * main.ts stays the only caller of Deno.serve; the HTTP apps they serve are
 * handed in too (`EdgeApps`, built in src/http), so the role never imports
 * the HTTP layer above it.
 */
import { type EdgeConfig, splitListen } from "../config.ts";
import type { CaInfo } from "./ca.ts";
import type { EdgeContext } from "./context.ts";
import { type EdgeControlPlane, startEdgeControlPlane } from "./control_plane.ts";
import { EdgeTunnel } from "./tunnel.ts";
import { c2cAddress, TUNNEL_UP_MS } from "./devices.ts";
import { FleetTunnelPort } from "./peer_sync.ts";
import { sweepLapsedSignIns } from "./signin_lapse.ts";
import { hostAddress } from "./addresses.ts";
import { EdgeMesh } from "../fleet/mesh.ts";

import { type EdgeEnforcement, startEnforcement } from "./access/mod.ts";
import { startWebProxy, type WebProxy } from "./web_proxy.ts";
import { DNS_CLASS_IN, DNS_TYPE } from "../packet/dns.ts";
import { type DnsServer, protectedRecord, startDnsServer } from "./dns.ts";
import { parseKey } from "../wireguard/mod.ts";
import { parsePrefix, prefixContains, tryParseIp } from "../policy/cidr.ts";
import { logger, setLogLevel } from "../log.ts";
import { attachLogFiles } from "../diag/log_files.ts";
import { type HttpApp, type ServeFn, type ServeHandler, shutdownWithin } from "../serve.ts";

/** How often the edge looks for devices whose sign-in ended (they leave the tunnel). */
const SIGNIN_SWEEP_MS = 30_000;

const log = logger("edge");

/** A running edge. */
export interface RunningEdge {
  cp: EdgeControlPlane;
  tunnel: EdgeTunnel | null;
  /** Access enforcement on the tunnel (null without a data plane). */
  enforcement: EdgeEnforcement | null;
  /** The web forward proxy (null unless `webProxyPort` is set and the data plane runs). */
  webProxy: WebProxy | null;
  /** Bound ports by listener name (api, console, bootstrap, protected, proxy). */
  ports: Record<string, number>;
  stop(): Promise<void>;
}

/**
 * The HTTP apps the edge serves, built by its caller (main.ts hands in
 * src/http's `edgeApps()`). `A` is the API app's own type, which the console
 * gets back as it was built.
 */
export interface EdgeApps<A extends HttpApp = HttpApp> {
  /** The REST API over the control plane: device, login and admin API, OpenAPI, metrics. */
  api(cp: EdgeControlPlane): A;
  /** The API as the public listener serves it: without /metrics, which is for the loopback console. */
  publicApi(api: A): HttpApp;
  /** The plain-HTTP bootstrap app: CA certificate, captive-portal probe, egress address. */
  bootstrap(ca: CaInfo): HttpApp;
  /** The "am I protected" page; `remoteOf` gives the peer address of a request. */
  protectedPage(ctx: EdgeContext, remoteOf: (req: Request) => string): HttpApp;
  /** The admin console listener's app around the API; without one the listener serves the API. */
  console?(
    cp: EdgeControlPlane,
    api: A,
    tunnel: EdgeTunnel | null,
    config: EdgeConfig,
  ): HttpApp | Promise<HttpApp>;
}

/** Options beyond the configuration. */
export interface RunEdgeOptions<A extends HttpApp = HttpApp> {
  serve: ServeFn;
  /** The HTTP apps to serve (src/http `edgeApps()`). */
  apps: EdgeApps<A>;
  /** Skip the data plane (no TUN/NAT; API-only tests and key management). */
  noTunnel?: boolean;
}

/** Starts every part of the edge; returns handles to stop it. */
export async function startEdge<A extends HttpApp>(
  config: EdgeConfig,
  opts: RunEdgeOptions<A>,
): Promise<RunningEdge> {
  setLogLevel(config.logLevel);
  // Logs on disk in the data directory (rotating, secrets stripped), also in diagnostics.
  await Deno.mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const logs = attachLogFiles({ dir: `${config.dataDir}/logs`, name: "edge" });
  let cp;
  try {
    cp = await startEdgeControlPlane(config);
  } catch (e) {
    logs.detach();
    throw e;
  }
  const files = logs.files;
  if (files) cp.ctx.logFiles = () => files.read();
  const closers: (() => Promise<void> | void)[] = [() => logs.detach(), () => cp.close()];
  const ports: Record<string, number> = {};
  let tunnel: EdgeTunnel | null = null;
  let enforcement: EdgeEnforcement | null = null;
  let webProxy: WebProxy | null = null;
  try {
    if (!opts.noTunnel) {
      tunnel = await EdgeTunnel.start({
        privateKey: parseKey(cp.wgKey.privateKey, "edge private key"),
        network: cp.ctx.network,
        edgeAddress: cp.ctx.edgeAddress,
        port: config.tunnelPort,
        tls: { cert: cp.ca.serverCertPem, key: cp.ca.serverKeyPem },
        tunName: config.tunInterface,
        mtu: config.mtu,
        nat: config.nat,
        clock: cp.ctx.clock,
      });
      const t = tunnel;
      closers.push(() => t.close());
      // Every enabled device of the (possibly shared) store is a peer here, and
      // peer changes made on other edges reach this tunnel through the feed.
      const peers = new FleetTunnelPort(t, cp.ctx, cp.ctx.fleet.id, []);
      cp.ctx.tunnel = peers;
      closers.push(() => peers.close());
      peers.reconcile();
      // A device that stops calling the API still leaves the tunnel when its
      // user's sign-in ends (the API refuses it on its next call anyway).
      const sweep = setInterval(() => sweepLapsedSignIns(cp.ctx), SIGNIN_SWEEP_MS);
      closers.push(() => clearInterval(sweep));
      // Every flow from a device is decided by the access policy (segments,
      // rules, subjects, posture, client-to-client), live on every change.
      const access = startEnforcement(cp.ctx, t);
      enforcement = access;
      closers.push(() => access.close());
      if (config.webProxyPort !== undefined) {
        const wp = await startWebProxy(cp.ctx, {
          port: config.webProxyPort,
          tunName: t.interfaceName,
          transparent: config.webProxyTransparent,
          serve: opts.serve,
          onBusy: (busy) => t.setEventLoopBusy(busy),
          onClientWrite: () => t.poke(),
          originCaCerts: config.webProxyCaFile
            ? [await Deno.readTextFile(config.webProxyCaFile)]
            : undefined,
        });
        webProxy = wp;
        closers.push(() => wp.close());
        ports.proxy = wp.port;
      }
      cp.ctx.dataPlaneState = () => ({
        tunnel: { interface: t.interfaceName, pump: t.pumpStats },
        enforcement: access.stats(),
        ...(webProxy ? { webProxy: { ...webProxy.engine.stats } } : {}),
      });
    }

    const listen = (
      name: string,
      addr: { hostname: string; port: number },
      fetch: ServeHandler,
      tls?: { cert: string; key: string },
    ) => {
      const server = opts.serve({ ...addr, ...tls, onListen: () => {} }, fetch);
      ports[name] = server.addr.port;
      closers.push(() => shutdownWithin(server));
      log.info(`Listening: ${name}`, { address: `${addr.hostname}:${server.addr.port}` });
    };
    // Hono reads the peer address from the env's remoteAddr (rate limits, audit).
    const withInfo = (app: HttpApp): ServeHandler => (req, info) => app.fetch(req, info);

    const { apps } = opts;
    const api = apps.api(cp);
    // The public API listener serves devices and admins, but not /metrics:
    // fleet size and traffic are for the operator's loopback console only.
    listen("api", splitListen(config.apiListen), withInfo(apps.publicApi(api)), {
      cert: cp.ca.serverCertPem,
      key: cp.ca.serverKeyPem,
    });
    const consoleApp = apps.console ? await apps.console(cp, api, tunnel, config) : api;
    listen("console", splitListen(config.consoleListen), withInfo(consoleApp));
    listen("bootstrap", splitListen(config.bootstrapListen), withInfo(apps.bootstrap(cp.ca)));
    if (tunnel) {
      const remotes = new WeakMap<Request, string>();
      const protectedApp = apps.protectedPage(cp.ctx, (r) => remotes.get(r) ?? "");
      listen("protected", { hostname: cp.ctx.edgeAddress, port: 80 }, (req, info) => {
        remotes.set(req, info.remoteAddr.hostname);
        return protectedApp.fetch(req);
      });
      const network = parsePrefix(cp.ctx.network);
      const dns: DnsServer = await startDnsServer({
        listen: { hostname: cp.ctx.edgeAddress, port: 53 },
        // The c2c domain (default clients.portcullis.internal) is configurable;
        // the zone list is read at start.
        zones: [...new Set(["portcullis.internal", cp.ctx.policy.clientToClient().domain])],
        records: [protectedRecord(cp.ctx.edgeAddress)],
        lookup: (name, type) => {
          const address = c2cAddress(cp.ctx, name);
          if (!address) return null;
          if (type !== DNS_TYPE.A) return []; // the name exists, with IPv4 only
          return [{ name, type: "A", class: DNS_CLASS_IN, ttl: 30, address }];
        },
        allow: (address) => {
          const ip = tryParseIp(address.replace(/^::ffff:/, ""));
          return ip !== null && prefixContains(network, ip);
        },
        onForwarded: (src, query, answer) =>
          enforcement?.observeDnsAnswer(src.address, query, answer),
      });
      closers.push(() => dns.close());
      ports.dns = dns.port;
    }
    if (tunnel) {
      // In the fleet's registry once every listener is up: other edges' bundles
      // list this one from now on, until it stops (or stops heartbeating).
      const t = tunnel;
      const fleet = cp.ctx.fleet;
      fleet.start({
        devicesConnected: () => {
          const now = cp.ctx.clock.now();
          let n = 0;
          for (const s of t.peerStats().values()) {
            if (s.lastHandshake !== null && now - s.lastHandshake < TUNNEL_UP_MS) n++;
          }
          return n;
        },
      });
      closers.push(() => fleet.stop());
      fleet.onChange(() => log.info("Healthy edges changed", { edges: fleet.healthy().length }));
      // The mesh: where each device is connected now, and a WireGuard peer per
      // other edge carrying the devices located there (src/fleet/mesh.ts).
      const mesh = new EdgeMesh({
        store: cp.ctx.store,
        clock: cp.ctx.clock,
        selfId: fleet.id,
        plane: t.mesh,
        addresses: () => {
          const out = new Map<string, string>();
          for (const [id, host] of cp.ctx.store.leases.all()) {
            out.set(id, hostAddress(cp.ctx.network, host));
          }
          return out;
        },
        onMoved: () => enforcement?.enforcer.peersChanged(),
      });
      t.onDeviceHandshake((id, at) => mesh.noteHandshake(id, at));
      mesh.start();
      closers.push(() => {
        t.onDeviceHandshake(null);
        mesh.stop();
        t.mesh.close();
      });
      cp.ctx.mesh = () => t.mesh.views();
    }
    // Scans the edge was running when it stopped carry on from their saved cursors.
    const resumed = cp.ctx.saas.scanner.resume();
    if (resumed) log.info("Resumed SaaS scans", { scans: resumed });
    // Tenants with a scan interval are scanned on schedule (checked every minute).
    cp.ctx.saas.scanner.schedule();
  } catch (e) {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => {});
    throw e;
  }
  return {
    cp,
    tunnel,
    enforcement,
    webProxy,
    ports,
    async stop() {
      for (const c of closers.reverse()) {
        try {
          await c();
        } catch (e) {
          log.warn("Shutdown step failed", { error: (e as Error).message });
        }
      }
    },
  };
}

/** Runs the edge until SIGINT or SIGTERM. */
export async function runEdge<A extends HttpApp>(
  config: EdgeConfig,
  opts: RunEdgeOptions<A>,
): Promise<void> {
  const edge = await startEdge(config, opts);
  if (edge.cp.initialAdminPath) {
    console.log(`Initial admin credentials written to ${edge.cp.initialAdminPath}`);
  }
  console.log(
    `Portcullis edge is up. API ${edge.cp.ctx.apiUrl}, console http://${config.consoleListen}/, ` +
      `tunnel ${config.tunnelPort}/udp+tcp, device network ${edge.cp.ctx.network}.`,
  );
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    Deno.addSignalListener("SIGINT", done);
    Deno.addSignalListener("SIGTERM", done);
  });
  log.info("Stopping edge");
  await edge.stop();
}
