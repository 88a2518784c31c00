/**
 * What the engine shows about itself: the status object the local API and
 * the console read, including the network-awareness part.
 */
import type { EdgeAwareness } from "../awareness.ts";
import type { ClockSkewStatus } from "../clock_skew.ts";
import type { NetworkVerdict, StateKind } from "../engine_state.ts";
import type { C2cStanding } from "./c2c.ts";
import type { EdgeSelectionStatus } from "../edge_selector.ts";

/** Captive-portal and edge-reachability state, for the console. */
export interface AwarenessStatus {
  captive: "clear" | "portal" | "expired";
  /** The portal's login page, when it redirected us there. */
  portalLocation: string | null;
  reachability: "unknown" | "reachable" | "retrying" | "fail_open" | "fail_closed";
  failures: number;
  lastFailure: string | null;
  lastProbe: string | null;
}

/** What the local API shows as status. */
export interface EngineStatus {
  state: StateKind;
  description: string;
  reason: string | null;
  network: NetworkVerdict | null;
  edge: string | null;
  deviceId: string | null;
  deviceAddress: string | null;
  deviceFqdn: string | null;
  /** The edge's answer on that name ("Valid Hostname"), or null when client-to-client is off. */
  clientToClient: C2cStanding | null;
  transport: "udp" | "tls" | null;
  endpoint: string | null;
  connectedSince: number | null;
  lastHandshake: number | null;
  rxBytes: number;
  txBytes: number;
  policyVersion: string | null;
  policyUpdatedAt: number | null;
  clockSkewMs: number | null;
  /** The skew judged against the sign-in tolerance (absent on status objects built elsewhere). */
  clockSkew?: ClockSkewStatus | null;
  wgPublicKey: string;
  fingerprintHash: string;
  /** The user the device is enrolled under; null for a machine device or before enrolment. */
  user?: string | null;
  /** Captive-portal and reachability state (absent on status objects built elsewhere). */
  awareness?: AwarenessStatus | null;
  /** Strict enforcement in force (setting before the first policy, then the policy's). */
  strictEnforcement?: boolean;
  /** While strict enforcement blocks traffic: until the device is enrolled, or until a new login. */
  blockedUntil?: "enrolled" | "login" | null;
  /** The edge in use among the fleet's, its RTT and the alternatives (null unenrolled). */
  edgeSelection?: EdgeSelectionStatus | null;
}

/** The awareness part of the status, or null before awareness runs. */
export function awarenessStatus(
  a: Pick<EdgeAwareness, "captive" | "reach" | "lastProbe"> | null,
): AwarenessStatus | null {
  if (!a) return null;
  const p = a.lastProbe;
  return {
    captive: a.captive.state,
    portalLocation: a.captive.location ?? null,
    reachability: a.reach.state,
    failures: a.reach.failures,
    lastFailure: a.reach.lastReason || null,
    lastProbe: p ? (p.kind === "clear" ? "clear" : `${p.kind}: ${p.detail}`) : null,
  };
}
