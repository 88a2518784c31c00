/**
 * TunnelPort: the seam between the connector engine (control) and the data
 * plane (TUN device, WireGuard, UDP/TLS transports, routes, DNS). The engine
 * says what tunnel it wants; the data plane owns how. The real implementation
 * lives with the data plane; FakeTunnelPort records calls for tests.
 *
 * Fallback from UDP to TLS happens inside the tunnel (it has the timers); the
 * engine only hears `up` with the transport that worked, or
 * `handshake_timeout` when neither did.
 */
import type { TunnelEndpoint } from "../net/endpoint.ts";
import type { Transport } from "./engine_state.ts";

/** Everything the data plane needs to bring the tunnel up. */
export interface TunnelConfig {
  /** The device's tunnel address, e.g. "100.64.0.7". */
  address: string;
  /** The device range, e.g. "100.64.0.0/16". */
  network: string;
  /** The edge's address inside the tunnel (first of `network`). */
  edgeAddress: string;
  /** Base64 WireGuard public key of the edge. */
  edgePublicKey: string;
  /** Ways to reach the edge, UDP first. */
  endpoints: TunnelEndpoint[];
  mtu: number;
  /** Prefixes to route through the tunnel and prefixes kept outside it (edge endpoints included). */
  routes: { tunnel4: string[]; tunnel6: string[]; bypass4: string[]; bypass6: string[] };
  /** Base64 WireGuard private key of this device; never log it. */
  privateKey: string;
  /** Seconds without a UDP handshake answer before trying TLS. */
  udpTimeoutSec: number;
  tlsFallback: boolean;
  /**
   * Seconds without any handshake answer, with no other transport to try
   * (TLS fallback off), before the tunnel reports `handshake_timeout` so the
   * engine applies the fail mode; it keeps handshaking in the background.
   * Absent or 0: only WireGuard's own 90 s give-up reports it.
   */
  giveUpSec?: number;
  /** Edge DNS server and the domains it serves, when the policy has them. */
  dns: { server: string; domains: string[] } | null;
  /** The pinned edge CA (PEM): the TLS fallback trusts only this. */
  caPem?: string;
}

/** What the data plane reports about the running tunnel. */
export interface TunnelStatus {
  transport: Transport | null;
  /** Wall-clock ms of the last completed handshake, or null. */
  lastHandshake: number | null;
  rxBytes: number;
  txBytes: number;
  /** "udp:203.0.113.5:443" or null. */
  endpoint: string | null;
}

/** Events the data plane raises. */
export type TunnelEvent =
  | {
    type: "up";
    transport: Transport;
    /** Why this transport (e.g. "UDP handshakes went unanswered"), when it changed. */
    reason?: string;
  }
  | {
    type: "down";
    reason: string;
    /** True when the edge stopped answering (not a teardown we asked for). */
    edgeSilent?: boolean;
  }
  | {
    type: "handshake_timeout";
    /** Why, when the tunnel can say more than "no answer" (e.g. which transport, how long). */
    reason?: string;
  };

/** The data-plane port the engine drives. */
export interface TunnelPort {
  /** Brings the tunnel up (or reconfigures it if already up); resolves once configured, not once handshaken. */
  bringUp(cfg: TunnelConfig): Promise<void>;
  /** Tears the tunnel, its routes and DNS down; idempotent. */
  tearDown(): Promise<void>;
  /** Current status, or null when no tunnel exists. */
  status(): TunnelStatus | null;
  /** Registers a listener for tunnel events; returns an unsubscribe function. */
  onEvent(fn: (e: TunnelEvent) => void): () => void;
  /**
   * Fail mode while the edge cannot be reached (or strict enforcement holds):
   * "direct" lets traffic bypass the tunnel, "blocked" drops all but
   * loopback, DNS, DHCP and the edge, null restores normal forwarding. It
   * works with or without a tunnel up; `allow` names the edge's addresses
   * (IP literals) to keep reachable besides the running tunnel's endpoints.
   */
  setFailMode(mode: "direct" | "blocked" | null, opts?: FailModeOptions): Promise<void>;
}

/** Options of a fail mode. */
export interface FailModeOptions {
  /** Edge addresses (IPv4/IPv6 literals) that stay reachable while blocked. */
  allow?: string[];
}

/** A fake data plane: records calls, reports `up` after bringUp unless told otherwise. */
export class FakeTunnelPort implements TunnelPort {
  calls: string[] = [];
  configs: TunnelConfig[] = [];
  failMode: "direct" | "blocked" | null = null;
  /** The allow-list of the last "blocked" fail mode. */
  allow: string[] = [];
  /** Transport reported after bringUp; null means never come up. */
  autoUp: Transport | null = "udp";
  rxBytes = 0;
  txBytes = 0;
  #up: Transport | null = null;
  #active = false;
  #listeners = new Set<(e: TunnelEvent) => void>();

  /** Records the config and, with autoUp, reports up on the next tick. */
  bringUp(cfg: TunnelConfig): Promise<void> {
    this.calls.push("bringUp");
    this.configs.push(cfg);
    this.#active = true;
    if (this.autoUp) {
      const t = this.autoUp;
      setTimeout(() => {
        if (this.#active) this.emit({ type: "up", transport: t });
      }, 0);
    }
    return Promise.resolve();
  }

  /** Marks the tunnel down. */
  tearDown(): Promise<void> {
    this.calls.push("tearDown");
    this.#active = false;
    this.#up = null;
    return Promise.resolve();
  }

  /** Reports the fake status. */
  status(): TunnelStatus | null {
    if (!this.#active) return null;
    return {
      transport: this.#up,
      lastHandshake: this.#up ? Date.now() : null,
      rxBytes: this.rxBytes,
      txBytes: this.txBytes,
      endpoint: this.#up ? `${this.#up}:127.0.0.1:51820` : null,
    };
  }

  /** Registers a listener. */
  onEvent(fn: (e: TunnelEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Records the fail mode and its allow-list. */
  setFailMode(mode: "direct" | "blocked" | null, opts: FailModeOptions = {}): Promise<void> {
    this.calls.push(`setFailMode:${mode}`);
    this.failMode = mode;
    this.allow = mode === "blocked" ? [...(opts.allow ?? [])] : [];
    return Promise.resolve();
  }

  /** True between bringUp and tearDown. */
  get active(): boolean {
    return this.#active;
  }

  /** Raises an event as the data plane would. */
  emit(e: TunnelEvent): void {
    if (e.type === "up") this.#up = e.transport;
    if (e.type !== "up") this.#up = null;
    for (const fn of this.#listeners) fn(e);
  }
}
