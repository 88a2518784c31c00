/**
 * Any edge terminates any device: every edge's tunnel holds every enabled
 * device of the shared store as a peer, not only those that enrolled there.
 * `FleetTunnelPort` sits between the control plane and this edge's data
 * plane: each peer change the control plane makes here (enrolment,
 * disable, delete, a user disabled, a sign-in ended or renewed) is applied
 * to the local tunnel and announced on the change feed with the key it
 * named; every other edge re-reads that device from the store and applies
 * what the store says now (peerOf), so a message only says where to look
 * and a late or repeated one cannot undo a newer change. When the feed
 * reconnects (messages may have been lost) the whole peer set is
 * reconciled with the store.
 */
import { logger } from "../log.ts";
import type { EdgeContext } from "./context.ts";
import type { EdgeTunnelPort, PeerStats, TunnelPeer } from "./dataplane_port.ts";
import { fleetPeerFacts, peerOf } from "./devices.ts";

const log = logger("edge.peers");

/** The feed channel carrying "the peer with this key changed". */
export const PEERS_CHANNEL = "tunnel_peers";

/** One announcement: the edge that made the change and the peer key it touched. */
interface PeerMessage {
  o: string;
  k: string;
}

/** A tunnel port that keeps every edge's tunnel in step through the change feed. */
export class FleetTunnelPort implements EdgeTunnelPort {
  #inner: EdgeTunnelPort;
  #ctx: EdgeContext;
  #origin: string;
  /** Keys this edge's tunnel holds (for the reconcile after a reconnect). */
  #keys = new Set<string>();
  #unlisten: (() => void)[] = [];

  /**
   * Wraps `inner` (this edge's data plane); `origin` is this edge's id, so
   * its own announcements (delivered back on the same feed) are skipped.
   * `known` are the peers the tunnel was loaded with.
   */
  constructor(inner: EdgeTunnelPort, ctx: EdgeContext, origin: string, known: Iterable<string>) {
    this.#inner = inner;
    this.#ctx = ctx;
    this.#origin = origin;
    for (const k of known) this.#keys.add(k);
    const feed = ctx.store.feed;
    this.#unlisten.push(feed.listen(PEERS_CHANNEL, (p) => this.#onMessage(p)));
    this.#unlisten.push(feed.onReconnect(() => this.reconcile()));
  }

  /** Adds or updates a peer here, and tells the other edges. */
  upsertPeer(peer: TunnelPeer): void {
    this.#inner.upsertPeer(peer);
    this.#keys.add(peer.wgPublicKey);
    this.#announce(peer.wgPublicKey);
  }

  /** Removes a peer here, and tells the other edges. */
  removePeer(wgPublicKey: string): void {
    this.#inner.removePeer(wgPublicKey);
    this.#keys.delete(wgPublicKey);
    this.#announce(wgPublicKey);
  }

  /** Whether this edge holds the peer. */
  hasPeer(wgPublicKey: string): boolean {
    return this.#inner.hasPeer(wgPublicKey);
  }

  /** This edge's counters (each edge sees only the sessions it terminates). */
  peerStats(): Map<string, PeerStats> {
    return this.#inner.peerStats();
  }

  /** Makes this edge's peers exactly the store's eligible devices; returns how many it holds. */
  reconcile(): number {
    const { store } = this.#ctx;
    const facts = fleetPeerFacts(this.#ctx);
    const want = new Map<string, TunnelPeer>();
    for (const d of store.devices.list()) {
      const p = peerOf(this.#ctx, d, facts);
      if (p) want.set(p.wgPublicKey, p);
    }
    for (const k of [...this.#keys]) {
      if (!want.has(k)) this.#apply(k, null);
    }
    for (const p of want.values()) this.#apply(p.wgPublicKey, p);
    log.info("Tunnel peers reconciled with the store", { peers: want.size });
    return want.size;
  }

  /** Stops following the feed. */
  close(): void {
    for (const u of this.#unlisten.splice(0)) u();
  }

  #announce(key: string): void {
    try {
      const msg: PeerMessage = { o: this.#origin, k: key };
      this.#ctx.store.feed.publish(PEERS_CHANNEL, JSON.stringify(msg));
    } catch (e) {
      log.warn("Cannot announce a peer change", { error: (e as Error).message });
    }
  }

  #onMessage(payload: string): void {
    let msg: PeerMessage;
    try {
      msg = JSON.parse(payload) as PeerMessage;
    } catch {
      log.warn("Ignored a malformed peer announcement", { length: payload.length });
      return;
    }
    if (typeof msg?.k !== "string" || typeof msg.o !== "string" || msg.o === this.#origin) return;
    // The store is the truth: the key's device as it is now (gone: not a peer).
    const d = this.#ctx.store.devices.byWgPublicKey(msg.k);
    this.#apply(msg.k, d ? peerOf(this.#ctx, d) : null);
  }

  #apply(key: string, peer: TunnelPeer | null): void {
    try {
      if (peer) {
        this.#inner.upsertPeer(peer);
        this.#keys.add(key);
      } else if (this.#keys.has(key)) {
        this.#inner.removePeer(key);
        this.#keys.delete(key);
      }
    } catch (e) {
      log.warn("Cannot apply a peer change from another edge", { error: (e as Error).message });
    }
  }
}
