/**
 * The edge registry: every edge sharing a database writes its own row
 * (name, region, WireGuard key, tunnel endpoints, API and bootstrap URLs, CA)
 * at start, heartbeats every 5 s with the number of devices its tunnel holds,
 * and marks itself stopped on a clean shutdown. An edge whose heartbeat is
 * older than 15 s is unhealthy: whichever edge notices first marks it so (a
 * conditional update, so exactly one raises the notification) and every edge
 * drops it from the bundles it serves, which is how connectors learn to stop
 * choosing it. The healthy list is re-read on every tick and whenever the
 * change feed says another edge registered or stopped.
 */
import type { Clock } from "../clock.ts";
import { InputError, NotFoundError } from "../errors.ts";
import { sha256Hex } from "../identity/secrets.ts";
import { logger } from "../log.ts";
import type { TunnelEndpoint } from "../net/endpoint.ts";
import type { Notifier } from "../notify/mod.ts";
import type { BundleEdge } from "../policy/types.ts";
import type { EdgeRecord, Store } from "../store/mod.ts";

const log = logger("fleet.registry");

/** Milliseconds between two heartbeats of an edge. */
export const HEARTBEAT_MS = 5_000;
/** An edge whose last heartbeat is older than this is unhealthy. */
export const UNHEALTHY_AFTER_MS = 15_000;
/** The feed channel on which edges announce that the registry changed. */
export const EDGES_CHANNEL = "edges";

/** What this edge tells the others about itself. */
export interface EdgeIdentity {
  name: string;
  region: string;
  wgPublicKey: string;
  endpoints: TunnelEndpoint[];
  apiUrl: string;
  bootstrapUrl: string;
  caPem: string;
  version: string;
}

/** An edge's health as the registry judges it now. */
export type EdgeHealth = "healthy" | "unhealthy" | "stopped";

/** An edge as the admin API and console show it. */
export interface EdgeView {
  id: string;
  name: string;
  region: string;
  publicKey: string;
  endpoints: TunnelEndpoint[];
  apiUrl: string;
  bootstrapUrl: string;
  version: string;
  health: EdgeHealth;
  startedAt: string;
  lastHeartbeat: string;
  /** Milliseconds since the last heartbeat, as this edge's clock sees it. */
  heartbeatAgeMs: number;
  devicesConnected: number;
  /** True for the edge answering this request. */
  self: boolean;
}

/** The stable id of an edge: derived from its WireGuard public key (kept in its data dir). */
export function edgeIdOf(wgPublicKey: string): string {
  return sha256Hex(wgPublicKey).slice(0, 16);
}

/** Health of a row at `now`: stopped, unhealthy (marked or lapsed), or healthy. */
export function healthOf(e: EdgeRecord, now: number, staleMs = UNHEALTHY_AFTER_MS): EdgeHealth {
  if (e.status === "stopped") return "stopped";
  if (e.status === "unhealthy" || now - e.heartbeatAt > staleMs) return "unhealthy";
  return "healthy";
}

/** Options of an EdgeRegistry. */
export interface EdgeRegistryOptions {
  store: Store;
  clock: Clock;
  notifier: Notifier;
  identity: EdgeIdentity;
  /** Devices this edge's tunnel holds a live session with (reported in the heartbeat). */
  devicesConnected?: () => number;
  heartbeatMs?: number;
  unhealthyAfterMs?: number;
}

/** This edge's registration, heartbeat and view of the fleet. */
export class EdgeRegistry {
  /** This edge's id. */
  readonly id: string;
  #o: EdgeRegistryOptions;
  #healthy: BundleEdge[] = [];
  #stamp = "";
  #listeners = new Set<() => void>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #unlisten: (() => void)[] = [];
  #running = false;

  constructor(opts: EdgeRegistryOptions) {
    this.#o = opts;
    this.id = edgeIdOf(opts.identity.wgPublicKey);
  }

