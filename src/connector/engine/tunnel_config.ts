/**
 * The tunnel configuration the engine asks the data plane for: derived from
 * the enrolment (addresses, keys, endpoints) and the policy (MTU, routes,
 * DNS, transports). Pure, so a policy change that alters the tunnel can be
 * told from one that does not by comparing fingerprints.
 */
import type { ForwardingAction, PolicyBundle } from "../../policy/types.ts";
import { planRoutes } from "../../policy/routes.ts";
import type { StoredEnrollment } from "../../store/connector_state.ts";
import type { TunnelConfig } from "../tunnel_port.ts";
import type { EdgeTarget } from "./edge_choice.ts";

/**
 * The routes "enforce PAC" tunnels: no full tunnel, only what the PAC's
 * PROXY needs (the edge's web proxy and DNS at its tunnel address) — the
 * private-access segments are added by planRoutes as always. The PAC's
 * DIRECT traffic then leaves the device on its own network.
 */
function pacOnlyProfile(p: PolicyBundle) {
  const hosts = [p.webProxy?.address, p.edgeDns].filter((a): a is string =>
    !!a && /^\d{1,3}(?:\.\d{1,3}){3}$/.test(a)
  );
  return { include: [...new Set(hosts)].map((a) => `${a}/32`), exclude: [] };
}

/** The tunnel configuration for an enrolment and policy, or null while either is missing. */
export function tunnelConfig(
  e: StoredEnrollment | null,
  p: PolicyBundle | null,
  privateKey: string,
  resolvedEdge: readonly string[] = [],
  action: ForwardingAction | null = null,
  /** The edge chosen among the fleet's (default: the enrolment's). */
  target: EdgeTarget | null = null,
  /** Hosts of every edge of the fleet, kept outside the tunnel (edge_choice.ts). */
  fleetHosts: readonly string[] = [],
): TunnelConfig | null {
  if (!e || !p) return null;
  const fwd = p.appProfile.forwarding;
  const endpoints = target?.endpoints ?? e.endpoints;
  // Literal endpoint addresses, and what named ones resolve to (engine/edge_names.ts).
  const literal = (h: string) => /^[0-9.]+$|:/.test(h);
  const edgeAddresses = [
    ...new Set([
      ...e.endpoints.map((x) => x.host).filter(literal),
      ...endpoints.map((x) => x.host).filter(literal),
      ...fleetHosts.filter(literal),
      ...resolvedEdge,
    ]),
  ];
  return {
    address: e.address,
    network: e.network,
    edgeAddress: e.edgeAddress,
    edgePublicKey: target?.edgePublicKey ?? e.edgePublicKey,
    endpoints,
    mtu: fwd.mtu,
    // Every segment the bundle carries applies to this device (the edge sends
    // no others): route it even inside an exclude range, so a denied one
    // fails fast with the edge's RST instead of leaking onto the local network.
    routes: planRoutes({
      profile: action === "enforce_pac" ? pacOnlyProfile(p) : p.appProfile,
      edgeAddresses,
      segments: p.segments.flatMap((s) => s.cidrs),
    }),
    privateKey,
    udpTimeoutSec: fwd.udpTimeoutSec,
    tlsFallback: fwd.tlsFallback,
    // No fallback left: the profile's UDP timeout once per retry the fail-open
    // settings allow, then the fail mode (direct or blocked) applies.
    giveUpSec: fwd.udpTimeoutSec * p.appProfile.failOpen.retries,
    dns: p.edgeDns ? { server: p.edgeDns, domains: p.edgeDnsDomains } : null,
    caPem: target?.caPem ?? e.caPem,
  };
}

/** A comparable text of a configuration, without the private key (it never changes and must not leak). */
export function configFingerprint(cfg: TunnelConfig): string {
  const { privateKey: _omit, ...rest } = cfg;
  return JSON.stringify(rest);
}
