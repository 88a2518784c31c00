/**
 * The edge's data plane: the real EdgeTunnelPort. One TUN device holds the
 * edge's tunnel address (first host of the device network); one WireGuard
 * device terminates every connector; UDP and TLS listeners on the tunnel
 * port are accepted at once, and each peer is answered on whichever
 * transport it last authenticated from (protocol roaming).
 *
 * Device traffic leaves through the kernel: IP forwarding on, and an
 * nftables table `portcullis_edge` that masquerades the device network on
 * every interface except the tunnel (so the internet sees the edge's
 * address). Access enforcement (src/edge/access) sits on the pump's route
 * and filter hooks: traffic between two devices it allows goes straight
 * from one device's tunnel into the other's, without the kernel. The same
 * WireGuard device holds the edge mesh (mesh_port.ts): a peer per other edge
 * of the fleet, so traffic to a device connected elsewhere goes from the
 * device's session straight into that edge's. Everything added is removed
 * on close().
 */
import { WireGuardDevice } from "../wireguard/mod.ts";
import { decodeKey, encodeKey } from "../wireguard/mod.ts";
import { openTun } from "../tun/open.ts";
import type { TunDevice } from "../tun/mod.ts";
import { UdpSocket } from "../net/udp.ts";
import { TlsStream } from "../net/tls_stream.ts";
import { IpNetConfig, type NetConfig } from "../net/iface.ts";
import { Pump } from "../dataplane/pump.ts";
import { serveManagedUapi, type UapiServer } from "../dataplane/uapi.ts";
import { offloadFromEnv, type OffloadRequest } from "../dataplane/offload.ts";
import type { EdgeTunnelPort, PeerStats, TunnelPeer } from "./dataplane_port.ts";
import { formatHostPort } from "../net/endpoint.ts";
import { type Clock, RoundClock, systemClock } from "../clock.ts";
import { InputError } from "../errors.ts";
import { nftApply, nftReset } from "../net/nft.ts";
import { logger } from "../log.ts";
import { isMeshPeer, MeshTag, TunnelMeshPort } from "./mesh_port.ts";

const log = logger("edge.tunnel");

/** Name of the nftables table the edge owns. */
export const NFT_TABLE = "portcullis_edge";

/** Settings of the edge data plane. */
export interface EdgeTunnelOptions {
  privateKey: Uint8Array;
  /** Device network, e.g. "100.64.0.0/16". */
  network: string;
  /** The edge's tunnel address, e.g. "100.64.0.1". */
  edgeAddress: string;
  /** UDP and TLS port. */
  port: number;
  /** Address to bind (default all). */
  bindAddress?: string;
  tls: { cert: string; key: string } | null;
  tunName?: string;
  mtu?: number;
  /** Masquerade device traffic leaving the edge (default true). */
  nat?: boolean;
  clock?: Clock;
  net?: NetConfig;
  /** UAPI socket directory (default /var/run/wireguard). */
  uapiDir?: string;
  /** Kernel offloads to ask for (default: PORTCULLIS_OFFLOAD, else all; each falls back alone). */
  offload?: OffloadRequest;
}

/** The real edge data plane. Create with `EdgeTunnel.start()`. */
export class EdgeTunnel implements EdgeTunnelPort {
  readonly device: WireGuardDevice;
  /** The data plane's clock, held still for each round (the enforcer reads it per packet). */
  readonly clock: Clock;
  readonly #tun: TunDevice;
  readonly #udp: UdpSocket;
  readonly #tls: TlsStream | null;
  readonly #pump: Pump;
  readonly #net: NetConfig;
  readonly #nat: boolean;
  readonly #hooks: TunnelHooks;
  /** The edge mesh's peers (other edges) in this tunnel. */
  readonly mesh: TunnelMeshPort;
  #run: Promise<void> | null = null;
  #uapi: UapiServer | null = null;
  #closed = false;

