/**
 * The connector's fact source for the doctor (src/diag/doctor): what the
 * running engine knows (state, network verdict, handshakes, fail-open, the
 * edge's access answer) plus fresh probes of the path — TLS to the edge's
 * API and tunnel endpoints with the certificate checked against the pin,
 * don't-fragment pings and a DNS query through the tunnel, and a fresh
 * resolution of the trusted-network host names. Probes run in parallel with
 * short timeouts, so a healthy run takes a second or two.
 */
import type { DoctorFacts, FactSource } from "../diag/doctor/mod.ts";
import { type EchoFn, pingEcho, probeMtu } from "../diag/doctor/mtu_probe.ts";
import { probeTls } from "../diag/doctor/tls_probe.ts";
import { probeIdp } from "../diag/doctor/idp_probe.ts";
import { FAR_EDGE_MS } from "../diag/doctor/verdicts.ts";
import { runMtr } from "../zdx/cloud_path.ts";
import type { ConnectorState } from "../store/connector_state.ts";
import type { Engine } from "./engine/mod.ts";
import type { DeviceIdentity } from "./identity.ts";
import { dnsProbe } from "./liveness.ts";
import { resolveHost } from "./network/facts.ts";

/** What the probes read and where they point. */
export interface ConnectorDoctorDeps {
  engine: Engine;
  store: ConnectorState;
  identity: DeviceIdentity;
  /** Our tunnel interface name. */
  tunnelInterface: string;
  /** /sys/class/net (tests point it elsewhere). */
  sysNetPath?: string;
  /** DF echo through the tunnel (default iputils ping). */
  echo?: (target: string, iface: string) => EchoFn;
  now?: () => number;
  /** The device's digital-experience score (null: no probes). */
  zdxScore?: () => number | null;
}

/** States in which no tunnel is expected. */
const NO_TUNNEL = new Set([
  "unenrolled",
  "authenticating",
  "signin_required",
  "disabled",
  "trusted_network",
  "captive_portal",
]);

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ""),
    port: Number(u.port || (u.protocol === "https:" ? 443 : 80)),
  };
}

/** Gathers the doctor's facts on a running connector. */
export class ConnectorFacts implements FactSource {
  #d: ConnectorDoctorDeps;
  constructor(deps: ConnectorDoctorDeps) {
    this.#d = deps;
  }

  /** Engine state plus fresh probes. */
  async gather(): Promise<DoctorFacts> {
    const d = this.#d;
    const now = d.now ?? Date.now;
    const st = d.engine.status();
    const policy = d.engine.policy;
    const enrollment = d.store.getEnrollment();
    const fwd = policy?.appProfile.forwarding;
    const action = st.network?.action ?? null;
    const wanted = !!enrollment && action !== "none" && !NO_TUNNEL.has(st.state);
    // The edge in use now (in a fleet, maybe not the one the device enrolled with).
    const edge = enrollment ? d.engine.edge : null;
    const endpoints = edge?.endpoints ?? enrollment?.endpoints ?? [];
    const caPem = edge?.caPem ?? enrollment?.caPem;
    const udp = endpoints.find((e) => e.transport === "udp");
    const tls = endpoints.find((e) => e.transport === "tls");
    const ep = (e?: { host: string; port: number }) => e ? `${e.host}:${e.port}` : null;
    const replaced = d.store.listNotifications({ type: "identity_replaced", limit: 1 })[0];
    const replacedNow = replaced &&
      (replaced.data as { fingerprintHash?: string } | null)?.fingerprintHash ===
        d.identity.fingerprintHash;

    const api = enrollment ? hostPort(edge?.apiUrl ?? enrollment.apiUrl) : null;
    const tunnelUp = wanted && st.lastHandshake !== null;
    const [edgeApi, edgeTls, devicePresent, mtu, dns, unresolved, idp] = await Promise.all([
      api ? probeTls({ ...api, caPem, timeoutMs: 3000 }) : undefined,
      tls && wanted ? probeTls({ ...tls, caPem, timeoutMs: 3000 }) : undefined,
      exists(`${d.sysNetPath ?? "/sys/class/net"}/${d.tunnelInterface}`),
      tunnelUp && enrollment
        ? probeMtu(
          (d.echo ?? pingEcho)(enrollment.edgeAddress, d.tunnelInterface),
          fwd?.mtu ?? 1420,
          enrollment.edgeAddress,
        )
        : undefined,
      tunnelUp && enrollment
        ? dnsProbe(policy?.edgeDns ?? enrollment.edgeAddress, 1500)().then((ms) => ({
          server: policy?.edgeDns ?? enrollment.edgeAddress,
          answered: ms !== null,
          ms: ms === null ? undefined : Math.round(ms * 10) / 10,
          error: ms === null ? "no answer within 1500 ms" : undefined,
        }))
        : undefined,
      this.#unresolvedTrustedHosts(fwd?.trusted.hostnameIps ?? []),
      // The IdP the device's user signs in at (the edge names it in the bundle; none: machine).
      policy ? probeIdp(policy.identityProvider) : undefined,
    ]);

    // The round trip: the least of a few DNS answers once the other probes are done, so
    // a busy moment (the pings above, a loaded CPU) does not pass for a far edge.
    let rttMs = dns?.ms;
    if (dns?.answered && enrollment) {
      for (let i = 0; i < 3; i++) {
        const again = await dnsProbe(dns.server ?? enrollment.edgeAddress, 1500)();
        if (again !== null) rttMs = Math.min(rttMs ?? again, Math.round(again * 10) / 10);
      }
    }

    // A far edge: mtr over the direct path says where the time goes.
    const rtt = this.#rtt(
      dns && { ...dns, ms: rttMs },
      edgeApi,
      enrollment?.edgeAddress,
      d.zdxScore?.() ?? null,
    );
    if (rtt?.ms && rtt.ms > FAR_EDGE_MS && api) {
      const path = await runMtr(api.host, { count: 3, timeoutMs: 5000 }).catch(() => null);
      const last = path?.hops.at(-1);
      if (path && last) {
        rtt.path = {
          target: path.target,
          hops: path.hops.length,
          lastMs: last.avgMs,
          slowest: path.slowest,
        };
      }
    }

