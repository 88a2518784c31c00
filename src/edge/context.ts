/**
 * What the edge's control-plane operations share: the store, the clock, the
 * notifier, the tunnel port, the policy service and the facts fixed at start
 * (device network, edge address and key, tunnel endpoints, API URL, CA pin).
 */
import type { Clock } from "../clock.ts";
import type { TunnelEndpoint } from "../net/endpoint.ts";
import type { Notifier } from "../notify/mod.ts";
import type { Store } from "../store/mod.ts";
import type { EdgeTunnelPort } from "./dataplane_port.ts";
import type { DlpService } from "./dlp.ts";
import type { PolicyService } from "./policy.ts";
import type { PostureSource } from "./access/posture_source.ts";
import type { DeviceSignal } from "./signal.ts";
import type { EdgeSaas } from "./saas.ts";
import type { WebSecurityService } from "./web_security.ts";
import type { EdgeRegistry } from "../fleet/edge_registry.ts";
import type { MeshPeerView } from "./mesh_port.ts";
import type { ReleaseService } from "./releases.ts";

/** Shared dependencies of the edge control plane. */
export interface EdgeContext {
  store: Store;
  clock: Clock;
  notifier: Notifier;
  tunnel: EdgeTunnelPort;
  policy: PolicyService;
  /** DLP dictionaries, rules, device bundles and incidents. */
  dlp: DlpService;
  /** Microsoft SaaS tenants and their data-at-rest scans. */
  saas: EdgeSaas;
  /** Internet security: URL rules, categories, the web log, inline upload checks. */
  web: WebSecurityService;
  /** Device network, e.g. "100.64.0.0/16". */
  network: string;
  /** The edge's own tunnel address (first host of the network). */
  edgeAddress: string;
  /** The edge's WireGuard public key (base64). */
  edgePublicKey: string;
  /** How devices reach the tunnel. */
  endpoints: TunnelEndpoint[];
  /** The edge API URL written into enrolment keys. */
  apiUrl: string;
  /** SHA-256 (hex) of the edge CA certificate. */
  caSha256: string;
  /** Posture results access decisions use (the same source the policy service has). */
  posture: PostureSource;
  /** Fires with a device id when its client-to-client registration changed. */
  c2cChanged: DeviceSignal;
  /**
   * Fires with a device id when who is behind it changed (a user signed in or
   * out, the user's groups changed): its bundle is rebuilt and its flows are
   * decided again. Enrolment, disable and delete are seen through notifications.
   */
  subjectChanged: DeviceSignal;
  /**
   * The fleet's edge registry: this edge's row and heartbeat, the healthy
   * edges bundles list, every edge for the admin. Heartbeats run once the
   * tunnel does (startEdge); before that the list is empty.
   */
  fleet: EdgeRegistry;
  /** The edge mesh's peers (other edges) and their sessions (set once the tunnel runs). */
  mesh?: () => MeshPeerView[];
  /** Connector releases, update rules and what devices report about updates. */
  releases: ReleaseService;
  /** The data plane's state for diagnostics (set once the tunnel and enforcement run). */
  dataPlaneState?: () => Record<string, unknown>;
  /** The log files in the data directory, for the diagnostics bundle (set by startEdge). */
  logFiles?: () => { name: string; text: string }[];
}
