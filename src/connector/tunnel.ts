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
 * "blocked" also works with no tunnel at all (strict enforcement before
 * enrolment and after logout): the edge's addresses then come from the
 * caller's allow-list, and the block outlives any tunnel teardown until the
 * fail mode is cleared. A gateway box also masquerades forwarded LAN
 * traffic into the tunnel.
 */
import { WireGuardDevice } from "../wireguard/mod.ts";
import { parseKey, type Peer } from "../wireguard/mod.ts";
import { openTun } from "../tun/open.ts";
import type { TunDevice } from "../tun/mod.ts";
import { UdpSocket } from "../net/udp.ts";
import { TlsStream } from "../net/tls_stream.ts";
import { IpNetConfig, type NetConfig } from "../net/iface.ts";
import { endpoint, formatHostPort } from "../net/endpoint.ts";
import { serveManagedUapi, type UapiServer } from "../dataplane/uapi.ts";
import { Pump, type TapFn } from "../dataplane/pump.ts";
import { offloadFromEnv, type OffloadRequest } from "../dataplane/offload.ts";
import { TransportFallback } from "../dataplane/fallback.ts";
import {
  ResolvConfManager,
  type SplitDns,
  startSplitDns,
  startStubResolver,
  type StubResolver,
} from "./dns/mod.ts";
import {
  canonicalIp,
  isPrivateOrLoopback,
  parsePrefix,
  prefixContains,
  subtract,
  tryParsePrefix,
} from "../policy/cidr.ts";
import { answerHostRoutes } from "../policy/routes.ts";
import { dnsProbe, LivenessMonitor } from "./liveness.ts";
import type {
  FailModeOptions,
  TunnelConfig,
  TunnelEvent,
  TunnelPort,
  TunnelStatus,
} from "./tunnel_port.ts";
import { systemClock } from "../clock.ts";
import { InputError } from "../errors.ts";
import { nftApply, nftListTable, nftReset } from "../net/nft.ts";
import { readLinkState } from "../net/link_state.ts";
import { check, type RepairCheck } from "./repair.ts";
import { repairLink, repairNft, repairResolvConf, repairRoutes } from "./tunnel_repair.ts";
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
  /** UAPI socket directory (default /var/run/wireguard). */
  uapiDir?: string;
  /** Kernel offloads to ask for (default: PORTCULLIS_OFFLOAD, else all; each falls back alone). */
  offload?: OffloadRequest;
}

/** Most host routes kept for edge DNS answers outside the profile's routes. */
const MAX_ANSWER_ROUTES = 4096;

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
  /** Route prefixes currently installed through the tunnel (see syncRoutes). */
  routes: Set<string>;
  /** Host routes for addresses the edge DNS answered outside the profile's routes (bounded). */
  answered: Set<string>;
  dns: SplitDns | null;
  lanDns: StubResolver | null;
  liveness: LivenessMonitor | null;
  transport: "udp" | "tls" | null;
  /** Why the transport last changed (from the fallback selector). */
  transportReason: string | null;
  /** True once routes, DNS and nftables are applied: only then is the tunnel "up". */
  configured: boolean;
  /** The WireGuard UAPI socket (`wg show`), when it could be served, and its copy of the key. */
  uapi: UapiServer | null;
  uapiKey: Uint8Array;
}

/**
 * Brings the tunnel routes from `installed` to `wanted` as a diff: the missing
 * prefixes are added first (one `ip -batch`), then the stale ones removed, so
 * a prefix that stays is never touched and traffic never leaves outside the
 * tunnel while a policy changes. `installed` is updated in place.
 */
export async function syncRoutes(
  net: NetConfig,
  installed: Set<string>,
  wanted: readonly string[],
  dev: string,
): Promise<void> {
  const want = new Set(wanted);
  const add = [...want].filter((d) => !installed.has(d));
  if (add.length) {
    const failed = await net.addRoutes(add.map((dest) => ({ dest, opts: { dev } })));
    for (const f of failed) log.warn(`Cannot add route ${f}`);
    // addRoutes reports a failure as "<dest>: <error>".
    for (const d of add) if (!failed.some((f) => f.startsWith(`${d}: `))) installed.add(d);
  }
  const stale = [...installed].filter((d) => !want.has(d));
  if (stale.length) {
    for (const d of stale) installed.delete(d);
    const failed = await net.removeRoutes(stale.map((dest) => ({ dest, opts: { dev } })));
    for (const f of failed) log.warn(`Cannot remove route ${f}`);
  }
}

