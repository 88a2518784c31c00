/**
 * The edge mesh, control side: device-to-device traffic between two edges
 * goes edge to edge over WireGuard. Every edge terminates any device, so a
 * device's tunnel may end on A while the device it talks to is on B.
 *
 * Each edge records the devices whose handshake it just completed
 * (`device_locations`, migration 16: a claim only wins when newer, so after
 * a failover the edge the device moved to holds it) and says so on the
 * change feed. Each edge then keeps one mesh peer per other healthy edge of
 * the registry — that edge's own tunnel key and first UDP endpoint — whose
 * transit addresses are the tunnel addresses of the devices located there
 * now. The data plane (src/edge/mesh_port.ts) routes a client-to-client flow
 * whose destination lives on another edge to that edge's mesh peer, and
 * accepts from a mesh peer only sources located at that edge.
 *
 * Why the edge's tunnel key and port rather than a mesh key of its own: it
 * is already in the registry (the edge's id is derived from it) and
 * reachable at the endpoints the registry lists, and one WireGuard device
 * lets the pump move a packet from a device's session straight into the
 * mesh session and back, without the kernel in between and without a
 * second socket, key file or port to open in firewalls.
 */
import type { Clock } from "../clock.ts";
import { logger } from "../log.ts";
import type { TunnelEndpoint } from "../net/endpoint.ts";
import type { Store } from "../store/mod.ts";
import { EDGES_CHANNEL, healthOf, UNHEALTHY_AFTER_MS } from "./edge_registry.ts";

const log = logger("fleet.mesh");

/** The feed channel on which an edge says "device locations changed" (payload: its id). */
export const LOCATIONS_CHANNEL = "device_locations";
/** A location older than this is no live tunnel (WireGuard's reject-after-time). */
export const LOCATION_STALE_MS = 180_000;
/** How often the mesh is re-read even without a feed message. */
export const MESH_REFRESH_MS = 5_000;

/** One mesh peer as the data plane gets it. */
export interface MeshPeerSpec {
  edgeId: string;
  name: string;
  /** The edge's tunnel public key (base64), from the registry. */
  publicKey: string;
  /** Where to send handshakes first (its first UDP endpoint), or null. */
  endpoint: { host: string; port: number } | null;
  /** Tunnel addresses of the devices located at that edge now, sorted. */
  addresses: string[];
}

/** What the mesh needs from this edge's data plane. */
export interface MeshDataPlane {
  /** Adds or updates the mesh peer of edge `spec.edgeId`. */
  setMeshPeer(spec: MeshPeerSpec): void;
  /** Removes the mesh peer of an edge. */
  removeMeshPeer(edgeId: string): void;
}

/** Options of an EdgeMesh. */
export interface EdgeMeshOptions {
  store: Store;
  clock: Clock;
  /** This edge's registry id. */
  selfId: string;
  plane: MeshDataPlane;
  /** Tunnel addresses by device id (the leases). */
  addresses(): Map<string, string>;
  /** Told when some device's edge changed (cached flows must be routed again). */
  onMoved?: () => void;
  refreshMs?: number;
  staleMs?: number;
  unhealthyAfterMs?: number;
  /** Resolves an endpoint's host name to an address (default: the system resolver, A then AAAA). */
  resolve?: (host: string) => Promise<string | null>;
}

/** How long a resolved endpoint name is used before it is resolved again. */
const RESOLVE_TTL_MS = 60_000;

/** This edge's side of the mesh. */
export class EdgeMesh {
  #o: EdgeMeshOptions;
  /** Handshakes seen here not yet written: device id → wall ms. */
  #pending = new Map<string, number>();
  /** Device id → edge id, as last applied. */
  #where = new Map<string, string>();
  /** Edge id → JSON of the spec last given to the data plane. */
  #applied = new Map<string, string>();
  #flushTimer: ReturnType<typeof setTimeout> | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #unlisten: (() => void)[] = [];
  #running = false;
  /** Endpoint host name → its address and when it was resolved (null: being resolved, or failed). */
  #names = new Map<string, { address: string | null; at: number }>();

  constructor(opts: EdgeMeshOptions) {
    this.#o = opts;
  }

