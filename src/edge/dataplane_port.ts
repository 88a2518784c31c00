/**
 * The seam between the edge's control plane and its data plane. The control
 * plane never imports the tunnel code; it tells the tunnel which peers exist
 * through this port, and reads their counters back for the device pages.
 * The real implementation (wired by main.ts) adds/removes WireGuard peers
 * and tears down their sessions; `MemoryTunnelPort` is the fake for tests.
 */

/** Live counters of one peer as the data plane sees them. */
export interface PeerStats {
  rxBytes: number;
  txBytes: number;
  /** Wall-clock ms of the last completed handshake, or null if none. */
  lastHandshake: number | null;
  transport: "udp" | "tls" | null;
  /** "192.0.2.1:443" or null when never heard from. */
  endpoint: string | null;
}

/** A peer the control plane wants the tunnel to accept. */
export interface TunnelPeer {
  id: string;
  wgPublicKey: string;
  /** The device's tunnel address, e.g. "100.64.0.7". */
  address: string;
}

/** What the control plane needs from the tunnel. */
export interface EdgeTunnelPort {
  /** Adds or updates a peer (by public key); allowed source is its address. */
  upsertPeer(peer: TunnelPeer): void;
  /** Removes a peer and tears down its session at once. */
  removePeer(wgPublicKey: string): void;
  /** Whether the tunnel holds a device's peer (an edge of the mesh does not count). */
  hasPeer(wgPublicKey: string): boolean;
  /** Current counters by public key. */
  peerStats(): Map<string, PeerStats>;
}

/** In-memory tunnel port: records peers and lets tests set counters. */
export class MemoryTunnelPort implements EdgeTunnelPort {
  /** Current peers by public key. */
  readonly peers = new Map<string, TunnelPeer>();
  /** Counters by public key, set by tests. */
  readonly stats = new Map<string, PeerStats>();
  /** Every call, in order, for assertions. */
  readonly calls: string[] = [];

  /** Adds or updates a peer. */
  upsertPeer(peer: TunnelPeer): void {
    this.peers.set(peer.wgPublicKey, { ...peer });
    this.calls.push(`upsert ${peer.id} ${peer.address}`);
  }
  /** Removes a peer and its counters. */
  removePeer(wgPublicKey: string): void {
    const p = this.peers.get(wgPublicKey);
    this.peers.delete(wgPublicKey);
    this.stats.delete(wgPublicKey);
    this.calls.push(`remove ${p?.id ?? "?"}`);
  }
  /** Whether `wgPublicKey` is a current peer. */
  hasPeer(wgPublicKey: string): boolean {
    return this.peers.has(wgPublicKey);
  }
  /** Counters of current peers. */
  peerStats(): Map<string, PeerStats> {
    const out = new Map<string, PeerStats>();
    for (const [k, v] of this.stats) if (this.peers.has(k)) out.set(k, { ...v });
    return out;
  }
}
