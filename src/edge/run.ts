/**
 * `portcullis edge`: builds the whole edge role from its configuration —
 * control plane (store, CA, API), data plane (TUN, WireGuard over UDP and
 * TLS, NAT), the bootstrap listener, the "am I protected" page and the DNS
 * for private names — and runs it until SIGINT/SIGTERM.
 *
 * Listeners are opened through the `serve` function main.ts hands in, so
 * main.ts stays the only caller of Deno.serve.
 */
import { Hono } from "hono";
import { type EdgeConfig, splitListen } from "../config.ts";
import { type EdgeControlPlane, startEdgeControlPlane } from "./control_plane.ts";
import { EdgeTunnel } from "./tunnel.ts";
import { c2cAddress, loadPeers } from "./devices.ts";
import { deviceRouteFn } from "./enforce.ts";
import { DNS_CLASS_IN, DNS_TYPE } from "../packet/dns.ts";
import { createBootstrapApp } from "../http/bootstrap_app.ts";
import { createProtectedApp } from "../http/protected_app.ts";
import { type DnsServer, protectedRecord, startDnsServer } from "./dns.ts";
import { parseKey } from "../wireguard/mod.ts";
import { parsePrefix, prefixContains, tryParseIp } from "../policy/cidr.ts";
import { logger, setLogLevel } from "../log.ts";
import { type ServeFn, shutdownWithin } from "../http/serve.ts";

export type { ServeFn } from "../http/serve.ts";

const log = logger("edge");

/** A running edge. */
export interface RunningEdge {
  cp: EdgeControlPlane;
  tunnel: EdgeTunnel | null;
  /** Bound ports by listener name (api, console, bootstrap, protected). */
  ports: Record<string, number>;
  stop(): Promise<void>;
}

/** Options beyond the configuration. */
export interface RunEdgeOptions {
  serve: ServeFn;
  /** Mounts the admin console on the console listener (from src/http/console). */
  consoleApp?: (
    cp: EdgeControlPlane,
    tunnel: EdgeTunnel | null,
    config: EdgeConfig,
  ) => Hono | Promise<Hono>;
  /** Skip the data plane (no TUN/NAT; API-only tests and key management). */
  noTunnel?: boolean;
}

/** Starts every part of the edge; returns handles to stop it. */
export async function startEdge(config: EdgeConfig, opts: RunEdgeOptions): Promise<RunningEdge> {
  setLogLevel(config.logLevel);
  const cp = await startEdgeControlPlane(config);
  const closers: (() => Promise<void> | void)[] = [() => cp.close()];
  const ports: Record<string, number> = {};
  let tunnel: EdgeTunnel | null = null;
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
      });
      const t = tunnel;
      closers.push(() => t.close());
      cp.ctx.tunnel = tunnel;
      loadPeers(cp.ctx);
      // Device-to-device traffic follows the client-to-client policy, live.
      const applyRoute = () =>
        t.pump.setRoute(
          deviceRouteFn(
            cp.ctx.network,
            cp.ctx.edgeAddress,
            cp.ctx.policy.clientToClient().enabled,
          ),
        );
      applyRoute();
      const stopWatch = new AbortController();
      closers.push(() => stopWatch.abort());
      (async () => {
        for await (
          const _ of cp.notifier.subscribe({ kinds: ["policy_updated"], signal: stopWatch.signal })
        ) {
          applyRoute();
        }
      })().catch(() => {});
    }

    const listen = (
      name: string,
      addr: { hostname: string; port: number },
      fetch: (
        req: Request,
        info: Deno.ServeHandlerInfo<Deno.NetAddr>,
      ) => Response | Promise<Response>,
      tls?: { cert: string; key: string },
    ) => {
      const server = opts.serve({ ...addr, ...tls, onListen: () => {} }, fetch);
      ports[name] = server.addr.port;
      closers.push(() => shutdownWithin(server));
      log.info(`Listening: ${name}`, { address: `${addr.hostname}:${server.addr.port}` });
    };
    // Hono reads the peer address from the env's remoteAddr (rate limits, audit).
    const withInfo =
      (app: { fetch: (r: Request, env: unknown) => Response | Promise<Response> }) =>
      (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => app.fetch(req, info);

    // The public API listener serves devices and admins, but not /metrics:
    // fleet size and traffic are for the operator's loopback console only.
    const publicApi = new Hono();
    publicApi.get(
      "/metrics",
      (c) =>
        c.json({
          error: {
            code: "not_found",
            message: "Metrics are served on the console listener only.",
          },
        }, 404),
    );
    publicApi.all("*", (c) => cp.app.fetch(c.req.raw, c.env));
    listen("api", splitListen(config.apiListen), withInfo(publicApi), {
      cert: cp.ca.serverCertPem,
      key: cp.ca.serverKeyPem,
    });
    const consoleApp = opts.consoleApp ? await opts.consoleApp(cp, tunnel, config) : cp.app;
    listen("console", splitListen(config.consoleListen), withInfo(consoleApp));
    listen(
      "bootstrap",
      splitListen(config.bootstrapListen),
      withInfo(createBootstrapApp({ caCertPem: cp.ca.caCertPem, caSha256: cp.ca.caSha256 })),
    );
    if (tunnel) {
      const remotes = new WeakMap<Request, string>();
      const protectedApp = createProtectedApp(cp.ctx, (r) => remotes.get(r) ?? "");
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
      });
      closers.push(() => dns.close());
      ports.dns = dns.port;
    }
  } catch (e) {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => {});
    throw e;
  }
  return {
    cp,
    tunnel,
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
export async function runEdge(config: EdgeConfig, opts: RunEdgeOptions): Promise<void> {
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
