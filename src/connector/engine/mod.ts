/**
 * The connector engine: the pure state machine (../engine_state.ts) run by
 * the event runner, over injected ports — the edge API client, the tunnel
 * (data plane), network awareness, timers. This module wires the pieces
 * together and keeps the state they share (enrolment, client, policy); each
 * concern lives in its own file beside it:
 *
 * - runner.ts: one event at a time through the machine, then its effects;
 * - notices.ts: what the user and the log are told on each transition;
 * - enrol.ts: enrolment with a key, failure classes, background retries;
 * - policy_sync.ts: the policy in force, fetches, the stream and the poll;
 * - loops.ts over heartbeat.ts, posture_loop.ts, periodic.ts: the background loops;
 * - status.ts: what the engine shows about itself;
 * - c2c.ts: the client-to-client name;
 * - captive_timer.ts, awareness_reactions.ts: captive portals and reachability;
 * - strict_allow.ts: the edge's addresses a traffic block lets through;
 * - tunnel_config.ts: the tunnel configuration from enrolment and policy;
 * - reauth.ts: signing the user in again when their sign-in ended;
 * - edge_choice.ts over ../edge_selector.ts: which of the fleet's edges it uses.
 */
import type { Clock } from "../../clock.ts";
import { systemClock, systemTimers, type Timers } from "../../clock.ts";
import { logger } from "../../log.ts";
import { FailOpenSettings, type PolicyBundle, type ProtectedAction } from "../../policy/types.ts";
import { clockSkewStatus, ClockSkewWatch, DEFAULT_SKEW_TOLERANCE_MS } from "../clock_skew.ts";
import type { StoredEnrollment } from "../../store/connector_state.ts";
import { type AwarenessDecision, EdgeAwareness } from "../awareness.ts";
import type { EdgeApi } from "../edge_api.ts";
import { parseEnrollmentKey } from "../enrollment_key.ts";
import {
  describeState,
  type Effect,
  type EngineEvent,
  type EngineState,
  initialState,
  type StateKind,
  type TransitionResult,
} from "../engine_state.ts";
import type { NetworkChangeInfo } from "../network_port.ts";
import { awarenessReaction } from "./awareness_reactions.ts";
import { CaptiveTimer } from "./captive_timer.ts";
import { C2cRegistrar, deviceFqdn } from "./c2c.ts";
import type { EngineDeps } from "./deps.ts";
import { edgeErrorReaction } from "./edge_errors.ts";
import { type Enrolled, Enroller } from "./enrol.ts";
import { BackgroundLoops } from "./loops.ts";
import { type NoticeStep, sameVerdict, stateChanged, transitionNotices } from "./notices.ts";
import { PolicySync, type PolicyUpdateOutcome } from "./policy_sync.ts";
import { EventRunner } from "./runner.ts";
import { awarenessStatus, type EngineStatus } from "./status.ts";
import { bootstrapUrlOf, edgeAllowList, edgeHosts, resolveHost } from "./strict_allow.ts";
import { EdgeNames } from "./edge_names.ts";
import { Reauth } from "./reauth.ts";
import { every } from "./periodic.ts";
import { configFingerprint, tunnelConfig } from "./tunnel_config.ts";
import { EdgeChoice, type EdgeMove, type EdgeTarget, edgeTarget } from "./edge_choice.ts";

export type { DeviceInfo } from "./enrol.ts";
export type { PolicyUpdateOutcome } from "./policy_sync.ts";
export type { AwarenessStatus, EngineStatus } from "./status.ts";
export type { EngineDeps } from "./deps.ts";

const log = logger("connector.engine");

