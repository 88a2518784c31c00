/**
 * Which edge the engine talks to: the one the edge selector chose among the
 * bundle's healthy edges, or the enrolment's own edge (a bundle without a
 * fleet list, or before any choice). The enrolment's edge keeps the values
 * the device enrolled with (API URL, pinned CA, endpoints), so a fleet of
 * one behaves exactly as an edge without a registry; another edge brings its
 * own, as its bundle entry gives them.
 */
import type { Clock, Timers } from "../../clock.ts";
import { edgeIdOf } from "../../fleet/edge_registry.ts";
import type { TunnelEndpoint } from "../../net/endpoint.ts";
import type { SelectionReason } from "../../policy/edge_selection.ts";
import type { BundleEdge, PolicyBundle } from "../../policy/types.ts";
import type { StoredEnrollment } from "../../store/connector_state.ts";
import { EdgeSelector, type EdgeSelectorTiming } from "../edge_selector.ts";
import type { NetworkPort } from "../network_port.ts";

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

/** Why the connector moved, as the user is told. */
const MOVE_REASONS: Partial<Record<SelectionReason, string>> = {
  initial: "the nearest edge",
  nearer: "clearly nearer than the edge before",
  failover: "the edge before stopped answering",
  unlisted: "the edge before is no longer healthy",
};

/** A move the engine carries out, with what to tell the user. */
export interface EdgeMove {
  to: BundleEdge;
  message: string;
  data: Record<string, unknown>;
  /** False for the first choice after start when it is the enrolment's own edge (no news). */
  notify: boolean;
}

/** What EdgeChoice reads from the engine. */
export interface EdgeChoiceDeps {
  network: NetworkPort;
  timers: Timers;
  clock: Clock;
  timing?: Partial<EdgeSelectorTiming>;
  enrollment: () => StoredEnrollment | null;
  /** The enrolment's bootstrap URL (the key's, or the default beside its API). */
  enrolledBootstrapUrl: () => string | null;
  policy: () => PolicyBundle | null;
  onMove: (move: EdgeMove) => void;
}

/** The engine's view of the fleet: the selector, and where API, tunnel and probes go. */
export class EdgeChoice {
  /** The mechanism choosing among the edges. */
  readonly selector: EdgeSelector;
  #d: EdgeChoiceDeps;

  constructor(d: EdgeChoiceDeps) {
    this.#d = d;
    const probeEdge = d.network.probeEdge?.bind(d.network);
    this.selector = new EdgeSelector({
      // The bootstrap listener's captive-portal probe: a fresh challenge, answered by the edge alone.
      probe: (e) =>
        probeEdge
          ? probeEdge(e.bootstrapUrl).then((r) => r.kind === "clear" ? r.latencyMs : null)
          : Promise.resolve(null),
      onMove: (to, reason, from) => this.#moved(to, reason, from),
      timers: d.timers,
      clock: d.clock,
      timing: d.timing,
    });
  }

  /** The edge the engine talks to (the selector's choice, or the enrolment's); null unenrolled. */
  target(): EdgeTarget | null {
    const e = this.#d.enrollment();
    return e ? edgeTarget(this.selector.current(), e, this.#d.enrolledBootstrapUrl() ?? "") : null;
  }

  /** Hands the selector the edges to choose from (the bundle's, or the enrolment's edge). */
  sync(): void {
    const e = this.#d.enrollment();
    if (!e) return;
    const boot = this.#d.enrolledBootstrapUrl() ?? "";
    const current = this.selector.current()?.id ?? edgeTarget(null, e, boot).id;
    this.selector.setEdges(candidateEdges(this.#d.policy(), e, boot), current);
  }

  /** Endpoints whose names are resolved and kept outside the tunnel: every edge's. */
  namedEndpoints(): TunnelEndpoint[] {
    return [
      ...(this.#d.enrollment()?.endpoints ?? []),
      ...this.selector.edges.flatMap((x) => x.endpoints),
    ];
  }

  /** Hosts of every edge (kept outside the tunnel and reachable through a block). */
  hosts(): string[] {
    return edgeHostsOf(this.selector.edges);
  }

  #moved(to: BundleEdge, reason: SelectionReason, from: BundleEdge | null): void {
    const why = MOVE_REASONS[reason] ?? reason;
    const rttMs = this.selector.status().current?.rttMs ?? null;
    this.#d.onMove({
      to,
      message: `Using edge "${to.name}"${to.region ? ` (${to.region})` : ""}: ${why}`,
      data: { edge: to.name, region: to.region, from: from?.name ?? null, reason, rttMs },
      notify: reason !== "initial" || to.publicKey !== this.#d.enrollment()?.edgePublicKey,
    });
  }
}
