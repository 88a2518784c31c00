/**
 * The doctor's vocabulary: the hops of the chain it walks (device → local
 * network → firewall → identity provider → edge → the service), the facts
 * the probes gather about each, and the verdict it gives per hop.
 *
 * Facts are plain data so the verdict functions (verdicts.ts) stay pure and
 * table-tested; how a fact is found (a socket, a ping, the engine's state) is
 * the probes' business (src/connector/doctor_probes.ts on a connector).
 */

/** The hops, in the order the doctor walks them. */
export const HOPS = [
  "service",
  "identity",
  "clock",
  "idp",
  "edge_udp",
  "edge_tls",
  "edge_cert",
  "tunnel_device",
  "handshake",
  "forwarding",
  "captive_portal",
  "fail_open",
  "mtu",
  "dns",
  "posture",
  "edge_rtt",
] as const;

/** One hop of the chain. */
export type Hop = typeof HOPS[number];

/**
 * ok: works; warn: works but degraded (counts as a finding); fault: broken
 * here; unknown: the probe could not tell; skipped: does not apply here.
 */
export type HopStatus = "ok" | "warn" | "fault" | "unknown" | "skipped";

/** The doctor's word on one hop. */
export interface Verdict {
  hop: Hop;
  status: HopStatus;
  /** Machine-readable cause, e.g. "udp_blocked" ("ok" when healthy). */
  cause: string;
  /** What was seen, in one or two sentences. */
  evidence: string;
  /** What to do about it (null when nothing needs doing). */
  fix: string | null;
}

/** A TLS endpoint as the probe saw it. */
export interface TlsFacts {
  /** host:port probed. */
  target: string;
  /** TCP connect and TLS handshake completed (whatever the certificate). */
  connected: boolean;
  /** Why not, when not connected. */
  error?: string;
  /** The leaf certificate chains to the pinned edge CA. */
  pinned?: boolean;
  /** Issuer and subject of the presented leaf certificate. */
  issuer?: string;
  subject?: string;
  /** Milliseconds for TCP connect (a round trip). */
  connectMs?: number;
}

/** Everything the probes found; a field left undefined means "could not find out". */
export interface DoctorFacts {
  /** The connector process and its local API. */
  service: { running: boolean; state?: string; description?: string; error?: string };
  identity?: {
    enrolled: boolean;
    deviceId: string | null;
    /** Set when this run discarded a stored identity made on other hardware (a cloned image). */
    replacedReason: string | null;
    /** The state's reason while not enrolled (e.g. the edge refused the credential). */
    lastError: string | null;
  };
  /** Our clock minus the edge's, in ms (null: not measured). */
  clock?: { skewMs: number | null; source: string };
  /** The identity provider users sign in at (null url: none for this device). */
  idp?: {
    url: string | null;
    /** The provider's name as the admin gave it. */
    name?: string;
    /** TCP connect and (https) TLS handshake to the URL's host. */
    tls?: TlsFacts;
    /** The leaf certificate's notAfter (ms); null: no certificate (http). */
    certExpiresAt?: number | null;
  };
  /** The tunnel's settings and how it is doing. */
  tunnel?: {
    /** Our tunnel interface name and whether it exists. */
    device: string;
    devicePresent: boolean;
    /** Engine state (connected, connecting, fail_open, ...). */
    state: string;
    stateReason: string | null;
    transport: "udp" | "tls" | null;
    udpEndpoint: string | null;
    tlsEndpoint: string | null;
    tlsFallback: boolean;
    /** ms since the last completed handshake (null: none yet). */
    handshakeAgeMs: number | null;
    /** The tunnel is expected to be up (the forwarding action says tunnel). */
    wanted: boolean;
  };
  /** The tunnel's TLS endpoint (TCP + TLS, certificate checked against the pin). */
  edgeTls?: TlsFacts;
  /** The edge's API endpoint (control channel). */
  edgeApi?: TlsFacts;
  forwarding?: {
    networkType: string | null;
    action: string | null;
    explanation: string | null;
    unmatched: string[];
    /** Trusted-network host names (hostname→IP criteria) that did not resolve now. */
    unresolvedHosts: string[];
  };
  captive?: { state: string; location: string | null };
  failOpen?: {
    state: string;
    reason: string | null;
    /** The policy's setting for an unreachable edge. */
    mode: "direct" | "blocked";
  };
  /** Don't-fragment probes through the tunnel. */
  mtu?: {
    tunnelMtu: number;
    /** Largest packet (IP bytes) that crossed with DF set; null: none did. */
    largestOk: number | null;
    /** Smallest size that failed, when one did. */
    smallestFailed: number | null;
    target: string;
  };
  /** A DNS query to the edge's resolver through the tunnel. */
  dns?: { server: string | null; answered: boolean; ms?: number; error?: string };
  posture?: { failing: { segment: string; reason: string }[]; passing: number };
  /** Round trip to the edge (ms) and the ZDX score when there is one. */
  rtt?: {
    ms: number | null;
    target: string;
    score?: number | null;
    /** mtr over the direct path to the edge, taken when the round trip is long. */
    path?: {
      target: string;
      hops: number;
      /** Round trip to the last hop (ms). */
      lastMs: number;
      slowest: { hop: number; host: string; addedMs: number } | null;
    };
  };
}

/** The whole report. */
export interface DoctorReport {
  /** "healthy", "fault" (something found) or "unknown" (could not tell). */
  overall: "healthy" | "fault" | "unknown";
  /** 0 healthy, 1 a fault found, 2 could not tell. */
  exitCode: 0 | 1 | 2;
  /** The first hop with a fault or warning, the one to look at. */
  firstFault: Hop | null;
  verdicts: Verdict[];
  checkedAt: string;
  durationMs: number;
}
