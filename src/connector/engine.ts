/**
 * The connector engine runner: feeds events into the pure state machine
 * (engine_state.ts) one at a time and performs the effects it returns, over
 * injected ports — the edge REST client, the tunnel (data plane) and network
 * awareness. It also runs the background work of an enrolled device: policy
 * stream + poll, heartbeat (which detects an unreachable edge), posture.
 *
 * Events are processed strictly in order by one loop. Effects that learn
 * something (enrol, refresh) enqueue follow-up events instead of dispatching
 * recursively, so a transition never runs inside another one.
 */
import type { Clock } from "../clock.ts";
import { systemClock } from "../clock.ts";
import { type PostureReport, reenrollMessage } from "../control/mod.ts";
import type { EnrollmentKeyPayload } from "../control/enrollment_key.ts";
import { logger } from "../log.ts";
import { FailOpenSettings, type PolicyBundle } from "../policy/types.ts";
import { PolicyBundle as PolicyBundleSchema } from "../policy/types.ts";
import { planRoutes } from "../policy/routes.ts";
import type { ConnectorState, StoredEnrollment } from "../store/connector_state.ts";
import { canonicalIp } from "../policy/cidr.ts";
import {
  type EdgeApi,
  EdgeApiError,
  EdgeUnreachableError,
  isCredentialRefused,
  isUnreachable,
} from "./edge_api.ts";
import { bootstrapBase, parseEnrollmentKey } from "./enrollment_key.ts";
import {
  blockedSentence,
  describeState,
  type Effect,
  type EngineEvent,
  type EngineState,
  initialState,
  type NetworkVerdict,
  type StateKind,
  transition,
  type TransitionResult,
} from "./engine_state.ts";
import type { DeviceIdentity } from "./identity.ts";
import type { NetworkChangeInfo, NetworkPort } from "./network_port.ts";
import { type AwarenessDecision, EdgeAwareness } from "./awareness.ts";
import type { BackoffSettings } from "./network/reachability.ts";
import type { NotificationHub } from "./notifications.ts";
import type { TunnelConfig, TunnelPort } from "./tunnel_port.ts";

const log = logger("connector.engine");

/** Facts about this host sent at enrolment. */
export interface DeviceInfo {
  hostname: string;
  os: string;
  osVersion: string;
  connectorVersion: string;
}

/** What the engine needs; everything impure is injected. */
export interface EngineDeps {
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
  /** Enrolment key from the command line, for the first run (or after logout). */
  enrollmentKey?: string | null;
  /** Builds a posture report for the current policy; omitted → no posture reports. */
  collectPosture?: (policy: PolicyBundle) => Promise<PostureReport>;
  clock?: Clock;
  /** Heartbeat period (default 30 s). */
  heartbeatSec?: number;
  /** Posture period (default 300 s). */
  postureSec?: number;
  /** Overrides the policy's refresh period (tests). */
  policyRefreshSec?: number;
  /** Backoff of the policy stream reconnects (default 1–30 s). */
  streamBackoffMs?: { min: number; max: number };
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
  resolveHost?: (host: string) => Promise<string[]>;
}

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
  transport: "udp" | "tls" | null;
  endpoint: string | null;
  connectedSince: number | null;
  lastHandshake: number | null;
  rxBytes: number;
  txBytes: number;
  policyVersion: string | null;
  policyUpdatedAt: number | null;
  clockSkewMs: number | null;
  wgPublicKey: string;
  fingerprintHash: string;
  /** Captive-portal and reachability state (absent on status objects built elsewhere). */
  awareness?: AwarenessStatus | null;
  /** Strict enforcement in force (setting before the first policy, then the policy's). */
  strictEnforcement?: boolean;
  /** While strict enforcement blocks traffic: until the device is enrolled, or until a new login. */
  blockedUntil?: "enrolled" | "login" | null;
}

/** Outcome of a policy update request. */
export type PolicyUpdateOutcome = { status: "updated"; version: string } | {
  status: "unchanged";
  version: string | null;
};

const SEVERITY: Record<StateKind, "info" | "warn" | "error"> = {
  unenrolled: "warn",
  authenticating: "info",
  connecting: "info",
  connected: "info",
  captive_portal: "warn",
  fail_open: "warn",
  fail_closed: "error",
  disabled: "warn",
  trusted_network: "info",
  error: "error",
};

/** The connector engine: state machine + effects + background loops. */
export class Engine {
  #d: EngineDeps;
  #clock: Clock;
  #state: EngineState = initialState();
  #queue: { event: EngineEvent; resolve: (r: TransitionResult) => void }[] = [];
  #processing = false;
  #stopped = false;
  #client: EdgeApi | null = null;
  #enrollment: StoredEnrollment | null = null;
  #policy: PolicyBundle | null = null;
  #policyEtag: string | null = null;
  #policyUpdatedAt: number | null = null;
  #connectedSince: number | null = null;
  #captiveTimer: ReturnType<typeof setTimeout> | null = null;
  #loops: AbortController | null = null;
  #unsubs: (() => void)[] = [];
  #aware: EdgeAwareness | null = null;
  /** Set while protection is off because of an unreachable edge, until the tunnel is back. */
  #failEpisode = false;
  #disabledNotified = false;
  #lastTunnelConfig: string | null = null;
  #updating: Promise<PolicyUpdateOutcome> | null = null;
  /** Edge hosts of the enrolment forgotten at logout: they stay reachable through a block. */
  #lastEdgeHosts: string[] = [];
  #enrollRetry: ReturnType<typeof setTimeout> | null = null;
  #enrollFailures = 0;