/** The connector engine: state machine + effects + background loops. */
export class Engine {
  #d: EngineDeps;
  #skew = new ClockSkewWatch();
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #runner: EventRunner;
  readonly #policy: PolicySync;
  readonly #captive: CaptiveTimer;
  readonly #c2c: C2cRegistrar;
  readonly #enroller: Enroller;
  readonly #loops: BackgroundLoops;
  readonly #reauth: Reauth;
  /** Chooses the nearest healthy edge of the fleet and says when to move. */
  readonly #fleet: EdgeChoice;
  #client: EdgeApi | null = null;
  #enrollment: StoredEnrollment | null = null;
  #connectedSince: number | null = null;
  #unsubs: (() => void)[] = [];
  #aware: EdgeAwareness | null = null;
  /** Set while protection is off because of an unreachable edge, until the tunnel is back. */
  #failEpisode = false;
  #lastTunnelConfig: string | null = null;
  /** Edge hosts of the enrolment forgotten at logout: they stay reachable through a block. */
  #lastEdgeHosts: string[] = [];
  /** The addresses of the edge's named endpoints, kept outside the tunnel (edge_names.ts). */
  readonly #edgeNames: EdgeNames;
  /** Ends the engine-lifetime loops (edge name re-resolution). */
  #life: AbortController | null = null;
  /**
   * The tunnel gave up handshaking (no transport answers) though the edge's
   * API may answer: an "edge reachable" then is no reason to leave the fail
   * mode (it would only black-hole traffic until the next give-up). The
   * tunnel keeps trying and reports "up" itself.
   */
  #tunnelGaveUp = false;

