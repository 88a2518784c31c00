/**
 * The connector's data plane: the real TunnelPort.
 *
 * bringUp() opens the TUN device with the device's address (and the device
 * network routed through it, for client-to-client), a WireGuard device whose
 * only peer is the edge (allowed IPs: everything — the edge is the gateway),
 * a UDP socket and, when the profile allows, the TLS fallback. The policy's
 * routes are installed through the TUN; the edge's own endpoint addresses are
 * never among them, so the tunnel's packets keep using the physical route.
 *
 * Fail modes (edge unreachable): "direct" withdraws the tunnel routes so
 * traffic goes straight out; "blocked" withdraws them too (so DNS reaches
 * the network's resolvers) and adds an nftables table that drops everything
 * but loopback, DNS, DHCP and the edge itself. The tunnel itself stays, so
 * its handshakes keep retrying and restore protection when the edge is back.
 * A gateway box also masquerades forwarded LAN traffic into the tunnel.
 */
import { WireGuardDevice } from "../wireguard/mod.ts";
import { parseKey, type Peer } from "../wireguard/mod.ts";
import { openTun } from "../tun/open.ts";
import type { TunDevice } from "../tun/mod.ts";
import { UdpSocket } from "../net/udp.ts";
import { TlsStream } from "../net/tls_stream.ts";
import { IpNetConfig, type NetConfig } from "../net/iface.ts";
import { endpoint, formatHostPort } from "../net/endpoint.ts";
import { Pump, type TapFn } from "../dataplane/pump.ts";
import { TransportFallback } from "../dataplane/fallback.ts";
import { type SplitDns, startSplitDns, startStubResolver, type StubResolver } from "./dns/mod.ts";
import { isPrivateOrLoopback } from "../policy/cidr.ts";
import { dnsProbe, LivenessMonitor } from "./liveness.ts";
import type { TunnelConfig, TunnelEvent, TunnelPort, TunnelStatus } from "./tunnel_port.ts";
import { systemClock } from "../clock.ts";
import { InputError } from "../errors.ts";
import { nftApply } from "../net/nft.ts";
import { logger } from "../log.ts";

const log = logger("connector.tunnel");

/** nftables table owned by the connector (fail-closed and gateway NAT). */
export const CONNECTOR_NFT_TABLE = "portcullis_conn";

/** Settings of the connector data plane that do not come from policy. */
export interface ConnectorTunnelOptions {
  /** TUN interface name (default "pcc0"). */
  tunName?: string;
  /** Forward and masquerade traffic from other hosts into the tunnel (gateway box). */
  gateway?: boolean;
  /**
   * Gateway box: also answer DNS for the LAN here ("192.168.50.1:53"), with
   * the same split (edge names through the tunnel). Only private and
   * loopback sources are served, so the WAN side is never an open resolver.
   */
  lanDnsListen?: { hostname: string; port: number };
  /** Manage /etc/resolv.conf for split DNS (default true). */
  manageDns?: boolean;
  /** resolv.conf path (tests). */
  resolvConfPath?: string;
  /**
   * Where the original resolv.conf is saved while we manage it. It belongs
   * in the connector's data directory: /etc may be shared by several
   * connectors (network namespaces bind-mount only resolv.conf itself).
   */
  resolvBackupPath?: string;
  /** How often to try UDP again while on TLS (default 30 s). */
  udpProbeMs?: number;
  /** Tunnel liveness probe interval (default 2000 ms). */
  livenessMs?: number;
  net?: () => NetConfig;
}

interface Active {
  cfg: TunnelConfig;
  tun: TunDevice;
  device: WireGuardDevice;
  peer: Peer;
  udp: UdpSocket;
  tls: TlsStream | null;
  pump: Pump;
  run: Promise<void>;
  fallback: TransportFallback | null;
  net: NetConfig;
  routesNet: NetConfig;
  dns: SplitDns | null;
  lanDns: StubResolver | null;
  liveness: LivenessMonitor | null;
  transport: "udp" | "tls" | null;
  /** Why the transport last changed (from the fallback selector). */
  transportReason: string | null;
}