  constructor(deps: EngineDeps) {
    this.#d = deps;
    this.#clock = deps.clock ?? systemClock;
  }

  /** The current state (a copy). */
  get state(): EngineState {
    return { ...this.#state };
  }

  /** The current policy bundle, or null before the first one. */
  get policy(): PolicyBundle | null {
    return this.#policy;
  }

  /** The stored password hash guarding an action, if the policy sets one. */
  passwordHashFor(action: "logout" | "disable" | "exit"): string | undefined {
    return this.#policy?.appProfile.passwords[action];
  }

  /** Loads stored state, subscribes to the ports and starts enrolment or refresh. */
  async start(): Promise<void> {
    const { store } = this.#d;
    this.#enrollment = store.getEnrollment();
    const stored = store.getPolicy();
    if (stored) {
      const r = PolicyBundleSchema.safeParse(stored.bundle);
      if (r.success) {
        this.#policy = r.data;
        this.#policyEtag = stored.etag;
        this.#policyUpdatedAt = stored.updatedAt;
      }
    }
    this.#state = initialState(this.#strictWanted());
    this.#aware = this.#makeAwareness();
    this.#unsubs.push(this.#d.tunnel.onEvent((e) => {
      if (e.type === "up") {
        this.#aware?.reachable();
        this.#enqueue({ type: "tunnel_up", transport: e.transport, reason: e.reason });
      } else if (e.type === "down") {
        this.#enqueue({ type: "tunnel_down", reason: e.reason });
        if (e.edgeSilent) this.#aware?.failed(e.reason);
      } else {
        this.#aware?.failed("No handshake answer from the edge on any transport");
        this.#enqueue({ type: "handshake_timeout", mode: this.#failOpen().edgeUnreachable });
      }
    }));
    this.#unsubs.push(
      this.#d.network.subscribe((change) => void this.#reevaluateNetwork(change)),
    );
    if (this.#policy) {
      const verdict = await this.#evaluate(this.#policy);
      this.#enqueue({ type: "network_changed", verdict });
    }
    if (this.#enrollment && this.#d.identity.credential) {
      this.#client = this.#makeClient(this.#enrollment);
      await this.dispatch({ type: "enrollment_restored" });
    } else {
      await this.dispatch({ type: "enroll_requested" });
    }
    this.#aware?.start();
  }

  /** Feeds one event to the machine; resolves with the transition once it and its effects ran. */
  dispatch(event: EngineEvent): Promise<TransitionResult> {
    return new Promise((resolve) => {
      if (this.#stopped) {
        resolve({ ok: false, reason: "Cannot handle events: the engine is stopped" });
        return;
      }
      this.#queue.push({ event, resolve });
      void this.#process();
    });
  }

  /** Fetches the policy now (If-None-Match) and applies a new one. */
  /**
   * Enrols with a key given at run time — after a logout, or when the
   * connector was started without one. The key is checked first (a bad one
   * is an InputError naming the problem) and never stored.
   */
  async enrollWithKey(key: string): Promise<TransitionResult> {
    parseEnrollmentKey(key);
    if (this.#state.enrolled) {
      return { ok: false, reason: "Cannot enrol: this device is enrolled already; log out first" };
    }
    this.#d = { ...this.#d, enrollmentKey: key };
    this.#enrollFailures = 0;
    this.#cancelEnrollRetry();
    return await this.dispatch({ type: "enroll_requested" });
  }

  updatePolicy(): Promise<PolicyUpdateOutcome> {
    // Coalesce: the stream, the poll and the console may ask at once.
    this.#updating ??= this.#doUpdatePolicy().finally(() => (this.#updating = null));
    return this.#updating;
  }

  /** Reports a captive portal (from the network detectors); the window comes from the policy. */
  captiveDetected(): Promise<TransitionResult> {
    return this.dispatch({
      type: "captive_detected",
      windowMin: this.#failOpen().captivePortalWindowMin,
    });
  }

  /** Reports that the captive portal is gone (the user logged in). */
  captiveCleared(): Promise<TransitionResult> {
    return this.dispatch({ type: "captive_cleared" });
  }

  /** The fail-open settings in force (policy, or the defaults before any policy). */
  failOpenSettings(): FailOpenSettings {
    return this.#failOpen();
  }

  /** Status for the local API and the console. */
  status(): EngineStatus {
    const t = this.#d.tunnel.status();
    const s = this.#state;
    return {
      state: s.kind,
      description: describeState(s),
      reason: s.reason ?? null,
      network: s.verdict,
      edge: this.#enrollment?.apiUrl ?? null,
      deviceId: this.#enrollment?.deviceId ?? null,
      deviceAddress: this.#enrollment?.address ?? null,
      deviceFqdn: this.#deviceFqdn(),
      transport: s.kind === "connected" ? s.transport ?? t?.transport ?? null : null,
      endpoint: t?.endpoint ?? null,
      connectedSince: s.kind === "connected" ? this.#connectedSince : null,
      lastHandshake: t?.lastHandshake ?? null,
      rxBytes: t?.rxBytes ?? 0,
      txBytes: t?.txBytes ?? 0,
      policyVersion: this.#policy?.version ?? null,
      policyUpdatedAt: this.#policyUpdatedAt,
      clockSkewMs: this.#client?.clockSkewMs ?? null,
      wgPublicKey: this.#d.identity.wgPublicKey,
      fingerprintHash: this.#d.identity.fingerprintHash,
      awareness: this.#awarenessStatus(),
      strictEnforcement: s.strict === true,
      blockedUntil: s.blocked ? (s.blocked === "login" ? "login" : "enrolled") : null,
    };
  }

  /** Stops loops and timers, tears the tunnel down and closes the client. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const q of this.#queue.splice(0)) {
      q.resolve({ ok: false, reason: "Cannot handle events: the engine is stopped" });
    }
    this.#stopLoops();
    this.#cancelCaptive();
    this.#cancelEnrollRetry();
    this.#aware?.stop();
    for (const u of this.#unsubs.splice(0)) u();
    try {
      await this.#d.tunnel.tearDown();
    } catch (err) {
      log.warn("Cannot tear the tunnel down at stop", { error: (err as Error).message });
    }
    // A stopped connector enforces nothing: whatever blocked traffic (fail-
    // closed, strict enforcement) goes with it, in every state.
    try {
      await this.#d.tunnel.setFailMode(null);
    } catch (err) {
      log.warn("Cannot lift the traffic block at stop", { error: (err as Error).message });
    }
    this.#client?.close();
    log.info("Connector engine stopped");
  }

  // ---- event loop -------------------------------------------------------

  #enqueue(event: EngineEvent): void {
    void this.dispatch(event);
  }

  async #process(): Promise<void> {
    if (this.#processing) return;
    this.#processing = true;
    try {
      while (this.#queue.length && !this.#stopped) {
        const { event, resolve } = this.#queue.shift()!;
        const before = this.#state;
        const r = transition(before, event);
        if (!r.ok) {
          log.debug("Ignored event", { event: event.type, state: before.kind, reason: r.reason });
          resolve(r);
          continue;
        }
        this.#state = r.state;
        this.#onTransition(before, r.state, event);
        for (const eff of r.effects) {
          try {
            await this.#perform(eff);
          } catch (err) {
            log.error("Effect failed", { effect: eff.type, error: (err as Error).message });
          }
        }
        resolve(r);
      }
    } finally {
      this.#processing = false;
    }
  }

  #onTransition(from: EngineState, to: EngineState, event: EngineEvent): void {
    if (to.kind === "connected" && from.kind !== "connected") {
      this.#connectedSince = this.#clock.now();
    }
    if (to.kind !== "connected") this.#connectedSince = null;
    if (event.type === "network_changed" && !sameVerdict(from.verdict, to.verdict)) {
      const v = to.verdict!;
      this.#d.hub.raise(
        "network_changed",
        "info",
        `Network: ${v.explanation}`,
        {
          type: v.type,
          action: v.action,
          matched: v.matched ?? [],
          unmatched: v.unmatched ?? [],
        },
      );
    }
    if (from.kind === to.kind && from.transport === to.transport) return;
    const message = describeState(to);
    const data = {
      from: from.kind,
      to: to.kind,
      event: event.type,
      reason: to.reason ?? null,
      transport: to.transport ?? null,
      /** Strict enforcement: traffic blocked until "enrolled" or "login", else null. */
      blockedUntil: to.blocked ? (to.blocked === "login" ? "login" : "enrolled") : null,
    };
    const level = SEVERITY[to.kind];
    if (this.#isRetryFlip(from, to)) {
      // Background enrolment retries: the first failure was told; the
      // authenticating ↔ error flips of each later attempt are not news.
      log.debug(`State ${from.kind} → ${to.kind}`, data);
    } else {
      log[level === "error" ? "error" : level === "warn" ? "warn" : "info"](
        `State ${from.kind} → ${to.kind}`,
        data,
      );
      this.#d.hub.raise("state_changed", level, message, data);
    }
    if (to.kind === "fail_open" || to.kind === "fail_closed") this.#failEpisode = true;
    if (to.kind === "fail_open") {
      this.#d.hub.raise(
        "security_off",
        "error",
        `Internet security off (fail-open): the edge cannot be reached${
          to.reason ? ` (${to.reason})` : ""
        }. Traffic goes direct, unprotected, until the edge answers again; retrying in the background.`,
        { reason: to.reason ?? null },
      );
    } else if (to.kind === "fail_closed") {
      this.#d.hub.raise(
        "traffic_blocked",
        "error",
        `Traffic blocked (fail-closed): the edge cannot be reached${
          to.reason ? ` (${to.reason})` : ""
        }. Only DNS, DHCP and the edge are allowed until it answers again; retrying in the background.`,
        { reason: to.reason ?? null },
      );
    } else if (this.#failEpisode && to.kind === "connected") {
      this.#failEpisode = false;
      this.#d.hub.raise(
        "protection_restored",
        "info",
        `Protection restored: the tunnel is up again over ${
          to.transport === "tls" ? "TLS" : "UDP"
        }`,
        { from: from.kind },
      );
    } else if (to.kind === "trusted_network" || to.kind === "unenrolled") {
      this.#failEpisode = false;
    }
    this.#notifyStrict(from, to);
    if (to.enrolled && !this.#loops && this.#client) this.#startLoops();
    if (isProbing(to.kind) && !isProbing(from.kind)) this.#aware?.probeNow();
    // The tracker may already know the edge is gone (heartbeats failed while
    // the tunnel still looked up): apply the fail mode as soon as it drops.
    const rs = this.#aware?.reach.state;
    if (to.kind === "connecting" && (rs === "fail_open" || rs === "fail_closed")) {
      this.#enqueue({
        type: "edge_unreachable",
        mode: this.#failOpen().edgeUnreachable,
        reason: this.#aware!.reach.lastReason || "The edge cannot be reached",
      });
    }
  }

  /** True for the state flips of a background enrolment retry after the first failure. */
  #isRetryFlip(from: EngineState, to: EngineState): boolean {
    if (to.enrolled) return false;
    if (from.kind === "error" && to.kind === "authenticating") return this.#enrollFailures > 0;
    if (from.kind === "authenticating" && to.kind === "error") return this.#enrollFailures > 1;
    return false;
  }

  /** Tells the user when strict enforcement starts or stops blocking, and why. */
  #notifyStrict(from: EngineState, to: EngineState): void {
    if (to.blocked && to.blocked !== from.blocked) {
      const allowed = this.#edgeHosts().length > 0
        ? "only DNS, DHCP and the edge are allowed"
        : "only DNS and DHCP are allowed (no edge is known yet: start with an enrolment key)";
      const sentence = blockedSentence(to.blocked);
      log.warn(sentence, { until: to.blocked });
      this.#d.hub.raise("strict_enforcement", "error", `${sentence}: ${allowed}.`, {
        until: to.blocked === "login" ? "login" : "enrolled",
      });
    } else if (from.blocked && !to.blocked) {
      const why = to.enrolled
        ? "the device is enrolled"
        : to.strict
        ? "the block no longer applies"
        : "the policy no longer requires it";
      log.info(`Strict enforcement lifted: ${why}`);
      this.#d.hub.raise("strict_enforcement_lifted", "info", `Traffic unblocked: ${why}.`, {});
    }
  }

  async #perform(eff: Effect): Promise<void> {
    switch (eff.type) {
      case "enroll":
        return void this.#enroll();
      case "refresh":
        return void this.#refresh();
      case "bring_up":
        return await this.#bringUp();
      case "tear_down":
        this.#lastTunnelConfig = null;
        return await this.#d.tunnel.tearDown();
      case "forget_enrollment":
        return await this.#forgetEnrollment();
      case "set_fail_mode":
        return eff.mode === "blocked"
          ? await this.#d.tunnel.setFailMode("blocked", { allow: await this.#edgeAllowList() })
          : await this.#d.tunnel.setFailMode(eff.mode);
      case "start_captive_timer":
        this.#cancelCaptive();
        this.#captiveTimer = setTimeout(() => {
          this.#captiveTimer = null;
          this.#enqueue({ type: "captive_expired", then: this.#failOpen().captivePortalExpiry });
        }, eff.minutes * 60_000);
        return;
      case "cancel_captive_timer":
        return this.#cancelCaptive();
      case "apply_policy":
        return await this.#applyPolicy();
    }
  }

  // ---- effects ----------------------------------------------------------

  async #enroll(): Promise<void> {
    const keyText = this.#d.enrollmentKey;
    if (!keyText) {
      this.#enqueue({
        type: "enroll_failed",
        reason: "No enrolment key: start the connector with `portcullis connect KEY`",
      });
      return;
    }
    try {
      const payload = parseEnrollmentKey(keyText);
      const caPem = await this.#d.fetchCa(payload);
      const client = this.#d.makeClient(payload.u, caPem);
      const { identity, device } = this.#d;
      // Signed with our signing key: if this hardware is enrolled already, the
      // edge hands its identity back only to the holder of that key.
      const proof = btoa(String.fromCharCode(
        ...await identity.sign(new TextEncoder().encode(
          reenrollMessage(
            identity.fingerprintHash,
            identity.wgPublicKey,
            identity.signingPublicKey,
          ),
        )),
      ));
      const res = await client.enroll({
        proof,
        key: payload.s,
        hostname: device.hostname,
        os: device.os,
        osVersion: device.osVersion,
        connectorVersion: device.connectorVersion,
        fingerprint: identity.fingerprint,
        wgPublicKey: identity.wgPublicKey,
        signingPublicKey: identity.signingPublicKey,
      });
      identity.setCredential(res.credential);
      const enrollment: StoredEnrollment = {
        deviceId: res.deviceId,
        apiUrl: payload.u,
        bootstrapUrl: bootstrapBase(payload),
        caPem,
        address: res.address,
        network: res.network,
        edgeAddress: res.edgeAddress,
        edgePublicKey: res.edgePublicKey,
        endpoints: res.endpoints,
        user: res.user,
        group: res.group,
        enrolledAt: this.#clock.now(),
      };
      const now = this.#clock.now();
      this.#d.store.putEnrollment(enrollment, await identity.seal(), {
        version: res.policy.version,
        etag: `"${res.policy.version}"`,
        bundle: res.policy,
        updatedAt: now,
      });
      client.setCredentials(res.credential, identity.fingerprintHash);
      this.#client?.close();
      this.#client = client;
      this.#enrollment = enrollment;
      this.#setPolicy(res.policy, `"${res.policy.version}"`, now);
      log.info("Enrolled with the edge", {
        deviceId: res.deviceId,
        address: res.address,
        edge: payload.u,
      });
      this.#d.hub.raise("enrolled", "info", `Enrolled as device ${res.deviceId} (${res.address})`, {
        deviceId: res.deviceId,
        address: res.address,
        edge: payload.u,
      });
      this.#enrollFailures = 0;
      this.#enqueue({
        type: "network_changed",
        verdict: await this.#evaluate(res.policy),
      });
      this.#enqueue({ type: "enrolled" });
      // Only now: a policy without strict enforcement lifts a pre-enrolment
      // block after the tunnel was asked up, not before.
      this.#syncStrict();
      void this.#registerC2c();
    } catch (err) {
      const e = err as Error;
      const retry = isUnreachable(err);
      if (this.#enrollFailures === 0 || !retry) {
        log.error("Cannot enrol with the edge", { error: e.message });
        this.#d.hub.raise(
          "enroll_failed",
          "error",
          retry ? `${e.message}; retrying in the background` : e.message,
          { code: (err as { code?: string }).code ?? null },
        );
      } else {
        log.debug("Cannot enrol with the edge", { error: e.message });
      }
      if (retry) {
        this.#enrollFailures++;
        this.#enqueue({
          type: "edge_unreachable",
          mode: this.#failOpen().edgeUnreachable,
          reason: e.message,
        });
        this.#scheduleEnrollRetry();
      } else {
        this.#enrollFailures = 0;
        this.#enqueue({ type: "enroll_failed", reason: e.message });
      }
    }
  }

  async #refresh(): Promise<void> {
    try {
      await this.#doUpdatePolicy();
      if (this.#policy) {
        this.#enqueue({
          type: "network_changed",
          verdict: await this.#evaluate(this.#policy),
        });
      }
      this.#enqueue({ type: "enrolled" });
      void this.#registerC2c();
    } catch (err) {
      this.#onEdgeError(err, "refresh credentials");
    }
  }

  #onEdgeError(err: unknown, action: string): void {
    const e = err as Error;
    if (isCredentialRefused(err)) {
      log.error(`Cannot ${action}: the edge refused the device credential`, { error: e.message });
      this.#d.hub.raise("credential_rejected", "error", e.message, {
        code: (err as EdgeApiError).code,
      });
      this.#enqueue({ type: "credential_rejected", reason: e.message });
    } else if (isUnreachable(err)) {
      log.warn(`Cannot ${action}: edge unreachable`, { error: e.message });
      this.#enqueue({
        type: "edge_unreachable",
        mode: this.#failOpen().edgeUnreachable,
        reason: e.message,
      });
    } else {
      log.error(`Cannot ${action}`, { error: e.message });
      this.#enqueue({ type: "enroll_failed", reason: e.message });
    }
  }

  async #bringUp(): Promise<void> {
    const cfg = this.#tunnelConfig();
    if (!cfg) {
      log.warn("Cannot bring the tunnel up: no enrolment or policy yet");
      return;
    }
    this.#lastTunnelConfig = fingerprintConfig(cfg);
    await this.#d.tunnel.bringUp(cfg);
  }

  async #forgetEnrollment(): Promise<void> {
    // The edge must stay reachable through a strict-enforcement block, so
    // the user can log in (enrol) again: remember where it was.
    const hosts = this.#edgeHosts();
    if (hosts.length) this.#lastEdgeHosts = hosts;
    this.#stopLoops();
    this.#d.store.clearEnrollment();
    this.#d.identity.setCredential(null);
    this.#d.store.putIdentity(await this.#d.identity.seal());
    this.#client?.close();
    this.#client = null;
    this.#enrollment = null;
    this.#policy = null;
    this.#policyEtag = null;
    this.#policyUpdatedAt = null;
    this.#d.hub.raise("enrollment_forgotten", "warn", "The device enrolment was removed", {});
  }

  async #applyPolicy(): Promise<void> {
    if (!this.#policy) return;
    const verdict = await this.#evaluate(this.#policy);
    const prev = this.#state.verdict;
    if (!prev || prev.type !== verdict.type || prev.action !== verdict.action) {
      this.#enqueue({ type: "network_changed", verdict });
    }
    // Routes, MTU or DNS changed while the tunnel runs: reconfigure it.
    const k = this.#state.kind;
    if ((k === "connected" || k === "connecting") && this.#lastTunnelConfig) {
      const cfg = this.#tunnelConfig();
      if (cfg && fingerprintConfig(cfg) !== this.#lastTunnelConfig) {
        log.info("Policy changed the tunnel configuration: reconfiguring");
        this.#lastTunnelConfig = fingerprintConfig(cfg);
        await this.#d.tunnel.bringUp(cfg);
      }
    }
  }

  async #doUpdatePolicy(): Promise<PolicyUpdateOutcome> {
    if (!this.#client) throw new EdgeUnreachableError("Cannot fetch policy: not enrolled");
    const r = await this.#client.fetchPolicy(this.#policy ? this.#policyEtag : null);
    if (r.status === "unchanged") {
      return { status: "unchanged", version: this.#policy?.version ?? null };
    }
    const now = this.#clock.now();
    const old = this.#policy?.version ?? null;
    this.#d.store.putPolicy({
      version: r.policy.version,
      etag: r.etag,
      bundle: r.policy,
      updatedAt: now,
    });
    this.#setPolicy(r.policy, r.etag, now);
    this.#syncStrict();
    if (old !== r.policy.version) {
      log.info("Policy updated", { from: old, to: r.policy.version });
      this.#d.hub.raise("policy_updated", "info", `Policy updated to version ${r.policy.version}`, {
        from: old,
        to: r.policy.version,
      });
      this.#enqueue({ type: "policy_updated", version: r.policy.version });
    }
    return { status: "updated", version: r.policy.version };
  }

  #setPolicy(p: PolicyBundle, etag: string | null, at: number): void {
    const oldRefresh = this.#policy?.appProfile.policyRefreshSec;
    this.#policy = p;
    this.#policyEtag = etag;
    this.#policyUpdatedAt = at;
    this.#aware?.updateSettings(p.appProfile.failOpen);
    if (this.#loops && oldRefresh !== p.appProfile.policyRefreshSec) {
      this.#stopLoops();
      this.#startLoops();
    }
  }

  async #registerC2c(): Promise<void> {
    const fqdn = this.#deviceFqdn();
    if (!fqdn || !this.#client) return;
    try {
      const r = await this.#client.registerC2c(fqdn);
      if (!r.valid) {
        this.#d.hub.raise(
          "c2c_invalid",
          "warn",
          `Client-to-client name ${fqdn} refused: ${r.reason}`,
          {
            fqdn,
          },
        );
      }
    } catch (err) {
      log.warn("Cannot register for client-to-client", { fqdn, error: (err as Error).message });
    }
  }

  async #reevaluateNetwork(change: NetworkChangeInfo): Promise<void> {
    if (this.#stopped) return;
    this.#aware?.networkChanged(change.newNetwork);
    if (change.newNetwork) this.#renewClient();
    if (!this.#policy) return;
    try {
      const verdict = await this.#evaluate(this.#policy);
      // A change within the same network that leaves the verdict alone is not news.
      if (change.newNetwork || !sameVerdict(this.#state.verdict, verdict)) {
        this.#enqueue({ type: "network_changed", verdict });
      }
    } catch (err) {
      log.warn("Cannot evaluate the network", { error: (err as Error).message });
    }
  }

  /**
   * After a move, pooled connections to the edge belong to an address this
   * host no longer has; requests on them would hang until they time out.
   * A fresh client (and fresh loops: stream, poll, heartbeat) starts clean.
   */
  #renewClient(): void {
    if (!this.#client || !this.#enrollment) return;
    const old = this.#client;
    const hadLoops = this.#loops !== null;
    this.#stopLoops();
    this.#client = this.#makeClient(this.#enrollment);
    old.close();
    if (hadLoops) this.#startLoops();
  }

  #evaluate(policy: PolicyBundle) {
    return this.#d.network.evaluate(policy, { bootstrapUrl: this.#bootstrapUrl() ?? undefined });
  }

  /** The edge's plain-HTTP bootstrap URL (captive probe, egress address). */
  #bootstrapUrl(): string | null {
    if (this.#d.bootstrapUrl) return this.#d.bootstrapUrl;
    if (this.#enrollment?.bootstrapUrl) return this.#enrollment.bootstrapUrl;
    // Enrolments stored before the key's bootstrap URL was kept: the default port.
    const api = this.#enrollment?.apiUrl;
    if (!api) return null;
    try {
      return `http://${new URL(api).hostname}:8081`;
    } catch {
      return null;
    }
  }

  #makeAwareness(): EdgeAwareness {
    const network = this.#d.network;
    const probe = network.probeEdge
      ? () => {
        const url = this.#bootstrapUrl();
        return url
          ? network.probeEdge!(url)
          : Promise.resolve({ kind: "unreachable" as const, detail: "Not enrolled yet" });
      }
      : null;
    return new EdgeAwareness({
      settings: this.#failOpen(),
      probe,
      active: () => isProbing(this.#state.kind) && this.#bootstrapUrl() !== null,
      onDecision: (d) => this.#onAwareness(d),
      clock: this.#clock,
      idleProbeMs: this.#d.probeIdleSec !== undefined ? this.#d.probeIdleSec * 1000 : undefined,
      portalProbeMs: this.#d.probePortalSec !== undefined
        ? this.#d.probePortalSec * 1000
        : undefined,
      backoff: this.#d.reachBackoff,
    });
  }

  #onAwareness(d: AwarenessDecision): void {
    const hub = this.#d.hub;
    switch (d.type) {
      case "portal_detected": {
        const where = d.location ? `; the login page is ${d.location}` : "";
        hub.raise(
          "captive_portal",
          "warn",
          `Sign in to the network: a captive portal is in the way (${d.detail}${where}). ` +
            `Protection is paused for up to ${d.windowMin} min so you can reach the login page.`,
          { location: d.location ?? null, windowMin: d.windowMin, detail: d.detail },
        );
        log.warn("Captive portal detected", { detail: d.detail, location: d.location });
        void this.captiveDetected();
        return;
      }
      case "portal_cleared":
        hub.raise(
          "captive_portal_cleared",
          "info",
          `Signed in: the captive portal let us through after ${
            Math.round(d.heldMs / 1000)
          } s; protection resumes`,
          { heldMs: Math.round(d.heldMs) },
        );
        log.info("Captive portal cleared", { heldMs: Math.round(d.heldMs) });
        void this.captiveCleared();
        return;
      case "window_expired":
        hub.raise(
          "captive_portal_expired",
          "warn",
          d.action === "fail_open"
            ? "The captive-portal window ended before sign-in: failing open, as the profile says"
            : "The captive-portal window ended before sign-in: protection is enforced again, as the profile says",
          { action: d.action },
        );
        this.#cancelCaptive();
        this.#enqueue({ type: "captive_expired", then: d.action });
        return;
      case "edge_unreachable":
        log.warn("Edge unreachable", { failures: d.failures, reason: d.reason });
        if (this.#state.kind === "connected") return; // a working tunnel says otherwise
        this.#enqueue({
          type: "edge_unreachable",
          mode: d.action === "fail_open" ? "direct" : "blocked",
          reason: `no answer to ${d.failures} attempts in a row: ${d.reason}`,
        });
        return;
      case "edge_recovered": {
        const k = this.#state.kind;
        if (d.from !== "retrying") {
          hub.raise(
            "edge_reachable",
            "info",
            `The edge answers again after ${Math.round(d.downMs / 1000)} s unreachable`,
            { downMs: Math.round(d.downMs), from: d.from },
          );
        }
        if (k === "fail_open" || k === "fail_closed" || k === "error") {
          this.#enqueue({ type: "edge_reachable" });
        }
        return;
      }
    }
  }

  #awarenessStatus(): AwarenessStatus | null {
    const a = this.#aware;
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

  // ---- background loops --------------------------------------------------

  #startLoops(): void {
    if (this.#stopped || !this.#client) return;
    const ac = new AbortController();
    this.#loops = ac;
    const client = this.#client;
    void client.followPolicy({
      signal: ac.signal,
      onVersion: (v) => {
        if (v !== this.#policy?.version) {
          void this.updatePolicy().catch((e) => this.#onEdgeError(e, "fetch policy"));
        }
      },
      onError: (e) => {
        log.debug("Policy stream interrupted", { error: e.message });
        if (e instanceof EdgeApiError && e.code === "device_disabled") {
          this.#onDeviceDisabled(e.message);
        }
      },
      onRevoked: (reason) => {
        log.warn("The edge revoked this device", { reason });
        if (reason === "device_disabled") {
          this.#onDeviceDisabled("The administrator disabled this device");
        }
        // A deleted device: the next fetch gets 401 and forgets the enrolment.
        void this.updatePolicy().catch((e) => this.#onEdgeError(e, "fetch policy"));
      },
      minBackoffMs: this.#d.streamBackoffMs?.min,
      maxBackoffMs: this.#d.streamBackoffMs?.max,
    }).catch((e) => {
      if (!ac.signal.aborted) this.#onEdgeError(e, "follow policy changes");
    });
    const refreshSec = this.#d.policyRefreshSec ?? this.#policy?.appProfile.policyRefreshSec ?? 60;
    this.#every(ac.signal, refreshSec * 1000, () =>
      this.updatePolicy().then(() => {}, (e) => {
        if (e instanceof EdgeApiError && (e.status === 401 || e.status === 403)) {
          this.#onEdgeError(e, "fetch policy");
        }
      }));
    this.#every(ac.signal, (this.#d.heartbeatSec ?? 30) * 1000, () => this.#heartbeat(), true);
    if (this.#d.collectPosture) {
      this.#every(ac.signal, (this.#d.postureSec ?? 300) * 1000, () => this.#posture(), true);
    }
  }

  #stopLoops(): void {
    this.#loops?.abort();
    this.#loops = null;
  }

  #every(signal: AbortSignal, ms: number, fn: () => Promise<void>, soon = false): void {
    let t: ReturnType<typeof setTimeout> | null = null;
    const tick = async () => {
      if (signal.aborted) return;
      try {
        await fn();
      } catch (err) {
        log.debug("Periodic task failed", { error: (err as Error).message });
      }
      if (!signal.aborted) t = setTimeout(tick, ms);
    };
    t = setTimeout(tick, soon ? Math.min(ms, 1000) : ms);
    signal.addEventListener("abort", () => t !== null && clearTimeout(t), { once: true });
  }

  async #heartbeat(): Promise<void> {
    if (!this.#client) return;
    const s = this.#state;
    try {
      await this.#client.heartbeat({
        state: s.kind,
        transport: s.kind === "connected" ? s.transport ?? null : null,
        clockSkewMs: this.#client.clockSkewMs ?? undefined,
      });
      this.#aware?.reachable();
      this.#disabledNotified = false;
      const k = this.#state.kind;
      if (k === "fail_open" || k === "fail_closed" || k === "error") {
        this.#enqueue({ type: "edge_reachable" });
      }
    } catch (err) {
      if (isCredentialRefused(err)) return this.#onEdgeError(err, "send a heartbeat");
      if (err instanceof EdgeApiError && err.code === "device_disabled") {
        return this.#onDeviceDisabled(err.message);
      }
      if (!isUnreachable(err)) throw err;
      log.warn("Heartbeat failed", { error: (err as Error).message });
      this.#aware?.failed(`Heartbeat failed: ${(err as Error).message}`);
    }
  }

  #onDeviceDisabled(message: string): void {
    if (this.#disabledNotified) return;
    this.#disabledNotified = true;
    this.#d.hub.raise("device_disabled", "error", message, {});
  }

  async #posture(): Promise<void> {
    if (!this.#client || !this.#policy || !this.#d.collectPosture) return;
    const report = await this.#d.collectPosture(this.#policy);
    await this.#client.reportPosture(report);
  }

  // ---- helpers ------------------------------------------------------------

  #makeClient(e: StoredEnrollment): EdgeApi {
    const c = this.#d.makeClient(e.apiUrl, e.caPem);
    c.setCredentials(this.#d.identity.credential, this.#d.identity.fingerprintHash);
    return c;
  }

  /** Strict enforcement as it should be now: the policy's, or the setting before any policy. */
  #strictWanted(): boolean {
    return this.#policy?.appProfile.failOpen.strictEnforcement ??
      this.#d.strictEnforcement ?? false;
  }

  /** Tells the machine when the policy changed the strict-enforcement setting. */
  #syncStrict(): void {
    const want = this.#strictWanted();
    if (want !== (this.#state.strict === true)) {
      this.#enqueue({ type: "strict_changed", strict: want });
    }
  }

  #scheduleEnrollRetry(): void {
    if (this.#stopped || !this.#d.enrollmentKey) return;
    const b = this.#d.enrollRetryMs ?? { min: 1000, max: 30_000 };
    const ms = Math.min(b.max, b.min * 2 ** Math.min(this.#enrollFailures - 1, 20));
    this.#cancelEnrollRetry();
    this.#enrollRetry = setTimeout(() => {
      this.#enrollRetry = null;
      if (this.#state.kind === "error" && !this.#state.enrolled) {
        this.#enqueue({ type: "enroll_requested" });
      }
    }, ms);
  }

  #cancelEnrollRetry(): void {
    if (this.#enrollRetry !== null) clearTimeout(this.#enrollRetry);
    this.#enrollRetry = null;
  }

  /**
   * Hosts (names or addresses) of the edge this device knows: the enrolment's
   * API, bootstrap and tunnel endpoints, the enrolment key's, and those of
   * an enrolment forgotten at logout.
   */
  #edgeHosts(): string[] {
    const hosts = new Set<string>(this.#lastEdgeHosts);
    const add = (url: string | null | undefined) => {
      if (!url) return;
      try {
        hosts.add(new URL(url).hostname);
      } catch { /* not a URL: nothing to allow */ }
    };
    const e = this.#enrollment;
    if (e) {
      add(e.apiUrl);
      for (const x of e.endpoints) hosts.add(x.host);
    }
    add(this.#bootstrapUrl());
    if (this.#d.enrollmentKey) {
      try {
        const p = parseEnrollmentKey(this.#d.enrollmentKey);
        add(p.u);
        add(bootstrapBase(p));
      } catch { /* a bad key fails enrolment with its own message */ }
    }
    return [...hosts].map((h) => h.replace(/^\[|\]$/g, "")).filter(Boolean);
  }

  /** The edge's addresses, resolved, for the allow-list of a traffic block. */
  async #edgeAllowList(): Promise<string[]> {
    const out = new Set<string>();
    for (const h of this.#edgeHosts()) {
      const ip = canonicalIp(h);
      if (ip) {
        out.add(ip);
        continue;
      }
      try {
        const resolve = this.#d.resolveHost ?? resolveHost;
        for (const a of await resolve(h)) {
          const c = canonicalIp(a);
          if (c) out.add(c);
        }
      } catch (err) {
        log.warn(`Cannot resolve edge host "${h}" for the allow-list`, {
          error: (err as Error).message,
        });
      }
    }
    return [...out];
  }

  #failOpen(): FailOpenSettings {
    return this.#policy?.appProfile.failOpen ?? FailOpenSettings.parse({});
  }

  #cancelCaptive(): void {
    if (this.#captiveTimer !== null) clearTimeout(this.#captiveTimer);
    this.#captiveTimer = null;
  }

  #deviceFqdn(): string | null {
    const c2c = this.#policy?.clientToClient;
    if (!c2c?.enabled) return null;
    const host = this.#d.device.hostname.split(".")[0].toLowerCase();
    return `${host}.${c2c.domain}`;
  }

  #tunnelConfig(): TunnelConfig | null {
    const e = this.#enrollment;
    const p = this.#policy;
    if (!e || !p) return null;
    const fwd = p.appProfile.forwarding;
    const edgeAddresses = e.endpoints.map((x) => x.host).filter((h) => /^[0-9.]+$|:/.test(h));
    return {
      address: e.address,
      network: e.network,
      edgeAddress: e.edgeAddress,
      edgePublicKey: e.edgePublicKey,
      endpoints: e.endpoints,
      mtu: fwd.mtu,
      routes: planRoutes({ profile: p.appProfile, edgeAddresses }),
      privateKey: this.#d.identity.wgPrivateKey,
      udpTimeoutSec: fwd.udpTimeoutSec,
      tlsFallback: fwd.tlsFallback,
      dns: p.edgeDns ? { server: p.edgeDns, domains: p.edgeDnsDomains } : null,
      caPem: e.caPem,
    };
  }
}

/** A host's A and AAAA addresses (DNS stays allowed while traffic is blocked). */
async function resolveHost(host: string): Promise<string[]> {
  const opts = { signal: AbortSignal.timeout(3000) };
  const [v4, v6] = await Promise.all([
    Deno.resolveDns(host, "A", opts).catch(() => [] as string[]),
    Deno.resolveDns(host, "AAAA", opts).catch(() => [] as string[]),
  ]);
  return [...v4, ...v6];
}

/** States in which the edge is probed (captive portal, reachability). */
function isProbing(k: StateKind): boolean {
  return k === "connecting" || k === "connected" || k === "captive_portal" ||
    k === "fail_open" || k === "fail_closed";
}

function sameVerdict(a: NetworkVerdict | null, b: NetworkVerdict | null): boolean {
  return a?.type === b?.type && a?.action === b?.action && a?.explanation === b?.explanation;
}

function fingerprintConfig(cfg: TunnelConfig): string {
  const { privateKey: _omit, ...rest } = cfg;
  return JSON.stringify(rest);
}
