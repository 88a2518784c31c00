/**
 * What the engine is built from: its ports (store, identity, tunnel, network,
 * notifications, the edge API), the facts about this device, and the
 * settings of its timers. Everything impure is injected, so each can be a
 * fake in tests.
 */
import type { Clock, Timers } from "../../clock.ts";
import type { EnrollmentKeyPayload } from "../../control/enrollment_key.ts";
import type { PolicyBundle } from "../../policy/types.ts";
import type { EngineState } from "../engine_state.ts";
import type { ConnectorState } from "../../store/connector_state.ts";
import type { EdgeApi } from "../edge_api.ts";
import type { DeviceIdentity } from "../identity.ts";
import type { NetworkPort } from "../network_port.ts";
import type { BackoffSettings } from "../network/reachability.ts";
import type { NotificationHub } from "../notifications.ts";
import type { TunnelPort } from "../tunnel_port.ts";
import type { DeviceInfo } from "./enrol.ts";
import type { EdgeSelectorTiming } from "../edge_selector.ts";
import type { LoopPeriods } from "./loops.ts";
import type { CollectPosture } from "./posture_loop.ts";
import type { ResolveHost } from "./strict_allow.ts";

/** What the engine needs; everything impure is injected. */
export interface EngineDeps extends LoopPeriods {
  store: ConnectorState;
  identity: DeviceIdentity;
  tunnel: TunnelPort;
  network: NetworkPort;
  hub: NotificationHub;
  /** Makes an edge client for a base URL and pinned CA (credentials are set by the engine). */
  makeClient: (apiUrl: string, caPem: string) => EdgeApi;
  /** Fetches and checks the edge CA named by an enrolment key. */
  fetchCa: (p: EnrollmentKeyPayload) => Promise<string>;
  device: DeviceInfo;
  /**
   * Told the state and policy after every transition and policy change, for
   * what follows the forwarding decision outside the engine (the local proxy).
   */
  onForwarding?: (state: EngineState, policy: PolicyBundle | null) => void;
  /** Where the SSL inspection CA the policy carries is installed (and removed from). */
  trust?: { sync(ca: PolicyBundle["inspectionCa"]): Promise<void> };
  /** Enrolment key from the command line, for the first run (or after logout). */
  enrollmentKey?: string | null;
  /** Signs the user in before enrolling (the token enrols the device as theirs). */
  signIn?: (client: EdgeApi) => Promise<string>;
  /** Builds a posture report for the current policy; omitted → no posture reports. */
  collectPosture?: CollectPosture;
  clock?: Clock;
  /** Timers of the engine's own waits (loops, retries, the captive window); default the real ones. */
  timers?: Timers;
  /** Captive-portal / reachability probe interval while all is well (default 60 s). */
  probeIdleSec?: number;
  /** Probe interval while a captive portal holds us (default 3 s). */
  probePortalSec?: number;
  /** Backoff of the background attempts to reach an unreachable edge (default 1–30 s). */
  reachBackoff?: Partial<BackoffSettings>;
  /** The edge's plain-HTTP bootstrap URL; default http://<API host>:8081. */
  bootstrapUrl?: string;
  /**
   * Strict enforcement before the first policy arrives (connector setting):
   * traffic is blocked until the device is enrolled. From the first policy
   * on, the policy's `failOpen.strictEnforcement` decides.
   */
  strictEnforcement?: boolean;
  /** Backoff of enrolment retries while the edge cannot be reached (default 1–30 s). */
  enrollRetryMs?: { min: number; max: number };
  /** Resolves an edge host name to addresses for the block's allow-list (default: DNS A + AAAA). */
  resolveHost?: ResolveHost;
  /** How often a named edge host is resolved again (default 60 s; also on every network change). */
  edgeResolveSec?: number;
  /** Timing of the edge selection (measurement period, liveness probes); default edge_selector.ts. */
  edgeSelection?: Partial<EdgeSelectorTiming>;
  /** Called with each policy the engine applies (the connector sets its log level from it). */
  onPolicy?: (policy: PolicyBundle) => void;
}
