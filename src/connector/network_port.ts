/**
 * NetworkPort: what the engine needs from network awareness — a verdict for
 * the current network under the current policy, and a signal when the
 * network changes. The real detectors live in src/connector/network/ and
 * src/policy/trusted_network.ts; this file holds the interface, a fake, and
 * a fixed "off trusted" port for hosts without detection.
 */
import type { PolicyBundle } from "../policy/types.ts";
import type { NetworkVerdict } from "./engine_state.ts";
import type { CaptiveProbeResult } from "./network/captive.ts";

/** What the engine knows about the edge that evaluation may need. */
export interface NetworkContext {
  /** The edge's plain-HTTP bootstrap URL (egress address lookup). */
  bootstrapUrl?: string;
}

/** What a network change looked like. */
export interface NetworkChangeInfo {
  /**
   * True when the network's identity (default gateways, local addresses)
   * changed, i.e. the device moved; false for changes within the same network.
   */
  newNetwork: boolean;
  /** Kinds of change seen ("address", "route", "link", "dns"). */
  kinds: string[];
}

/** Network awareness as the engine sees it. */
export interface NetworkPort {
  /** Evaluates the current network against the policy's forwarding profile. */
  evaluate(policy: PolicyBundle, ctx?: NetworkContext): Promise<NetworkVerdict>;
  /** Calls `fn` after each (debounced) network change; returns an unsubscribe function. */
  subscribe(fn: (change: NetworkChangeInfo) => void): () => void;
  /**
   * Probes the edge's bootstrap URL outside the tunnel (captive portal and
   * reachability). Ports without it disable captive-portal detection.
   */
  probeEdge?(bootstrapUrl: string): Promise<CaptiveProbeResult>;
  /** Releases watchers. */
  close(): Promise<void>;
}

/** A port that always reports "off trusted" and the profile's action for it. */
export class OffTrustedNetworkPort implements NetworkPort {
  /** Returns the off-trusted verdict. */
  evaluate(policy: PolicyBundle): Promise<NetworkVerdict> {
    const action = policy.appProfile.forwarding.actions.off_trusted;
    return Promise.resolve({
      type: "off_trusted",
      action,
      explanation: `Network detection not configured: treated as off-trusted → action ${action}`,
    });
  }
  /** Never fires. */
  subscribe(): () => void {
    return () => {};
  }
  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A fake: the test sets the network type; actions come from the policy like the real one. */
export class FakeNetworkPort implements NetworkPort {
  type: NetworkVerdict["type"] = "off_trusted";
  evaluations = 0;
  #listeners = new Set<(change: NetworkChangeInfo) => void>();

  /** Returns the verdict for the current fake network type. */
  evaluate(policy: PolicyBundle): Promise<NetworkVerdict> {
    this.evaluations++;
    const action = policy.appProfile.forwarding.actions[this.type];
    return Promise.resolve({
      type: this.type,
      action,
      explanation: `Fake network ${this.type} → action ${action}`,
    });
  }
  /** Registers a listener. */
  subscribe(fn: (change: NetworkChangeInfo) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
  /** Switches the fake network and notifies listeners. */
  change(type: NetworkVerdict["type"]): void {
    this.type = type;
    for (const fn of this.#listeners) fn({ newNetwork: true, kinds: ["address"] });
  }
  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