/** The real connector data plane. */
export class ConnectorTunnel implements TunnelPort {
  readonly #o: ConnectorTunnelOptions;
  #a: Active | null = null;
  #listeners = new Set<(e: TunnelEvent) => void>();
  #failMode: "direct" | "blocked" | null = null;
  #nftActive = false;
  #tap: TapFn | null = null;
  #busy: Promise<void> = Promise.resolve();

  /** Creates an idle tunnel; bringUp() starts it. */
  constructor(opts: ConnectorTunnelOptions = {}) {
    this.#o = opts;
  }

  /** TUN interface name. */
  get interfaceName(): string {
    return this.#o.tunName ?? "pcc0";
  }

  /** Sets (or clears) the packet-capture tap; survives tunnel restarts. */
  setTap(fn: TapFn | null): void {
    this.#tap = fn;
    this.#a?.pump.setTap(fn);
  }

  /** Registers an event listener. */
  onEvent(fn: (e: TunnelEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #emit(e: TunnelEvent): void {
    for (const fn of this.#listeners) {
      try {
        fn(e);
      } catch (err) {
        log.warn("Tunnel event listener failed", { error: String(err) });
      }
    }
  }

  /** Serialises bringUp/tearDown/setFailMode so they never interleave. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#busy.then(fn);
    this.#busy = p.then(() => {}, () => {});
    return p;
  }

  /** Brings the tunnel up, or reconfigures routes and DNS when only those changed. */
  bringUp(cfg: TunnelConfig): Promise<void> {
    return this.#serial(async () => {
      const a = this.#a;
      if (a && sameCore(a.cfg, cfg)) {
        await this.#applyRoutes(a, cfg);
        await this.#applyDns(a, cfg);
        a.cfg = cfg;
        return;
      }
      if (a) await this.#down("reconfigured");
      await this.#up(cfg);
    });
  }

  /** Tears everything down; idempotent. */
  tearDown(): Promise<void> {
    return this.#serial(() => this.#down("stopped"));
  }

  /** Current tunnel status, or null when down. */
  status(): TunnelStatus | null {
    const a = this.#a;
    if (!a) return null;
    const s = a.device.stats()[0];
    return {
      transport: a.transport,
      lastHandshake: s?.lastHandshakeWallMs ?? null,
      rxBytes: s?.rxBytes ?? 0,
      txBytes: s?.txBytes ?? 0,
      endpoint: s?.endpoint
        ? `${s.endpoint.transport}:${formatHostPort(s.endpoint.address, s.endpoint.port)}`
        : null,
    };
  }

  /** Applies a fail mode (or clears it). */
  setFailMode(mode: "direct" | "blocked" | null): Promise<void> {
    return this.#serial(async () => {
      if (mode === this.#failMode) return;
      const hadRoutes = this.#failMode === null;
      this.#failMode = mode;
      const a = this.#a;
      const routesChange = a !== null && hadRoutes !== (mode === null);
      // Order matters: changing routes takes a moment in which traffic would
      // leave outside the tunnel. Entering "blocked", the firewall goes up
      // first; leaving it, the routes come back before the firewall goes.
      if (mode === "blocked") {
        await this.#applyNft();
        if (routesChange) await this.#applyRoutes(a, a.cfg);
      } else {
        if (routesChange) await this.#applyRoutes(a, a.cfg);
        await this.#applyNft();
      }
      log.info(mode ? `Fail mode: ${mode}` : "Fail mode cleared");
    });
  }

  async #up(cfg: TunnelConfig): Promise<void> {
    const udpEp = cfg.endpoints.find((e) => e.transport === "udp");
    const tlsEp = cfg.endpoints.find((e) => e.transport === "tls");
    if (!udpEp && !tlsEp) {
      throw new InputError("no_endpoint", "Cannot bring the tunnel up: the edge gave no endpoint");
    }
    const net = this.#o.net?.() ?? new IpNetConfig();
    const routesNet = this.#o.net?.() ?? new IpNetConfig();
    const tun = openTun({ name: this.interfaceName, mtu: cfg.mtu });
    let udp: UdpSocket | null = null;
    let tls: TlsStream | null = null;
    const box: { pump: Pump | null; a: Active | null } = { pump: null, a: null };
    try {
      const device = new WireGuardDevice({
        privateKey: parseKey(cfg.privateKey, "device private key"),
        clock: systemClock,
        mtu: cfg.mtu,
        onEvent: (e) => {
          const a = box.a;
          if (!a) return;
          if (e.type === "handshake_complete") {
            a.fallback?.onHandshakeComplete();
            const t = a.peer.endpoint?.transport ?? "udp";
            if (t !== a.transport) {
              a.transport = t;
              const reason = a.transportReason ?? undefined;
              this.#emit({ type: "up", transport: t, reason });
            }
          } else if (e.type === "handshake_failed") {
            a.transport = null;
            this.#emit({ type: "handshake_timeout" });
          }
        },
      });
      const edgeKey = parseKey(cfg.edgePublicKey, "edge public key");
      const udpTarget = udpEp ? await resolve(udpEp.host, udpEp.port) : null;
      const peer = device.setPeer({
        publicKey: edgeKey,
        allowedIps: ["0.0.0.0/0", "::/0"],
        endpoint: udpTarget ?? undefined,
        persistentKeepaliveSec: 25,
      });
      udp = UdpSocket.bind({ port: 0 });
      if (cfg.tlsFallback && tlsEp) {
        tls = new TlsStream({ wake: () => box.pump?.kick() });
      }
      const pump = new Pump({ tun, device, udp, tls, tap: this.#tap });
      box.pump = pump;
      const prefix = cfg.network.split("/")[1] ?? "32";
      await net.addAddress(tun.name, `${cfg.address}/${prefix}`);
      await net.setLink(tun.name, { mtu: cfg.mtu, up: true });
      const a: Active = {
        cfg,
        tun,
        device,
        peer,
        udp,
        tls,
        pump,
        run: pump.run(),
        fallback: null,
        net,
        routesNet,
        dns: null,
        lanDns: null,
        liveness: null,
        transport: null,
        transportReason: null,
      };
      box.a = a;
      this.#a = a;
      if (udpTarget) {
        a.fallback = new TransportFallback({
          device,
          peer,
          udp: udpTarget,
          tls: tls && tlsEp
            ? {
              hostname: tlsEp.host,
              port: tlsEp.port,
              caCerts: cfg.caPem ? [cfg.caPem] : undefined,
            }
            : null,
          tlsStream: tls,
          udpTimeoutMs: cfg.udpTimeoutSec * 1000,
          probeIntervalMs: this.#o.udpProbeMs,
          kick: () => pump.kick(),
          onChange: (t, reason) => {
            log.info(`Tunnel transport is now ${t.toUpperCase()}`, { reason });
            a.transportReason = reason;
          },
        });
        a.fallback.start();
      } else if (tls && tlsEp) {
        // TLS only: dial straight away.
        const ep = await tls.dial({
          hostname: tlsEp.host,
          port: tlsEp.port,
          caCerts: cfg.caPem ? [cfg.caPem] : undefined,
        });
        peer.endpoint = ep;
        device.initiateHandshake(peer, undefined, true);
        pump.kick();
      }
      await this.#applyRoutes(a, cfg);
      await this.#applyDns(a, cfg);
      await this.#applyNft();
      a.liveness = new LivenessMonitor({
        probe: dnsProbe(cfg.edgeAddress),
        intervalMs: this.#o.livenessMs,
        // One miss already starts a handshake, so the UDP timeout (and with it
        // the TLS fallback) starts counting as early as the loss is seen.
        onMiss: (n) => {
          if (n === 1 && device.initiateHandshake(peer)) pump.kick();
        },
        onDead: () => {
          // The edge lost our session (restart) or the path died: handshake again.
          if (device.initiateHandshake(peer)) pump.kick();
          if (a.transport !== null && this.#a === a) {
            // Tell the engine: the tunnel is no longer carrying traffic. The
            // next completed handshake reports "up" again.
            a.transport = null;
            this.#emit({
              type: "down",
              reason: "The edge stopped answering through the tunnel",
              edgeSilent: true,
            });
          }
        },
        onAlive: () => {
          // Answers again without a new handshake (the path came back, e.g.
          // after a roam): the session is fine, so the tunnel is up again.
          if (a.transport === null && this.#a === a && a.peer.endpoint) {
            a.transport = a.peer.endpoint.transport;
            this.#emit({ type: "up", transport: a.transport, reason: "the edge answers again" });
          }
        },
      });
      a.liveness.start();
      log.info("Tunnel configured", {
        interface: tun.name,
        address: cfg.address,
        routes: cfg.routes.tunnel4.length + cfg.routes.tunnel6.length,
      });
    } catch (e) {
      if (this.#a) await this.#down("failed to start");
      else {
        udp?.close();
        await tls?.close();
        tun.close();
        await net.undoAll().catch(() => {});
      }
      throw e;
    }
  }

  async #applyRoutes(a: Active, cfg: TunnelConfig): Promise<void> {
    // Routes are rebuilt from scratch: cheap, and never leaves a stale one behind.
    await a.routesNet.undoAll().catch((e) =>
      log.warn("Cannot remove routes", { error: e.message })
    );
    if (this.#failMode !== null) return;
    for (const r of [...cfg.routes.tunnel4, ...cfg.routes.tunnel6]) {
      try {
        await a.routesNet.addRoute(r, { dev: a.tun.name });
      } catch (e) {
        log.warn(`Cannot add route ${r}`, { error: (e as Error).message });
      }
    }
  }

  async #applyDns(a: Active, cfg: TunnelConfig): Promise<void> {
    await this.#applySplitDns(a, cfg);
    await this.#applyLanDns(a, cfg);
  }

  async #applySplitDns(a: Active, cfg: TunnelConfig): Promise<void> {
    if (this.#o.manageDns === false) return;
    if (!cfg.dns) {
      if (a.dns) await a.dns.stop();
      a.dns = null;
      return;
    }
    if (a.dns) {
      a.dns.setEdge(cfg.dns.domains, [cfg.dns.server]);
      return;
    }
    try {
      a.dns = await startSplitDns({
        edgeDomains: cfg.dns.domains,
        edgeServers: [cfg.dns.server],
        resolvConfPath: this.#o.resolvConfPath,
        backupPath: this.#o.resolvBackupPath,
      });
    } catch (e) {
      log.warn("Cannot start split DNS; edge names will not resolve", {
        error: (e as Error).message,
      });
    }
  }

  async #applyLanDns(a: Active, cfg: TunnelConfig): Promise<void> {
    const listen = this.#o.lanDnsListen;
    if (!listen || !this.#o.gateway) return;
    const edgeDomains = cfg.dns?.domains ?? [];
    const edgeServers = cfg.dns ? [cfg.dns.server] : [];
    if (a.lanDns) {
      a.lanDns.setRoutes({ edgeDomains, edgeServers, upstream: a.dns?.upstream ?? [] });
      return;
    }
    try {
      const upstream = a.dns?.upstream ??
        (await import("./dns/resolv_conf.ts").then((m) =>
          new m.ResolvConfManager({ path: this.#o.resolvConfPath }).read()
        )).nameservers;
      a.lanDns = await startStubResolver({
        edgeDomains,
        edgeServers,
        upstream,
        listen,
        allow: isPrivateOrLoopback,
      });
    } catch (e) {
      log.warn("Cannot serve DNS to the LAN", { error: (e as Error).message });
    }
  }

  async #applyNft(): Promise<void> {
    const a = this.#a;
    const wantBlock = this.#failMode === "blocked";
    const wantGateway = this.#o.gateway === true && a !== null;
    if (!wantBlock && !wantGateway) {
      if (this.#nftActive) {
        await nftApply(
          `table inet ${CONNECTOR_NFT_TABLE}\ndelete table inet ${CONNECTOR_NFT_TABLE}\n`,
        );
        this.#nftActive = false;
      }
      return;
    }
    const lines = [
      `table inet ${CONNECTOR_NFT_TABLE}`,
      `delete table inet ${CONNECTOR_NFT_TABLE}`,
      `table inet ${CONNECTOR_NFT_TABLE} {`,
    ];
    if (wantGateway) {
      await Deno.writeTextFile("/proc/sys/net/ipv4/ip_forward", "1");
      lines.push(
        " chain postrouting {",
        "  type nat hook postrouting priority srcnat; policy accept;",
        `  oifname "${a!.tun.name}" ip saddr != ${a!.cfg.address} masquerade`,
        " }",
      );
    }
    if (wantBlock) {
      const edges = (a?.cfg.endpoints ?? []).map((e) => e.host).filter((h) => /^[\d.]+$/.test(h));
      const allow = [
        '  oifname "lo" accept',
        "  udp dport { 53, 67, 68 } accept",
        "  tcp dport 53 accept",
        ...(edges.length ? [`  ip daddr { ${edges.join(", ")} } accept`] : []),
      ];
      lines.push(
        " chain output {",
        "  type filter hook output priority 0; policy drop;",
        ...allow,
        " }",
        " chain forward {",
        "  type filter hook forward priority 0; policy drop;",
        "  udp dport { 53, 67, 68 } accept",
        " }",
      );
    }
    lines.push("}");
    await nftApply(lines.join("\n") + "\n");
    this.#nftActive = true;
  }

  async #down(reason: string): Promise<void> {
    const a = this.#a;
    if (!a) {
      if (this.#nftActive) await this.#applyNft().catch(() => {});
      return;
    }
    this.#a = null;
    a.liveness?.stop();
    a.fallback?.stop();
    await a.pump.stop();
    await a.run;
    if (a.dns) await a.dns.stop().catch(() => {});
    if (a.lanDns) await a.lanDns.close().catch(() => {});
    await a.routesNet.undoAll().catch(() => {});
    a.device.close();
    a.udp.close();
    await a.tls?.close();
    a.tun.close();
    await a.net.undoAll().catch(() => {});
    await this.#applyNft().catch((e) => log.warn("Cannot update nftables", { error: e.message }));
    if (a.transport) this.#emit({ type: "down", reason });
    log.info("Tunnel down", { reason });
  }
}

/** True when two configs need the same TUN, keys and edge (only routes/DNS differ). */
function sameCore(a: TunnelConfig, b: TunnelConfig): boolean {
  return a.address === b.address && a.network === b.network && a.mtu === b.mtu &&
    a.edgePublicKey === b.edgePublicKey && a.privateKey === b.privateKey &&
    JSON.stringify(a.endpoints) === JSON.stringify(b.endpoints) &&
    a.tlsFallback === b.tlsFallback && a.udpTimeoutSec === b.udpTimeoutSec;
}

async function resolve(host: string, port: number) {
  if (/^[\d.]+$/.test(host) || host.includes(":")) return endpoint("udp", host, port);
  const addrs = await Deno.resolveDns(host, "A").catch(() => [] as string[]);
  if (!addrs.length) {
    throw new InputError("unresolvable_endpoint", `Cannot resolve edge host "${host}"`);
  }
  return endpoint("udp", addrs[0], port);
}