  constructor(deps: EngineDeps) {
    this.#d = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#timers = deps.timers ?? systemTimers;
    this.#captive = new CaptiveTimer(this.#timers);
    this.#c2c = new C2cRegistrar({ hub: deps.hub, clock: this.#clock });
    this.#edgeNames = new EdgeNames(deps.resolveHost ?? resolveHost);
    this.#fleet = new EdgeChoice({
      network: deps.network,
      timers: this.#timers,
      clock: this.#clock,
      timing: deps.edgeSelection,
      enrollment: () => this.#enrollment,
      enrolledBootstrapUrl: () => this.#enrolledBootstrapUrl(),
      policy: () => this.#policy.policy,
      onMove: (m) => this.#onEdgeMove(m),
    });
    this.#runner = new EventRunner(initialState(), {
      onTransition: (from, to, event) => this.#onTransition(from, to, event),
      perform: (eff) => this.#perform(eff),
    });
    this.#policy = new PolicySync({
      store: deps.store,
      clock: this.#clock,
      hub: deps.hub,
      client: () => this.#client,
      onSet: (p, refreshChanged) => {
        this.#aware?.updateSettings(p.appProfile.failOpen);
        this.#fleet.sync();
        // Client-to-client turned on, or a new pattern: register again now.
        void this.#c2c.sync(this.#client, p, this.#d.device.hostname);
        this.#d.onForwarding?.(this.state, p);
        // The profile's consent decides whether this host trusts the inspection CA.
        this.#d.trust?.sync(p.inspectionCa).catch((e) =>
          log.warn("Cannot update the trusted inspection CA", { error: (e as Error).message })
        );
        if (this.#loops.running && refreshChanged) {
          this.#loops.stop();
          this.#startLoops();
        }
      },
      onStored: () => this.#syncStrict(),
      onNewVersion: (version) => this.#enqueue({ type: "policy_updated", version }),
    });
    this.#enroller = new Enroller({
      fetchCa: deps.fetchCa,
      makeClient: deps.makeClient,
      signIn: deps.signIn,
      identity: deps.identity,
      device: deps.device,
      store: deps.store,
      clock: this.#clock,
      timers: this.#timers,
      hub: deps.hub,
      retryBackoff: deps.enrollRetryMs,
      key: () => this.#d.enrollmentKey,
      active: () => !this.#runner.stopped,
      onEnrolled: (done) => this.#onEnrolled(done),
      onUnreachable: (reason) =>
        this.#enqueue({ type: "edge_unreachable", mode: this.#failOpen().edgeUnreachable, reason }),
      onFailed: (reason) => this.#enqueue({ type: "enroll_failed", reason }),
      onRetryDue: () => {
        const s = this.#runner.state;
        if (s.kind === "error" && !s.enrolled) this.#enqueue({ type: "enroll_requested" });
      },
    });
    this.#reauth = new Reauth({
      client: () => this.#client,
      required: () => this.#runner.state.kind === "signin_required",
      signedIn: async () => void await this.dispatch({ type: "reauthenticated" }),
      deviceFlow: deps.signIn,
      hub: deps.hub,
      timers: this.#timers,
    });
    this.#loops = new BackgroundLoops({
      timers: this.#timers,
      hub: deps.hub,
      periods: deps,
      collectPosture: deps.collectPosture,
      client: () => this.#client,
      policy: () => this.#policy.policy,
      state: () => this.#runner.state,
      updatePolicy: () => this.updatePolicy(),
      onEdgeError: (e, action) => this.#onEdgeError(e, action),
      onReachable: () => {
        this.#checkSkew();
        this.#aware?.reachable();
        const k = this.#runner.state.kind;
        if (k === "error" || ((k === "fail_open" || k === "fail_closed") && !this.#tunnelGaveUp)) {
          this.#enqueue({ type: "edge_reachable" });
        }
      },
      onHeartbeatFailed: (message) => this.#aware?.failed(`Heartbeat failed: ${message}`),
    });
  }

  /** The current state (a copy). */
  get state(): EngineState {
    return { ...this.#runner.state };
  }

  /** The current policy bundle, or null before the first one. */
  get policy(): PolicyBundle | null {
    return this.#policy.policy;
  }

  /**
   * The edge this device talks to now (API URL, CA, tunnel key and
   * endpoints): the one the selector chose among the fleet's, or the
   * enrolment's own; null while not enrolled. The doctor checks this one.
   */
  get edge(): EdgeTarget | null {
    return this.#fleet.target();
  }

  /** The stored password hash guarding an action, if the policy sets one. */
  passwordHashFor(action: ProtectedAction): string | undefined {
    return this.#policy.policy?.appProfile.passwords[action];
  }

  /** Loads stored state, subscribes to the ports and starts enrolment or refresh. */
  async start(): Promise<void> {
    const { store } = this.#d;
    this.#enrollment = store.getEnrollment();
    this.#policy.restore(store.getPolicy());
    this.#runner.reset(initialState(this.#strictWanted()));
    this.#aware = this.#makeAwareness();
    this.#unsubs.push(this.#d.tunnel.onEvent((e) => {
      if (e.type === "up") {
        this.#tunnelGaveUp = false;
        this.#aware?.reachable();
        this.#enqueue({ type: "tunnel_up", transport: e.transport, reason: e.reason });
      } else if (e.type === "down") {
        this.#enqueue({ type: "tunnel_down", reason: e.reason });
        if (e.edgeSilent) {
          this.#aware?.failed(e.reason);
          this.#fleet.selector.currentFailed(e.reason);
        }
      } else {
        this.#fleet.selector.currentFailed(e.reason ?? "No handshake answer");
        // The tunnel gave up with no transport left (it says why; the edge's
        // API may well answer): only the tunnel coming up, or another
        // network, ends this episode. WireGuard's own 90 s give-up (no
        // reason) keeps the older behaviour: an answering edge retries.
        if (e.reason) this.#tunnelGaveUp = true;
        this.#aware?.failed(e.reason ?? "No handshake answer from the edge on any transport");
        this.#enqueue({
          type: "handshake_timeout",
          mode: this.#failOpen().edgeUnreachable,
          reason: e.reason,
        });
      }
    }));
    this.#unsubs.push(
      this.#d.network.subscribe((change) => void this.#reevaluateNetwork(change)),
    );
    // A named edge may move (DNS): look again now and then, and reroute when it did.
    this.#life = new AbortController();
    every(
      this.#life.signal,
      (this.#d.edgeResolveSec ?? 60) * 1000,
      () => this.#refreshEdgeNames("periodic"),
      { timers: this.#timers },
    );
    const policy = this.#policy.policy;
    if (policy) {
      const verdict = await this.#evaluate(policy);
      this.#enqueue({ type: "network_changed", verdict });
    }
    this.#fleet.sync();
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
    return this.#runner.dispatch(event);
  }

  /**
   * Enrols with a key given at run time — after a logout, or when the
   * connector was started without one. The key is checked first (a bad one
   * is an InputError naming the problem) and never stored.
   */
  async enrollWithKey(key: string): Promise<TransitionResult> {
    parseEnrollmentKey(key);
    if (this.#runner.state.enrolled) {
      return { ok: false, reason: "Cannot enrol: this device is enrolled already; log out first" };
    }
    this.#d = { ...this.#d, enrollmentKey: key };
    this.#enroller.reset();
    return await this.dispatch({ type: "enroll_requested" });
  }

  /**
   * Enrols with the key it has and a sign-in token the user just got in the
   * browser (the edge redirected back to our console with a grant, redeemed
   * for this token): the device is enrolled as that user's.
   */
  async enrollWithSignIn(token: string): Promise<TransitionResult> {
    if (this.#runner.state.enrolled) {
      return { ok: false, reason: "Cannot enrol: this device is enrolled already; log out first" };
    }
    this.#enroller.useSignIn(() => Promise.resolve(token));
    this.#enroller.reset();
    return await this.dispatch({ type: "enroll_requested" });
  }

  /**
   * Signing the user in again after their sign-in on this device ended
   * (`signin_required`): a browser grant or a local user's password, handed
   * over to the edge for the same enrolment.
   */
  get reauth(): Pick<Reauth, "withGrant" | "local" | "renew"> {
    return this.#reauth;
  }

  /** Fetches the policy now (If-None-Match) and applies a new one. */
  updatePolicy(): Promise<PolicyUpdateOutcome> {
    return this.#policy.update();
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
    const s = this.#runner.state;
    const policy = this.#policy.policy;
    return {
      state: s.kind,
      description: describeState(s),
      reason: s.reason ?? null,
      network: s.verdict,
      edge: this.#fleet.target()?.apiUrl ?? null,
      deviceId: this.#enrollment?.deviceId ?? null,
      deviceAddress: this.#enrollment?.address ?? null,
      deviceFqdn: this.#deviceFqdn(),
      clientToClient: this.#c2c.standing(),
      transport: s.kind === "connected" ? s.transport ?? t?.transport ?? null : null,
      endpoint: t?.endpoint ?? null,
      connectedSince: s.kind === "connected" ? this.#connectedSince : null,
      lastHandshake: t?.lastHandshake ?? null,
      rxBytes: t?.rxBytes ?? 0,
      txBytes: t?.txBytes ?? 0,
      policyVersion: policy?.version ?? null,
      policyUpdatedAt: this.#policy.updatedAt,
      clockSkewMs: this.#client?.clockSkewMs ?? null,
      clockSkew: this.#skewStatus(),
      wgPublicKey: this.#d.identity.wgPublicKey,
      fingerprintHash: this.#d.identity.fingerprintHash,
      user: this.#enrollment?.user ?? null,
      awareness: awarenessStatus(this.#aware),
      strictEnforcement: s.strict === true,
      blockedUntil: s.blocked ? (s.blocked === "login" ? "login" : "enrolled") : null,
      edgeSelection: this.#enrollment ? this.#fleet.selector.status() : null,
    };
  }

  /** Stops loops and timers, tears the tunnel down and closes the client. */
  async stop(): Promise<void> {
    if (this.#runner.stopped) return;
    this.#runner.stop();
    this.#life?.abort();
    this.#life = null;
    this.#fleet.selector.stop();
    this.#loops.stop();
    this.#captive.cancel();
    this.#enroller.cancel();
    this.#reauth.stop();
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

  // ---- transitions and effects -------------------------------------------

  /** The skew against the tolerance in force (the policy's, or the default before one). */
  #skewStatus() {
    const sec = this.#policy.policy?.appProfile.clockSkewToleranceSec;
    return clockSkewStatus(
      this.#client?.clockSkewMs ?? null,
      sec === undefined ? DEFAULT_SKEW_TOLERANCE_MS : sec * 1000,
    );
  }

  /** Tells the user once when the skew crosses the tolerance, and once when it is back. */
  #checkSkew(): void {
    const n = this.#skew.observe(this.#skewStatus());
    if (!n) return;
    log[n.severity](n.message, n.data);
    this.#d.hub.raise(n.type, n.severity, n.message, n.data);
  }

  #enqueue(event: EngineEvent): void {
    this.#runner.enqueue(event);
  }

  #emit(steps: NoticeStep[]): void {
    for (const s of steps) {
      if ("log" in s) log[s.log.level](s.log.msg, s.log.data);
      else this.#d.hub.raise(s.notice.type, s.notice.severity, s.notice.message, s.notice.data);
    }
  }

  #onTransition(from: EngineState, to: EngineState, event: EngineEvent): void {
    // Every transition follows an edge answer or its absence: a failed
    // enrolment or sign-in is told its clock cause too, not only heartbeats.
    this.#checkSkew();
    if (to.kind === "connected" && from.kind !== "connected") {
      this.#connectedSince = this.#clock.now();
    }
    if (to.kind !== "connected") this.#connectedSince = null;
    const told = transitionNotices(from, to, event, {
      enrollFailures: this.#enroller.failures,
      failEpisode: this.#failEpisode,
      edgeKnown: () => this.#edgeHosts().length > 0,
    });
    this.#failEpisode = told.failEpisode;
    this.#emit(told.steps);
    this.#d.onForwarding?.(to, this.#policy.policy);
    // A new action on the same network (e.g. "tunnel" → "enforce PAC") changes the routes.
    if (from.verdict?.action !== to.verdict?.action) {
      this.#reconfigure("The forwarding action changed the tunnel configuration").catch((e) =>
        log.warn("Cannot reconfigure the tunnel", { error: (e as Error).message })
      );
    }
    if (!stateChanged(from, to)) return;
    if (to.kind === "signin_required") this.#reauth.entered();
    if (to.enrolled && !this.#loops.running && this.#client) this.#startLoops();
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

  async #perform(eff: Effect): Promise<void> {
    switch (eff.type) {
      case "enroll":
        return void this.#enroller.run();
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
          ? await this.#d.tunnel.setFailMode("blocked", {
            allow: await edgeAllowList(this.#edgeHosts(), this.#d.resolveHost),
          })
          : await this.#d.tunnel.setFailMode(eff.mode);
      case "start_captive_timer":
        return this.#captive.start(eff.minutes, () => {
          this.#enqueue({ type: "captive_expired", then: this.#failOpen().captivePortalExpiry });
        });
      case "cancel_captive_timer":
        return this.#captive.cancel();
      case "apply_policy":
        return await this.#applyPolicy();
    }
  }

  /** Takes in a stored enrolment: its client, policy, loops (via "enrolled") and c2c name. */
  async #onEnrolled(done: Enrolled): Promise<void> {
    const { response: res, payload } = done;
    this.#client?.close();
    this.#client = done.client;
    this.#enrollment = done.enrollment;
    this.#policy.set(res.policy, `"${res.policy.version}"`, done.at);
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
    this.#enqueue({ type: "network_changed", verdict: await this.#evaluate(res.policy) });
    this.#enqueue({ type: "enrolled" });
    // Only now: a policy without strict enforcement lifts a pre-enrolment
    // block after the tunnel was asked up, not before.
    this.#syncStrict();
    void this.#registerC2c();
  }

  async #refresh(): Promise<void> {
    try {
      await this.#policy.fetchNow();
      const policy = this.#policy.policy;
      if (policy) this.#enqueue({ type: "network_changed", verdict: await this.#evaluate(policy) });
      this.#enqueue({ type: "enrolled" });
      void this.#registerC2c();
    } catch (err) {
      this.#onEdgeError(err, "refresh credentials");
    }
  }

  #onEdgeError(err: unknown, action: string): void {
    const r = edgeErrorReaction(err, action, this.#failOpen().edgeUnreachable);
    this.#emit(r.steps);
    this.#enqueue(r.event);
  }

  async #bringUp(): Promise<void> {
    this.#tunnelGaveUp = false;
    await this.#edgeNames.refresh(this.#fleet.namedEndpoints());
    const cfg = this.#tunnelConfig();
    if (!cfg) {
      log.warn("Cannot bring the tunnel up: no enrolment or policy yet");
      return;
    }
    this.#lastTunnelConfig = configFingerprint(cfg);
    await this.#d.tunnel.bringUp(cfg);
  }

  async #forgetEnrollment(): Promise<void> {
    // The edge must stay reachable through a strict-enforcement block, so
    // the user can log in (enrol) again: remember where it was.
    const hosts = this.#edgeHosts();
    if (hosts.length) this.#lastEdgeHosts = hosts;
    this.#loops.stop();
    this.#fleet.selector.reset();
    this.#d.store.clearEnrollment();
    this.#d.identity.setCredential(null);
    this.#d.store.putIdentity(await this.#d.identity.seal());
    this.#client?.close();
    this.#client = null;
    this.#enrollment = null;
    this.#policy.clear();
    this.#d.hub.raise("enrollment_forgotten", "warn", "The device enrolment was removed", {});
  }

  async #applyPolicy(): Promise<void> {
    const policy = this.#policy.policy;
    if (!policy) return;
    try {
      this.#d.onPolicy?.(policy);
    } catch (e) {
      log.warn("Policy listener failed", { error: (e as Error).message });
    }
    const verdict = await this.#evaluate(policy);
    const prev = this.#runner.state.verdict;
    if (!prev || prev.type !== verdict.type || prev.action !== verdict.action) {
      this.#enqueue({ type: "network_changed", verdict });
    } else if (!sameVerdict(prev, verdict)) {
      // Same decision, other reasons (criteria edited): the console and the
      // doctor must explain the policy in force, not the one before.
      this.#enqueue({ type: "network_changed", verdict, restated: true });
    }
    await this.#reconfigure("Policy changed the tunnel configuration");
  }

  /** Routes, MTU or DNS changed while the tunnel runs: reconfigure it (routes as a diff). */
  async #reconfigure(why: string): Promise<void> {
    const k = this.#runner.state.kind;
    // In a fail mode the tunnel keeps trying in the background (its routes are
    // held back by the fail mode): a new policy, e.g. TLS fallback turned on,
    // must reach it, or it would go on trying the old way.
    const tunnelled = k === "connected" || k === "connecting" || k === "fail_open" ||
      k === "fail_closed";
    if (tunnelled && this.#lastTunnelConfig) {
      const cfg = this.#tunnelConfig();
      if (cfg && configFingerprint(cfg) !== this.#lastTunnelConfig) {
        log.info(`${why}: reconfiguring`);
        this.#lastTunnelConfig = configFingerprint(cfg);
        await this.#d.tunnel.bringUp(cfg);
      }
    }
  }

  /** Resolves the edge's named endpoints again; reroutes when their addresses changed. */
  async #refreshEdgeNames(why: string): Promise<void> {
    if (this.#runner.stopped) return;
    if (!(await this.#edgeNames.refresh(this.#fleet.namedEndpoints()))) return;
    await this.#reconfigure(`The edge host resolves to new addresses (${why})`);
  }

  /** Registers the client-to-client name again (on enrolment and reconnect, whatever changed). */
  async #registerC2c(): Promise<void> {
    await this.#c2c.sync(this.#client, this.#policy.policy, this.#d.device.hostname, true);
  }

  async #reevaluateNetwork(change: NetworkChangeInfo): Promise<void> {
    if (this.#runner.stopped) return;
    this.#aware?.networkChanged(change.newNetwork);
    // Another network, another nearest edge: measure them all again.
    this.#fleet.selector.networkChanged();
    if (change.newNetwork) {
      // Another network is a new chance for the tunnel too.
      this.#tunnelGaveUp = false;
      this.#renewClient();
    }
    // Another network may answer the edge's name differently.
    await this.#refreshEdgeNames("network change").catch((e) =>
      log.warn("Cannot re-resolve the edge host", { error: (e as Error).message })
    );
    const policy = this.#policy.policy;
    if (!policy) return;
    try {
      const verdict = await this.#evaluate(policy);
      // A change within the same network that leaves the verdict alone is not news.
      if (change.newNetwork || !sameVerdict(this.#runner.state.verdict, verdict)) {
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
    const hadLoops = this.#loops.running;
    this.#loops.stop();
    this.#client = this.#makeClient(this.#enrollment);
    old.close();
    if (hadLoops) this.#startLoops();
  }

  #evaluate(policy: PolicyBundle) {
    return this.#d.network.evaluate(policy, { bootstrapUrl: this.#bootstrapUrl() ?? undefined });
  }

  #bootstrapUrl(): string | null {
    return this.#fleet.target()?.bootstrapUrl ?? this.#enrolledBootstrapUrl();
  }

  /** The bootstrap URL of the enrolment's edge (the key's, or the default beside its API). */
  #enrolledBootstrapUrl(): string | null {
    return bootstrapUrlOf(this.#d.bootstrapUrl, this.#enrollment);
  }

  /**
   * The selector chose another edge: the API client, the probes and the
   * tunnel go there (the tunnel is brought up anew for the new key and
   * endpoints; the engine sees it come up as usual).
   */
  #onEdgeMove(m: EdgeMove): void {
    log.info(m.message, m.data);
    if (m.notify) this.#d.hub.raise("edge_changed", "info", m.message, m.data);
    this.#renewClient();
    this.#reconfigure(`Moved to edge "${m.to.name}"`).catch((e) =>
      log.warn("Cannot move the tunnel to the new edge", { error: (e as Error).message })
    );
  }

  // ---- network awareness ---------------------------------------------------

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
      active: () => isProbing(this.#runner.state.kind) && this.#bootstrapUrl() !== null,
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
    const r = awarenessReaction(d, this.#runner.state.kind);
    this.#emit(r.steps);
    for (const a of r.actions) {
      if (a.type === "captive_detected") void this.captiveDetected();
      else if (a.type === "captive_cleared") void this.captiveCleared();
      else if (a.type === "cancel_captive_timer") this.#captive.cancel();
      else if (a.event.type === "edge_reachable" && this.#tunnelGaveUp) continue;
      else this.#enqueue(a.event);
    }
  }

  // ---- background loops --------------------------------------------------

  #startLoops(): void {
    if (this.#runner.stopped) return;
    this.#loops.start();
    this.#fleet.selector.start();
  }

  // ---- helpers ------------------------------------------------------------

  #makeClient(e: StoredEnrollment): EdgeApi {
    // The chosen edge's API (its own CA, listed in the bundle the pinned edge sent).
    const t = edgeTarget(this.#fleet.selector.current(), e, this.#enrolledBootstrapUrl() ?? "");
    const c = this.#d.makeClient(t.apiUrl, t.caPem);
    c.setCredentials(this.#d.identity.credential, this.#d.identity.fingerprintHash);
    return c;
  }

  /** Strict enforcement as it should be now: the policy's, or the setting before any policy. */
  #strictWanted(): boolean {
    return this.#policy.policy?.appProfile.failOpen.strictEnforcement ??
      this.#d.strictEnforcement ?? false;
  }

  /** Tells the machine when the policy changed the strict-enforcement setting. */
  #syncStrict(): void {
    const want = this.#strictWanted();
    if (want !== (this.#runner.state.strict === true)) {
      this.#enqueue({ type: "strict_changed", strict: want });
    }
  }

  #edgeHosts(): string[] {
    const base = edgeHosts({
      lastHosts: this.#lastEdgeHosts,
      enrollment: this.#enrollment,
      bootstrapUrl: this.#bootstrapUrl(),
      enrollmentKey: this.#d.enrollmentKey,
    });
    // Every edge of the fleet stays reachable through a block: a move must not be cut off.
    return [...new Set([...base, ...this.#fleet.hosts()])];
  }

  #failOpen(): FailOpenSettings {
    return this.#policy.policy?.appProfile.failOpen ?? FailOpenSettings.parse({});
  }

  #deviceFqdn(): string | null {
    return deviceFqdn(this.#policy.policy, this.#d.device.hostname);
  }

  #tunnelConfig() {
    return tunnelConfig(
      this.#enrollment,
      this.#policy.policy,
      this.#d.identity.wgPrivateKey,
      this.#edgeNames.addresses,
      this.#runner.state.verdict?.action ?? null,
      this.#fleet.target(),
      this.#fleet.hosts(),
    );
  }
}

/** States in which the edge is probed (captive portal, reachability). */
function isProbing(k: StateKind): boolean {
  return k === "connecting" || k === "connected" || k === "captive_portal" ||
    k === "fail_open" || k === "fail_closed";
}