  /**
   * Registers this edge, tells the others, and heartbeats until `stop`;
   * `devicesConnected` counts the live sessions of its tunnel.
   */
  start(opts: { devicesConnected?: () => number } = {}): void {
    if (this.#running) return;
    if (opts.devicesConnected) this.#o = { ...this.#o, devicesConnected: opts.devicesConnected };
    this.#running = true;
    this.#register();
    const feed = this.#o.store.feed;
    this.#unlisten.push(feed.listen(EDGES_CHANNEL, () => this.refresh()));
    // Messages may have been missed while the feed was away: read again.
    this.#unlisten.push(feed.onReconnect(() => this.refresh()));
    this.#timer = setInterval(() => this.tick(), this.#o.heartbeatMs ?? HEARTBEAT_MS);
  }

  /** One heartbeat: record ours, mark lapsed edges unhealthy, re-read the healthy list. */
  tick(): void {
    if (!this.#running) return;
    const { store, clock } = this.#o;
    const now = clock.now();
    try {
      const r = store.edges.heartbeat(this.id, now, this.#devicesConnected());
      if (r === "unknown") {
        // An admin removed our row while we run: we are still here.
        this.#register();
        return;
      }
      if (r === "recovered") {
        this.#announce();
        this.#raise(store.edges.get(this.id)!, "healthy");
      }
      const staleMs = this.#o.unhealthyAfterMs ?? UNHEALTHY_AFTER_MS;
      for (const e of store.edges.list()) {
        if (e.id === this.id || e.status !== "up" || now - e.heartbeatAt <= staleMs) continue;
        if (store.edges.markUnhealthy(e.id, now - staleMs)) {
          log.warn("Edge stopped heartbeating", { edge: e.name, id: e.id });
          this.#announce();
          this.#raise(e, "unhealthy");
        }
      }
    } catch (e) {
      log.warn("Cannot record the edge heartbeat", { error: (e as Error).message });
    }
    this.refresh();
  }

  /** Re-reads the healthy edges; tells listeners when the list changed. */
  refresh(): void {
    const now = this.#o.clock.now();
    const staleMs = this.#o.unhealthyAfterMs ?? UNHEALTHY_AFTER_MS;
    let rows: EdgeRecord[];
    try {
      rows = this.#o.store.edges.list();
    } catch (e) {
      log.warn("Cannot read the edge registry", { error: (e as Error).message });
      return;
    }
    const healthy = rows.filter((e) => healthOf(e, now, staleMs) === "healthy").map(bundleEdge);
    const stamp = JSON.stringify(healthy);
    if (stamp === this.#stamp) return;
    this.#healthy = healthy;
    this.#stamp = stamp;
    for (const fn of this.#listeners) {
      try {
        fn();
      } catch (e) {
        log.error("Edge list listener failed", { error: String(e) });
      }
    }
  }

  /** The healthy edges, as bundles list them (sorted by name). */
  healthy(): BundleEdge[] {
    return this.#healthy;
  }

  /** Calls `fn` whenever the healthy list changes; returns its removal. */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Every registered edge with its health, for the admin. */
  views(): EdgeView[] {
    const now = this.#o.clock.now();
    const staleMs = this.#o.unhealthyAfterMs ?? UNHEALTHY_AFTER_MS;
    return this.#o.store.edges.list().map((e) => ({
      id: e.id,
      name: e.name,
      region: e.region,
      publicKey: e.wgPublicKey,
      endpoints: e.endpoints,
      apiUrl: e.apiUrl,
      bootstrapUrl: e.bootstrapUrl,
      version: e.version,
      health: healthOf(e, now, staleMs),
      startedAt: new Date(e.startedAt).toISOString(),
      lastHeartbeat: new Date(e.heartbeatAt).toISOString(),
      heartbeatAgeMs: Math.max(0, now - e.heartbeatAt),
      devicesConnected: e.status === "stopped" ? 0 : e.devicesConnected,
      self: e.id === this.id,
    }));
  }

  /**
   * Forgets a decommissioned edge (stopped or unhealthy): its row goes, and
   * it registers again should it ever start. A healthy edge cannot be
   * forgotten (409 `edge_healthy`): it would be back at its next heartbeat.
   */
  forget(id: string): EdgeRecord {
    const e = this.#o.store.edges.get(id);
    if (!e) throw new NotFoundError("edge_not_found", `Cannot find edge "${id.slice(0, 64)}"`);
    const health = healthOf(e, this.#o.clock.now(), this.#o.unhealthyAfterMs ?? UNHEALTHY_AFTER_MS);
    if (health === "healthy") {
      throw new InputError(
        "edge_healthy",
        `Cannot forget edge "${e.name}": it is healthy (stop it first, or wait until it misses its heartbeats)`,
        409,
      );
    }
    this.#o.store.edges.delete(id);
    this.#announce();
    this.refresh();
    return e;
  }

  /** Marks this edge stopped (its devices move to others at once) and stops heartbeating. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const u of this.#unlisten.splice(0)) u();
    try {
      this.#o.store.edges.markStopped(this.id, this.#o.clock.now());
      this.#announce();
    } catch (e) {
      log.warn("Cannot mark the edge stopped", { error: (e as Error).message });
    }
    this.#listeners.clear();
  }

  #register(): void {
    const { store, clock, identity: i } = this.#o;
    const before = store.edges.get(this.id);
    const now = clock.now();
    store.edges.register({
      id: this.id,
      name: i.name,
      region: i.region,
      wgPublicKey: i.wgPublicKey,
      endpoints: i.endpoints,
      apiUrl: i.apiUrl,
      bootstrapUrl: i.bootstrapUrl,
      caPem: i.caPem,
      version: i.version,
      startedAt: now,
      heartbeatAt: now,
    });
    log.info("Registered in the edge registry", { id: this.id, name: i.name, region: i.region });
    this.#announce();
    if (before?.status === "unhealthy") this.#raise(store.edges.get(this.id)!, "healthy");
    this.refresh();
  }

  #devicesConnected(): number {
    try {
      return this.#o.devicesConnected?.() ?? 0;
    } catch {
      return 0;
    }
  }

  /** Tells every edge on the database to re-read the registry. */
  #announce(): void {
    try {
      this.#o.store.feed.publish(EDGES_CHANNEL, this.id);
    } catch (e) {
      log.warn("Cannot announce the registry change", { error: (e as Error).message });
    }
  }

  #raise(e: EdgeRecord, health: "healthy" | "unhealthy"): void {
    this.#o.notifier.publish({
      kind: "edge_health",
      edgeId: e.id,
      name: e.name,
      health,
      lastHeartbeat: new Date(e.heartbeatAt).toISOString(),
    });
  }
}

/** A registry row as a bundle lists it. */
function bundleEdge(e: EdgeRecord): BundleEdge {
  return {
    id: e.id,
    name: e.name,
    region: e.region,
    publicKey: e.wgPublicKey,
    endpoints: e.endpoints,
    apiUrl: e.apiUrl,
    bootstrapUrl: e.bootstrapUrl,
    caPem: e.caPem,
  };
}
