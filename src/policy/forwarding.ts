/**
 * Forwarding decision: the action a forwarding profile assigns to the network
 * type a trusted-network verdict found, plus the transport settings the
 * tunnel must follow. Pure; the engine applies the result.
 */
import type { ForwardingAction, ForwardingProfile, NetworkType } from "./types.ts";
import type { TrustedVerdict } from "./trusted_network.ts";

/** What the connector should do on the current network, and why. */
export interface ForwardingDecision {
  networkType: NetworkType;
  action: ForwardingAction;
  /** "On-trusted: … → action none". */
  reason: string;
}

/** Transport settings from the forwarding profile. */
export interface TransportPolicy {
  /** Milliseconds without a UDP handshake answer before trying TLS. */
  udpTimeoutMs: number;
  tlsFallback: boolean;
  mtu: number;
}

/** Returns the profile's action for a network type. */
export function actionFor(profile: ForwardingProfile, networkType: NetworkType): ForwardingAction {
  return profile.actions[networkType];
}

/** Decides the forwarding action for a trusted-network verdict. */
export function decideForwarding(
  profile: ForwardingProfile,
  verdict: Pick<TrustedVerdict, "networkType" | "explanation">,
): ForwardingDecision {
  const action = actionFor(profile, verdict.networkType);
  return {
    networkType: verdict.networkType,
    action,
    reason: `${verdict.explanation} → action ${action} (profile "${profile.name}")`,
  };
}

/** True when the action sends traffic through the tunnel. */
export function usesTunnel(action: ForwardingAction): boolean {
  return action === "tunnel" || action === "tunnel_local_proxy";
}

/** Reads the transport settings of a forwarding profile. */
export function transportPolicy(profile: ForwardingProfile): TransportPolicy {
  return {
    udpTimeoutMs: profile.udpTimeoutSec * 1000,
    tlsFallback: profile.tlsFallback,
    mtu: profile.mtu,
  };
}