  /** Follows the feed and the registry until `stop`. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    const feed = this.#o.store.feed;
    const onOther = (p: string) => {
      if (p !== this.#o.selfId) this.refresh();
    };
    this.#unlisten.push(feed.listen(LOCATIONS_CHANNEL, onOther));
    this.#unlisten.push(feed.listen(EDGES_CHANNEL, () => this.refresh()));
    this.#unlisten.push(feed.onReconnect(() => this.refresh()));
    this.#timer = setInterval(() => this.refresh(), this.#o.refreshMs ?? MESH_REFRESH_MS);
    this.refresh();
  }

  /** A device completed a handshake with this edge at wall-clock `at` (written shortly, in a batch). */
  noteHandshake(deviceId: string, at: number): void {
    this.#pending.set(deviceId, at);
    if (this.#flushTimer === null && this.#running) {
      // Out of the pump's callback: the write and the re-read happen on the next turn.
      this.#flushTimer = setTimeout(() => {
        this.#flushTimer = null;
        this.flush();
      }, 0);
    }
  }

  /**
   * Writes pending claims; announces and re-reads when one moved a device
   * here. A device already located here (as last read) only refreshes its
   * handshake time, which changes no edge's mesh: every device rekeys every
   * two minutes, and when each rekey was announced, every edge of the fleet
   * re-read all locations for it (2,000 devices: 17 times a second, 9-30 ms
   * each on the edge's one thread).
   */
  flush(): void {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending];
    this.#pending.clear();
    let won = 0;
    for (const [id, at] of batch) {
      try {
        const here = this.#where.get(id) === this.#o.selfId;
        if (this.#o.store.deviceLocations.claim(id, this.#o.selfId, at) && !here) won++;
      } catch (e) {
        // A device deleted meanwhile (foreign key) or the database away: the next handshake retries.
        log.warn("Cannot record a device location", { device: id, error: (e as Error).message });
      }
    }
    if (won === 0) return;
    try {
      this.#o.store.feed.publish(LOCATIONS_CHANNEL, this.#o.selfId);
    } catch (e) {
      log.warn("Cannot announce device locations", { error: (e as Error).message });
    }
    this.refresh();
  }

  /** Re-reads the registry and the locations and brings the data plane's mesh peers in line. */
  refresh(): void {
    if (!this.#running) return;
    const { store, clock, selfId } = this.#o;
    const now = clock.now();
    let edges, locations, addresses;
    try {
      edges = store.edges.list().filter((e) =>
        e.id !== selfId &&
        healthOf(e, now, this.#o.unhealthyAfterMs ?? UNHEALTHY_AFTER_MS) === "healthy"
      );
      locations = store.deviceLocations.since(now - (this.#o.staleMs ?? LOCATION_STALE_MS));
      addresses = this.#o.addresses();
    } catch (e) {
      log.warn("Cannot read the mesh state", { error: (e as Error).message });
      return;
    }
    const healthy = new Set(edges.map((e) => e.id));
    const byEdge = new Map<string, string[]>();
    const where = new Map<string, string>();
    for (const l of locations) {
      if (l.edgeId !== selfId && !healthy.has(l.edgeId)) continue;
      // A handshake seen here and not yet written is newer than what the table says.
      if (this.#pending.has(l.deviceId)) continue;
      where.set(l.deviceId, l.edgeId);
      const addr = addresses.get(l.deviceId);
      if (l.edgeId === selfId || !addr) continue;
      let list = byEdge.get(l.edgeId);
      if (!list) byEdge.set(l.edgeId, list = []);
      list.push(addr);
    }
    for (const e of edges) {
      const spec: MeshPeerSpec = {
        edgeId: e.id,
        name: e.name,
        publicKey: e.wgPublicKey,
        endpoint: this.#resolved(udpEndpoint(e.endpoints), now),
        addresses: (byEdge.get(e.id) ?? []).sort(),
      };
      const stamp = JSON.stringify(spec);
      if (this.#applied.get(e.id) === stamp) continue;
      try {
        this.#o.plane.setMeshPeer(spec);
        if (!this.#applied.has(e.id)) {
          log.info("Mesh peer added", { edge: e.name, endpoint: spec.endpoint?.host ?? null });
        }
        this.#applied.set(e.id, stamp);
      } catch (err) {
        log.warn("Cannot set a mesh peer", { edge: e.name, error: (err as Error).message });
      }
    }
    for (const id of [...this.#applied.keys()]) {
      if (healthy.has(id)) continue;
      this.#o.plane.removeMeshPeer(id);
      this.#applied.delete(id);
      log.info("Mesh peer removed: the edge is no longer healthy", { edge: id });
    }
    let moved = where.size !== this.#where.size;
    if (!moved) { for (const [d, e] of where) if (this.#where.get(d) !== e) moved = true; }
    this.#where = where;
    if (moved) this.#o.onMoved?.();
  }

  /**
   * The endpoint with an address the data plane can send to: an IP literal
   * as it is; a name from the cache, else null while it is resolved in the
   * background (a refresh follows the answer).
   */
  #resolved(
    ep: { host: string; port: number } | null,
    now: number,
  ): { host: string; port: number } | null {
    if (!ep || isIpLiteral(ep.host)) return ep;
    const hit = this.#names.get(ep.host);
    // A fresh answer, or one in flight or failed (null) within the TTL, is used as it is.
    if (hit && now - hit.at < RESOLVE_TTL_MS) {
      return hit.address ? { host: hit.address, port: ep.port } : null;
    }
    this.#names.set(ep.host, { address: hit?.address ?? null, at: now });
    const resolve = this.#o.resolve ?? systemResolve;
    resolve(ep.host).catch(() => null).then((address) => {
      this.#names.set(ep.host, { address, at: this.#o.clock.now() });
      if (!address) log.warn("Cannot resolve a mesh endpoint", { host: ep.host.slice(0, 253) });
      this.refresh();
    });
    return hit?.address ? { host: hit.address, port: ep.port } : null;
  }

  /** The edge id a device is located at now (as last read), or null. */
  locationOf(deviceId: string): string | null {
    return this.#where.get(deviceId) ?? null;
  }

  /** Stops following; mesh peers are left to the data plane's own close. */
  stop(): void {
    if (!this.#running) return;
    this.flush();
    this.#running = false;
    if (this.#timer !== null) clearInterval(this.#timer);
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    this.#timer = this.#flushTimer = null;
    for (const u of this.#unlisten.splice(0)) u();
  }
}

function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
}

/** The system resolver: the first A record, else the first AAAA, else null. */
async function systemResolve(host: string): Promise<string | null> {
  for (const type of ["A", "AAAA"] as const) {
    try {
      const r = await Deno.resolveDns(host, type);
      if (r.length) return r[0];
    } catch { /* try the next type */ }
  }
  return null;
}

/** The first UDP endpoint of an edge (the mesh speaks UDP between edges). */
function udpEndpoint(eps: TunnelEndpoint[]): { host: string; port: number } | null {
  const ep = eps.find((e) => e.transport === "udp");
  return ep ? { host: ep.host, port: ep.port } : null;
}