    // Our clock minus the edge's: the API client measures edge minus us on every answer.
    const skew = st.clockSkewMs;
    const failing = (policy?.access ?? []).filter((a) => a.state === "posture_failing");
    return {
      service: { running: true, state: st.state, description: st.description },
      identity: {
        enrolled: !!enrollment && !!d.identity.credential,
        deviceId: enrollment?.deviceId ?? null,
        replacedReason: replacedNow ? replaced.message : null,
        lastError: st.reason,
      },
      clock: skew === null ? { skewMs: null, source: "no answer from the edge API yet" } : {
        skewMs: -skew,
        source: "X-Server-Time of the edge API's answers",
      },
      idp,
      tunnel: {
        device: d.tunnelInterface,
        devicePresent,
        state: st.state,
        stateReason: st.reason,
        transport: st.transport,
        udpEndpoint: ep(udp),
        tlsEndpoint: ep(tls),
        tlsFallback: fwd?.tlsFallback ?? true,
        handshakeAgeMs: st.lastHandshake === null ? null : Math.max(0, now() - st.lastHandshake),
        wanted,
      },
      edgeApi,
      edgeTls,
      forwarding: {
        networkType: st.network?.type ?? null,
        action,
        explanation: st.network?.explanation ?? null,
        unmatched: st.network?.unmatched ?? [],
        unresolvedHosts: st.network?.type === "on_trusted" ? [] : unresolved,
      },
      captive: {
        state: st.awareness?.captive ?? (st.state === "captive_portal" ? "portal" : "clear"),
        location: st.awareness?.portalLocation ?? null,
      },
      failOpen: {
        state: st.state,
        reason: st.reason,
        mode: d.engine.failOpenSettings().edgeUnreachable,
      },
      mtu,
      dns,
      posture: policy
        ? {
          failing: failing.map((a) => ({ segment: a.segment, reason: a.reason })),
          passing: policy.access.filter((a) => a.state === "allowed").length,
        }
        : undefined,
      rtt,
    };
  }

  /**
   * The round trip to the edge: the DNS answer through the tunnel when there
   * is one (the path user traffic takes), else the TCP connect to the API.
   */
  #rtt(
    dns: DoctorFacts["dns"],
    api: DoctorFacts["edgeApi"],
    edgeAddress: string | undefined,
    score: number | null,
  ): DoctorFacts["rtt"] {
    if (dns?.answered && dns.ms !== undefined) {
      return { ms: dns.ms, target: `${edgeAddress} through the tunnel`, score };
    }
    if (api?.connected) return { ms: api.connectMs ?? null, target: api.target, score };
    return undefined;
  }

  /** Trusted-network host names that do not resolve right now. */
  async #unresolvedTrustedHosts(criteria: { hostname: string }[]): Promise<string[]> {
    const names = [...new Set(criteria.map((c) => c.hostname))].slice(0, 16);
    const got = await Promise.all(names.map((h) => resolveHost(h, { timeoutMs: 1500 })));
    return names.filter((_, i) => got[i].length === 0);
  }
}