/** The real connector data plane. */
export class ConnectorTunnel implements TunnelPort {
  readonly #o: ConnectorTunnelOptions;
  #a: Active | null = null;
  #listeners = new Set<(e: TunnelEvent) => void>();
  #failMode: "direct" | "blocked" | null = null;
  /** Edge addresses the caller keeps reachable while blocked (canonical, sorted). */
  #allow: string[] = [];
  #nftActive = false;
  /** The table as `nft list` printed it right after we applied it (what Repair compares with). */
  #nftListing: string | null = null;
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

  /** Counters and offload states as `wg show`'s Portcullis stats print them; null when down. */
  dataplaneReport(): Record<string, number | string> | null {
    return this.#a?.pump.report() ?? null;
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

  /** Applies a fail mode (or clears it); "blocked" keeps `opts.allow` (edge addresses) reachable. */
  setFailMode(mode: "direct" | "blocked" | null, opts: FailModeOptions = {}): Promise<void> {
    return this.#serial(async () => {
      const allow = mode === "blocked" ? canonicalList(opts.allow ?? []) : [];
      if (mode === this.#failMode) {
        if (allow.join() === this.#allow.join()) return;
        this.#allow = allow;
        await this.#applyNft();
        log.info("Fail mode: blocked; allow-list updated", { allow });
        return;
      }
      const hadRoutes = this.#failMode === null;
      this.#failMode = mode;
      this.#allow = allow;
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
      log.info(
        mode ? `Fail mode: ${mode}` : "Fail mode cleared",
        mode === "blocked" ? { allow } : {},
      );
    });
  }