  private constructor(
    device: WireGuardDevice,
    tun: TunDevice,
    udp: UdpSocket,
    tls: TlsStream | null,
    net: NetConfig,
    nat: boolean,
    hooks: TunnelHooks,
    clock: RoundClock,
  ) {
    this.device = device;
    this.#hooks = hooks;
    this.#tun = tun;
    this.#udp = udp;
    this.#tls = tls;
    this.#net = net;
    this.#nat = nat;
    this.clock = clock;
    this.#pump = new Pump({ tun, device, udp, tls, clock });
    this.mesh = new TunnelMeshPort({ device, kick: () => this.#pump.kick() });
  }

  /** Calls `fn` with a device's id and wall ms each time it completes a handshake here (the mesh records where devices are). */
  onDeviceHandshake(fn: ((deviceId: string, at: number) => void) | null): void {
    this.#hooks.handshake = fn;
  }

  /** Opens the TUN, sockets and NAT, and starts the pump. */
  static async start(o: EdgeTunnelOptions): Promise<EdgeTunnel> {
    // Held still for each data-plane round (see RoundClock); the enforcer reads it too.
    const clock = new RoundClock(o.clock ?? systemClock);
    const mtu = o.mtu ?? 1420;
    const name = o.tunName ?? "pce0";
    const hooks: TunnelHooks = { handshake: null };
    const device = new WireGuardDevice({
      privateKey: o.privateKey,
      clock,
      mtu,
      onEvent: (e) => {
        const id = e.peer.userData;
        if (typeof id === "string" && e.type === "handshake_complete") {
          try {
            hooks.handshake?.(id, e.wallMs);
          } catch (err) {
            log.warn("Handshake hook failed", { error: String(err) });
          }
        }
        log.info(`Peer ${e.type.replace("_", " ")}`, {
          ...(id instanceof MeshTag ? { edge: id.name } : { device: id }),
          transport: e.peer.endpoint?.transport,
        });
      },
    });
    const offload = o.offload ?? offloadFromEnv();
    const tun = openTun({ name, mtu, offload: offload.tun });
    const net = o.net ?? new IpNetConfig();
    let udp: UdpSocket | null = null;
    let tls: TlsStream | null = null;
    try {
      udp = UdpSocket.bind({
        address: o.bindAddress ?? "::",
        port: o.port,
        gso: offload.udp.gso,
        gro: offload.udp.gro,
      });
      const prefixLen = o.network.split("/")[1];
      await net.addAddress(tun.name, `${o.edgeAddress}/${prefixLen}`);
      await net.setLink(tun.name, { mtu, up: true });
      const nat = o.nat ?? true;
      if (nat) {
        await Deno.writeTextFile("/proc/sys/net/ipv4/ip_forward", "1");
        await nftApply(
          nftReset("ip", NFT_TABLE) +
            `table ip ${NFT_TABLE} {\n` +
            ` chain postrouting {\n  type nat hook postrouting priority srcnat; policy accept;\n` +
            `  ip saddr ${o.network} oifname != "${tun.name}" masquerade\n }\n}\n`,
        );
      }
      // The pump does not exist yet; the TLS wake-up reaches it through this box.
      const box: { pump: Pump | null } = { pump: null };
      if (o.tls) {
        tls = new TlsStream({ wake: () => box.pump?.kick() });
        tls.listen({ hostname: o.bindAddress ?? "0.0.0.0", port: o.port, ...o.tls });
      }
      const started = new EdgeTunnel(device, tun, udp, tls, net, nat, hooks, clock);
      box.pump = started.#pump;
      started.#run = started.#pump.run();
      // `wg show pce0` (wireguard-tools) reads the peers; they come from the device registry.
      const port = udp.port;
      started.#uapi = await serveManagedUapi(
        tun.name,
        device,
        () => ({ privateKey: o.privateKey, listenPort: port }),
        {
          counters: () => started.pumpReport,
          configuredBy: "the edge's device registry",
          dir: o.uapiDir,
        },
      );
      log.info("Edge tunnel up", {
        interface: tun.name,
        address: o.edgeAddress,
        port: o.port,
        tls: tls !== null,
      });
      return started;
    } catch (e) {
      udp?.close();
      await tls?.close();
      tun.close();
      await net.undoAll().catch(() => {});
      throw e;
    }
  }

  /** Interface name of the edge's TUN device. */
  get interfaceName(): string {
    return this.#tun.name;
  }

  /** See Pump.poke (the web proxy has just written to a device's socket). */
  poke(): void {
    this.#pump.poke();
  }

  /** See Pump.setEventLoopBusy (the web proxy says when it has connections open). */
  setEventLoopBusy(busy: (() => boolean) | null): void {
    this.#pump.setEventLoopBusy(busy);
  }

  /** Pump counters (for /metrics and diagnostics). */
  get pumpStats(): Record<string, number> {
    return { ...this.#pump.stats };
  }

  /** Counters and offload states as `wg show`'s Portcullis stats print them (UAPI get=portcullis-stats). */
  get pumpReport(): Record<string, number | string> {
    return this.#pump.report();
  }

  /** The pump (for packet capture taps). */
  get pump(): Pump {
    return this.#pump;
  }

  /** Adds or updates a device's peer; its address is the only allowed source. */
  upsertPeer(p: TunnelPeer): void {
    const key = decodeKey(p.wgPublicKey);
    if (!key) {
      throw new InputError("invalid_key", `Cannot add peer: bad public key "${p.wgPublicKey}"`);
    }
    const existing = this.device.getPeer(key);
    if (existing && isMeshPeer(existing)) {
      throw new InputError(
        "invalid_key",
        `Cannot add peer "${p.id}": its public key is an edge's (a mesh peer)`,
      );
    }
    const peer = this.device.setPeer({ publicKey: key, allowedIps: [`${p.address}/32`] });
    peer.userData = p.id;
    this.#pump.kick();
  }

  /** Removes a peer: its keys are wiped, so its tunnel stops at the next packet. */
  removePeer(wgPublicKey: string): void {
    const key = decodeKey(wgPublicKey);
    if (!key) return;
    const peer = this.device.getPeer(key);
    if (peer && isMeshPeer(peer)) return; // an edge, not a device: the mesh owns it
    const ep = peer?.endpoint;
    this.device.removePeer(key);
    // A TLS-carried peer also loses its connection, so nothing lingers.
    if (ep?.transport === "tls") this.#tls?.disconnect(ep, "device removed");
    this.#pump.kick();
  }

  /** Whether a device with this key is a peer (an edge of the mesh is not a device). */
  hasPeer(wgPublicKey: string): boolean {
    const key = decodeKey(wgPublicKey);
    const peer = key ? this.device.getPeer(key) : undefined;
    return !!peer && !isMeshPeer(peer);
  }

  /** Live counters by public key. */
  peerStats(): Map<string, PeerStats> {
    const m = new Map<string, PeerStats>();
    const meshKeys = this.mesh.publicKeys();
    for (const s of this.device.stats()) {
      if (meshKeys.has(s.publicKey)) continue;
      m.set(s.publicKey, {
        rxBytes: s.rxBytes,
        txBytes: s.txBytes,
        lastHandshake: s.lastHandshakeWallMs,
        transport: s.endpoint?.transport ?? null,
        endpoint: s.endpoint ? formatHostPort(s.endpoint.address, s.endpoint.port) : null,
      });
    }
    return m;
  }

  /** Stops the pump and removes the TUN, sockets, addresses and NAT rules. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#uapi?.close();
    await this.#pump.stop();
    await this.#run;
    this.device.close();
    this.#udp.close();
    await this.#tls?.close();
    this.#tun.close();
    await this.#net.undoAll().catch((e) =>
      log.warn("Cannot undo network changes", { error: e.message })
    );
    if (this.#nat) {
      await nftApply(nftReset("ip", NFT_TABLE)).catch(() => {});
    }
  }
}

/** Set after start: who hears about device handshakes. */
interface TunnelHooks {
  handshake: ((deviceId: string, at: number) => void) | null;
}

/** For logs: a public key in the short form admins recognise. */
export function shortKey(k: Uint8Array): string {
  return encodeKey(k).slice(0, 8);
}
