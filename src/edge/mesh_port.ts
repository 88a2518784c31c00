/**
 * The edge mesh, data side (the control side is src/fleet/mesh.ts): one
 * WireGuard peer per other healthy edge, in this edge's own tunnel device,
 * keyed by that edge's registered tunnel key. A mesh peer routes nothing by
 * allowed IPs — every device keeps its own /32 as its peer's allowed IP here
 * — but carries transit addresses: the devices located at that edge now,
 * which are both where `peerForDestination` sends client-to-client traffic
 * and the only inner sources accepted from it (WireGuardDevice.setTransitIps).
 *
 *   device X ─▶ this edge: access decision (enforcer) ─▶ mesh peer of B
 *   mesh peer of B ─▶ this edge: `transit` hook ─▶ device Y (no re-decision:
 *     B decided, and only B's registered key with X's located address gets here)
 *
 * A mesh peer is tagged (`Peer.userData` a MeshTag) so the enforcer's device
 * path never mistakes it for a device, and a device key that equals an
 * edge's is refused both ways.
 */
import { endpoint } from "../net/endpoint.ts";
import { logger } from "../log.ts";
import type { MeshDataPlane, MeshPeerSpec } from "../fleet/mesh.ts";
import { decodeKey, type Peer, type WireGuardDevice } from "../wireguard/mod.ts";
import { parseIpv4Text } from "../packet/addr.ts";

const log = logger("edge.mesh");

/** Keepalive of mesh sessions (s): keeps them up and their handshake fresh for the console. */
export const MESH_KEEPALIVE_SEC = 25;

/** What a mesh peer's `userData` holds. */
export class MeshTag {
  constructor(readonly edgeId: string, readonly name: string) {}
}

/** True when `peer` is another edge (a mesh peer), not a device. */
export function isMeshPeer(peer: Peer): boolean {
  return peer.userData instanceof MeshTag;
}

/** A mesh peer as the admin sees it. */
export interface MeshPeerView {
  edgeId: string;
  name: string;
  publicKey: string;
  endpoint: string | null;
  /** Wall-clock ms of the last completed handshake, or null. */
  lastHandshake: number | null;
  rxBytes: number;
  txBytes: number;
  /** Tunnel addresses of the devices routed to it. */
  addresses: string[];
}

/** The parts of the tunnel the mesh uses. */
export interface MeshTunnel {
  readonly device: WireGuardDevice;
  /** Wakes the pump (a new peer's keepalive starts its handshake). */
  kick(): void;
}

/** Mesh peers in the edge's tunnel device. */
export class TunnelMeshPort implements MeshDataPlane {
  #t: MeshTunnel;
  /** Edge id → its peer. */
  #peers = new Map<string, { peer: Peer; spec: MeshPeerSpec }>();
  /** Destination (IPv4 as u32) → mesh peer. */
  #routes = new Map<number, Peer>();

  constructor(tunnel: MeshTunnel) {
    this.#t = tunnel;
  }

  /** Adds or updates edge `spec.edgeId`'s peer and the devices routed to it. */
  setMeshPeer(spec: MeshPeerSpec): void {
    const key = decodeKey(spec.publicKey);
    if (!key) throw new Error(`Cannot add mesh peer "${spec.name}": bad public key`);
    const dev = this.#t.device;
    const existing = dev.getPeer(key);
    if (existing && !isMeshPeer(existing)) {
      throw new Error(`Cannot add mesh peer "${spec.name}": its key belongs to a device`);
    }
    const before = this.#peers.get(spec.edgeId);
    if (before && before.spec.publicKey !== spec.publicKey) this.removeMeshPeer(spec.edgeId);
    const known = this.#peers.get(spec.edgeId);
    const epChanged = !known ||
      JSON.stringify(known.spec.endpoint) !== JSON.stringify(spec.endpoint);
    const ep = spec.endpoint && epChanged ? meshEndpoint(spec.endpoint) : undefined;
    const peer = dev.setPeer({
      publicKey: key,
      allowedIps: [],
      // Only a new or moved registry endpoint resets it; otherwise the peer keeps where it roamed.
      ...(ep ? { endpoint: ep } : {}),
      persistentKeepaliveSec: MESH_KEEPALIVE_SEC,
    });
    peer.userData = new MeshTag(spec.edgeId, spec.name);
    dev.setTransitIps(peer, spec.addresses.map((a) => `${a}/32`));
    if (known) { for (const a of known.spec.addresses) this.#unroute(a, peer); }
    for (const a of spec.addresses) {
      const n = u32(a);
      if (n !== null) this.#routes.set(n, peer);
    }
    this.#peers.set(spec.edgeId, { peer, spec });
    if (!known) log.info("Mesh peer up", { edge: spec.name, endpoint: ep?.key ?? null });
    this.#t.kick();
  }

  /** Removes an edge's peer (its session keys are wiped). */
  removeMeshPeer(edgeId: string): void {
    const p = this.#peers.get(edgeId);
    if (!p) return;
    for (const a of p.spec.addresses) this.#unroute(a, p.peer);
    this.#t.device.removePeer(p.peer.publicKey);
    this.#peers.delete(edgeId);
    this.#t.kick();
  }

  /** The mesh peer a packet's destination (a device on another edge) is routed to, or null. */
  peerForDestination(buf: Uint8Array, off: number, len: number): Peer | null {
    if (this.#routes.size === 0 || len < 20 || buf[off] >> 4 !== 4) return null;
    const o = off + 16;
    const dst = ((buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3]) >>> 0;
    return this.#routes.get(dst) ?? null;
  }

  /** Every mesh peer with its session state. */
  views(): MeshPeerView[] {
    const out: MeshPeerView[] = [];
    for (const { peer, spec } of this.#peers.values()) {
      out.push({
        edgeId: spec.edgeId,
        name: spec.name,
        publicKey: spec.publicKey,
        endpoint: peer.endpoint ? `${peer.endpoint.address}:${peer.endpoint.port}` : null,
        lastHandshake: peer.lastHandshakeWallMs,
        rxBytes: peer.rxBytes,
        txBytes: peer.txBytes,
        addresses: [...spec.addresses],
      });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Public keys (base64) of the mesh peers. */
  publicKeys(): Set<string> {
    return new Set([...this.#peers.values()].map((p) => p.spec.publicKey));
  }

  /** Removes every mesh peer. */
  close(): void {
    for (const id of [...this.#peers.keys()]) this.removeMeshPeer(id);
  }

  #unroute(address: string, peer: Peer): void {
    const n = u32(address);
    if (n !== null && this.#routes.get(n) === peer) this.#routes.delete(n);
  }
}

function u32(address: string): number | null {
  const b = parseIpv4Text(address);
  return b ? ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0 : null;
}

/** A registry endpoint as a UDP endpoint (EdgeMesh resolved any name before; a name here is refused). */
function meshEndpoint(e: { host: string; port: number }) {
  const host = e.host.replace(/^\[|\]$/g, "");
  const isIp = parseIpv4Text(host) !== null || host.includes(":");
  if (!isIp) {
    log.warn("Mesh endpoint is not an address; waiting for the other edge to reach us", {
      host: host.slice(0, 253),
    });
    return undefined;
  }
  return endpoint("udp", host, e.port);
}
