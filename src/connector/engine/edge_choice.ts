/**
 * Which edge the engine talks to: the one the edge selector chose among the
 * bundle's healthy edges, or the enrolment's own edge (a bundle without a
 * fleet list, or before any choice). The enrolment's edge keeps the values
 * the device enrolled with (API URL, pinned CA, endpoints), so a fleet of
 * one behaves exactly as an edge without a registry; another edge brings its
 * own, as its bundle entry gives them.
 */
import { edgeIdOf } from "../../fleet/edge_registry.ts";
import type { TunnelEndpoint } from "../../net/endpoint.ts";
import type { BundleEdge, PolicyBundle } from "../../policy/types.ts";
import type { StoredEnrollment } from "../../store/connector_state.ts";

/** Where the engine's API calls, tunnel and probes go. */
export interface EdgeTarget {
  id: string;
  name: string;
  apiUrl: string;
  caPem: string;
  edgePublicKey: string;
  endpoints: TunnelEndpoint[];
  /** The plain-HTTP bootstrap URL (captive-portal probe, egress address). */
  bootstrapUrl: string;
}

/** The enrolment's edge as a bundle entry (id from its key, as the registry makes it). */
export function enrolledEdge(e: StoredEnrollment, bootstrapUrl: string): BundleEdge {
  return {
    id: edgeIdOf(e.edgePublicKey),
    name: new URL(e.apiUrl).hostname.replace(/^\[|\]$/g, ""),
    region: "",
    publicKey: e.edgePublicKey,
    endpoints: e.endpoints,
    apiUrl: e.apiUrl,
    bootstrapUrl,
    caPem: e.caPem,
  };
}

/** The edges to choose from: the bundle's healthy edges, or the enrolment's edge alone. */
export function candidateEdges(
  policy: PolicyBundle | null,
  e: StoredEnrollment,
  bootstrapUrl: string,
): BundleEdge[] {
  const listed = policy?.edges ?? [];
  return listed.length ? listed : [enrolledEdge(e, bootstrapUrl)];
}

/** The target for a chosen edge (null: none chosen yet, the enrolment's edge). */
export function edgeTarget(
  chosen: BundleEdge | null,
  e: StoredEnrollment,
  bootstrapUrl: string,
): EdgeTarget {
  if (!chosen || chosen.publicKey === e.edgePublicKey) {
    return {
      id: edgeIdOf(e.edgePublicKey),
      name: chosen?.name ?? new URL(e.apiUrl).hostname,
      apiUrl: e.apiUrl,
      caPem: e.caPem,
      edgePublicKey: e.edgePublicKey,
      endpoints: e.endpoints,
      bootstrapUrl,
    };
  }
  return {
    id: chosen.id,
    name: chosen.name,
    apiUrl: chosen.apiUrl,
    caPem: chosen.caPem,
    edgePublicKey: chosen.publicKey,
    endpoints: chosen.endpoints,
    bootstrapUrl: chosen.bootstrapUrl,
  };
}

/**
 * The hosts of every edge the connector may use (tunnel endpoints and
 * bootstrap URLs): they stay outside the tunnel, so probes measure the path
 * to each edge itself and a move is never routed through the old tunnel.
 */
export function edgeHostsOf(edges: readonly BundleEdge[]): string[] {
  const out = new Set<string>();
  for (const e of edges) {
    for (const x of e.endpoints) out.add(x.host.replace(/^\[|\]$/g, ""));
    try {
      out.add(new URL(e.bootstrapUrl).hostname.replace(/^\[|\]$/g, ""));
    } catch { /* a bad URL names no host */ }
  }
  return [...out];
}