  /**
   * Removes a table a previous run left behind (it was killed before it
   * could clean up), so a new run starts from an open network.
   */
  removeStaleRules(): Promise<void> {
    return this.#serial(async () => {
      if (this.#nftActive) return;
      await nftApply(connectorNftScript({ block: null, gateway: null }))
        .catch((e) => log.warn("Cannot remove stale nftables rules", { error: e.message }));
    });
  }

  /**
   * Puts resolv.conf back when a previous run was killed while it pointed
   * at our stub (its backup is still in the data directory). Runs at start,
   * before enrolment or any tunnel, so a crash costs the host its names only
   * until the next start (under the systemd unit: a second), whether or not
   * the edge can be reached then. Returns true when something was restored.
   */
  recoverDns(): Promise<boolean> {
    return this.#serial(async () => {
      if (this.#a?.dns) return false;
      const rc = new ResolvConfManager({
        path: this.#o.resolvConfPath,
        backupPath: this.#o.resolvBackupPath,
      });
      return await rc.recover().catch((e) => {
        log.warn("Cannot restore resolv.conf from the backup", { error: (e as Error).message });
        return false;
      });
    });
  }

  /**
   * "Repair app", the data plane's part: checks the TUN device, the tunnel
   * routes, the nftables table and resolv.conf against what was installed
   * and puts back what is missing (src/connector/tunnel_repair.ts). A TUN
   * device that vanished takes the whole tunnel down and up again.
   */
  repair(): Promise<RepairCheck[]> {
    return this.#serial(async () => {
      const out: RepairCheck[] = [];
      const guard = async (id: RepairCheck["id"], fn: () => Promise<RepairCheck>) => {
        try {
          out.push(await fn());
        } catch (e) {
          out.push(check(id, "failed", "check_failed", { error: (e as Error).message }));
        }
      };
      let a = this.#a;
      if (!a) {
        out.push(check("tun", "skipped", "tun_not_up"));
        out.push(check("routes", "skipped", "routes_not_up"));
      } else {
        const dev = a.tun.name;
        const address = `${a.cfg.address}/${a.cfg.network.split("/")[1] ?? "32"}`;
        let state = await readLinkState(dev);
        if (!state.exists) {
          const cfg = a.cfg;
          await guard("tun", async () => {
            await this.#down("repair: the interface was gone");
            await this.#up(cfg);
            return check("tun", "repaired", "tun_rebuilt", { dev });
          });
        } else {
          await guard("tun", () => repairLink(state, dev, address, a!.net));
        }
        a = this.#a;
        if (a) {
          const b = a;
          state = await readLinkState(dev);
          await guard(
            "routes",
            () => repairRoutes(state, dev, b.routes, b.routesNet, this.#failMode),
          );
        } else out.push(check("routes", "failed", "routes_rebuild_failed"));
      }
      await guard("nftables", () =>
        repairNft({
          table: CONNECTOR_NFT_TABLE,
          needed: this.#nftActive,
          expected: this.#nftListing,
          list: () => nftListTable("inet", CONNECTOR_NFT_TABLE),
          reapply: () => this.#applyNft(),
          remove: () => nftApply(connectorNftScript({ block: null, gateway: null })),
        }));
      await guard("resolv_conf", () => this.#repairDns());
      return out;
    });
  }

  async #repairDns(): Promise<RepairCheck> {
    if (this.#o.manageDns === false) {
      return check("resolv_conf", "skipped", "dns_not_managed");
    }
    const a = this.#a;
    if (a?.dns) {
      const dns = a.dns;
      return repairResolvConf(dns, async () => {
        await dns.stop().catch(() => {});
        a.dns = null;
        await this.#applySplitDns(a, a.cfg);
        return a.dns !== null;
      });
    }
    const rc = new ResolvConfManager({
      path: this.#o.resolvConfPath,
      backupPath: this.#o.resolvBackupPath,
    });
    if (await rc.recover()) {
      return check("resolv_conf", "repaired", "dns_restored", { path: rc.path });
    }
    if (a?.cfg.dns) {
      await this.#applySplitDns(a, a.cfg);
      return a.dns
        ? check("resolv_conf", "repaired", "dns_started")
        : check("resolv_conf", "failed", "dns_start_failed");
    }
    return check("resolv_conf", "ok", "dns_unused", { path: rc.path });
  }

  /** Stops everything this data plane set up: tunnel, routes, DNS and any traffic block. */
  async close(): Promise<void> {
    await this.tearDown();
    await this.setFailMode(null);
  }

  async #up(cfg: TunnelConfig): Promise<void> {
    const udpEp = cfg.endpoints.find((e) => e.transport === "udp");
    const tlsEp = cfg.endpoints.find((e) => e.transport === "tls");
    if (!udpEp && !tlsEp) {
      throw new InputError("no_endpoint", "Cannot bring the tunnel up: the edge gave no endpoint");
    }
    const net = this.#o.net?.() ?? new IpNetConfig();
    const routesNet = this.#o.net?.() ?? new IpNetConfig();
    const offload = this.#o.offload ?? offloadFromEnv();
    const tun = openTun({ name: this.interfaceName, mtu: cfg.mtu, offload: offload.tun });
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
              // Before routes, DNS and nftables are in place the handshake
              // alone is not "connected": names would not resolve yet.
              if (a.configured) this.#emit({ type: "up", transport: t, reason });
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
      udp = UdpSocket.bind({ port: 0, gso: offload.udp.gso, gro: offload.udp.gro });
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
        configured: false,
        fallback: null,
        net,
        routesNet,
        routes: new Set(),
        answered: new Set(),
        dns: null,
        lanDns: null,
        liveness: null,
        transport: null,
        transportReason: null,
        uapi: null,
        uapiKey: parseKey(cfg.privateKey, "device private key"),
      };
      box.a = a;
      this.#a = a;
      // `wg show pcc0` (wireguard-tools) reads the tunnel; the policy configures it.
      a.uapi = await serveManagedUapi(
        tun.name,
        device,
        () => ({ privateKey: a.uapiKey, listenPort: a.udp.port }),
        {
          counters: () => pump.report(),
          configuredBy: "the connector's policy",
          dir: this.#o.uapiDir,
        },
      );
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
          giveUpMs: tls ? 0 : (cfg.giveUpSec ?? 0) * 1000,
          onGiveUp: (waited) => {
            if (this.#a !== a) return;
            // The next completed handshake reports "up" again.
            a.transport = null;
            this.#emit({
              type: "handshake_timeout",
              reason: `UDP handshakes to ${
                formatHostPort(udpTarget.address, udpTarget.port)
              } went unanswered for ${Math.round(waited / 1000)} s and TLS fallback is ${
                cfg.tlsFallback ? "not available" : "off"
              }`,
            });
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
        // the TLS fallback) starts counting as early as the loss is seen. It is
        // forced past the one-per-REKEY_TIMEOUT limit: a handshake completed a
        // moment ago (a rekey, a roam) would otherwise hold detection back to
        // the second miss and push the fallback 5 s later.
        onMiss: (n) => {
          if (n === 1 && device.initiateHandshake(peer, undefined, peer.handshake === null)) {
            pump.kick();
          }
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
          a.fallback?.onPathAlive();
          // Answers again without a new handshake (the path came back, e.g.
          // after a roam): the session is fine, so the tunnel is up again.
          if (a.transport === null && this.#a === a && a.peer.endpoint) {
            a.transport = a.peer.endpoint.transport;
            this.#emit({ type: "up", transport: a.transport, reason: "the edge answers again" });
          }
        },
      });
      a.liveness.start();
      a.configured = true;
      // A handshake that completed while we configured is reported now.
      if (a.transport) {
        this.#emit({
          type: "up",
          transport: a.transport,
          reason: a.transportReason ?? undefined,
        });
      }
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
    const wanted = this.#failMode !== null
      ? []
      : [...cfg.routes.tunnel4, ...cfg.routes.tunnel6, ...a.answered];
    await syncRoutes(a.routesNet, a.routes, keepOut(wanted, a.peer.endpoint?.address), a.tun.name);
  }

  /**
   * The edge DNS answered these addresses (a private app's name): the ones
   * the profile's routes would send to the local network (an FQDN segment
   * inside 10/8 …) get a host route through the tunnel before the answer
   * reaches the application. They stay for the tunnel's life (at most
   * MAX_ANSWER_ROUTES); the edge still decides every flow to them.
   */
  #routeEdgeAnswer = (addresses: string[]): Promise<void> | void => {
    const a = this.#a;
    if (!a) return;
    const edge = a.cfg.endpoints.map((e) => e.host);
    const fresh = answerHostRoutes(a.cfg.routes, addresses, edge).filter((r) => !a.answered.has(r));
    if (!fresh.length) return;
    return this.#serial(async () => {
      if (this.#a !== a) return;
      for (const r of fresh) {
        if (a.answered.size >= MAX_ANSWER_ROUTES) {
          log.warn("Too many edge DNS answers outside the tunnel routes; not routing more", {
            address: r,
          });
          break;
        }
        a.answered.add(r);
      }
      await this.#applyRoutes(a, a.cfg);
    });
  };

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
        onEdgeAddresses: this.#routeEdgeAnswer,
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
        (await new ResolvConfManager({ path: this.#o.resolvConfPath }).read()).nameservers;
      a.lanDns = await startStubResolver({
        edgeDomains,
        edgeServers,
        upstream,
        listen,
        allow: isPrivateOrLoopback,
        onEdgeAddresses: this.#routeEdgeAnswer,
      });
    } catch (e) {
      log.warn("Cannot serve DNS to the LAN", { error: (e as Error).message });
    }
  }

  async #applyNft(): Promise<void> {
    const a = this.#a;
    const gateway = this.#o.gateway === true && a !== null
      ? { tun: a.tun.name, address: a.cfg.address }
      : null;
    const block = this.#failMode === "blocked"
      ? { allow: canonicalList([...(a?.cfg.endpoints ?? []).map((e) => e.host), ...this.#allow]) }
      : null;
    const script = connectorNftScript({ block, gateway });
    if (!block && !gateway) {
      if (this.#nftActive) {
        await nftApply(script);
        this.#nftActive = false;
        this.#nftListing = null;
      }
      return;
    }
    if (gateway) await Deno.writeTextFile("/proc/sys/net/ipv4/ip_forward", "1");
    await nftApply(script);
    this.#nftActive = true;
    this.#nftListing = await nftListTable("inet", CONNECTOR_NFT_TABLE).catch(() => null);
  }

  async #down(reason: string): Promise<void> {
    const a = this.#a;
    if (!a) {
      if (this.#nftActive) await this.#applyNft().catch(() => {});
      return;
    }
    this.#a = null;
    await a.uapi?.close();
    a.uapiKey.fill(0);
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

/**
 * The nftables script that brings the connector's table to the wanted state
 * in one atomic transaction; with neither `block` nor `gateway` it removes
 * the table (whether or not it exists). `block` drops everything leaving this host except loopback,
 * DNS, DHCP (v4 and v6), IPv6 neighbour discovery and the allowed edge
 * addresses, and everything forwarded except DNS and DHCP. `gateway`
 * masquerades forwarded LAN traffic into the tunnel. Only IP literals are
 * written into the script; anything else in `allow` is dropped.
 */
export function connectorNftScript(o: {
  block: { allow: string[] } | null;
  gateway: { tun: string; address: string } | null;
}): string {
  const reset = nftReset("inet", CONNECTOR_NFT_TABLE);
  if (!o.block && !o.gateway) return reset;
  const lines = [`${reset}table inet ${CONNECTOR_NFT_TABLE} {`];
  if (o.gateway) {
    const address = canonicalIp(o.gateway.address);
    if (!address || !/^[a-zA-Z0-9_.-]{1,15}$/.test(o.gateway.tun)) {
      throw new InputError(
        "bad_gateway",
        `Cannot masquerade into "${o.gateway.tun}" from "${o.gateway.address}": not an interface and address`,
      );
    }
    lines.push(
      " chain postrouting {",
      "  type nat hook postrouting priority srcnat; policy accept;",
      `  oifname "${o.gateway.tun}" ${
        address.includes(":") ? "ip6" : "ip"
      } saddr != ${address} masquerade`,
      " }",
    );
  }
  if (o.block) {
    const allow = canonicalList(o.block.allow);
    const v4 = allow.filter((x) => !x.includes(":"));
    const v6 = allow.filter((x) => x.includes(":"));
    lines.push(
      " chain output {",
      "  type filter hook output priority 0; policy drop;",
      '  oifname "lo" accept',
      "  udp dport { 53, 67, 68, 546, 547 } accept",
      "  tcp dport 53 accept",
      "  icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept",
      ...(v4.length ? [`  ip daddr { ${v4.join(", ")} } accept`] : []),
      ...(v6.length ? [`  ip6 daddr { ${v6.join(", ")} } accept`] : []),
      " }",
      " chain forward {",
      "  type filter hook forward priority 0; policy drop;",
      "  udp dport { 53, 67, 68, 546, 547 } accept",
      "  tcp dport 53 accept",
      " }",
    );
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}

/**
 * The routes without the address the tunnel itself sends to. The plan
 * already leaves the edge out (src/policy/routes.ts); this also covers an
 * edge named by DNS whose name now answers differently than when the
 * tunnel resolved it: its packets must never be routed into itself.
 */
export function keepOut(routes: string[], address: string | undefined): string[] {
  const ip = address ? canonicalIp(address.replace(/^\[|\]$/g, "")) : null;
  if (!ip) return routes;
  const v6 = ip.includes(":");
  const host = `${ip}/${v6 ? 128 : 32}`;
  // Only the family of the address changes: subtract() re-aggregates what it
  // is given, and the other family's /1 halves must stay halves, not a /0.
  const same = routes.filter((r) => r.includes(":") === v6);
  const hit = same.some((r) => {
    const p = tryParsePrefix(r);
    return p !== null && prefixContains(p, parsePrefix(host));
  });
  if (!hit) return routes;
  return [...routes.filter((r) => r.includes(":") !== v6), ...subtract(same, [host])];
}

/** IP literals of `hosts`, canonical, unique and sorted; names and junk are left out. */
function canonicalList(hosts: string[]): string[] {
  const out = new Set<string>();
  for (const h of hosts) {
    const ip = canonicalIp(h.replace(/^\[|\]$/g, ""));
    if (ip) out.add(ip);
  }
  return [...out].sort();
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
