import assert from "node:assert/strict";
import {
  blockedSentence,
  describeState,
  type Effect,
  type EngineEvent,
  type EngineState,
  initialState,
  type NetworkVerdict,
  STATE_KINDS,
  type StateKind,
  transition,
} from "../../src/connector/engine_state.ts";

const TUNNEL: NetworkVerdict = { type: "off_trusted", action: "tunnel", explanation: "off" };
const NONE: NetworkVerdict = { type: "on_trusted", action: "none", explanation: "on" };

/** A representative state of each kind. */
const S: Record<StateKind, EngineState> = {
  unenrolled: { kind: "unenrolled", enrolled: false, verdict: TUNNEL },
  authenticating: { kind: "authenticating", enrolled: true, verdict: TUNNEL, phase: "refreshing" },
  connecting: { kind: "connecting", enrolled: true, verdict: TUNNEL },
  connected: { kind: "connected", enrolled: true, verdict: TUNNEL, transport: "udp" },
  captive_portal: { kind: "captive_portal", enrolled: true, verdict: TUNNEL },
  fail_open: { kind: "fail_open", enrolled: true, verdict: TUNNEL, reason: "x" },
  fail_closed: { kind: "fail_closed", enrolled: true, verdict: TUNNEL, reason: "x" },
  disabled: { kind: "disabled", enrolled: true, verdict: TUNNEL },
  trusted_network: { kind: "trusted_network", enrolled: true, verdict: NONE },
  signin_required: { kind: "signin_required", enrolled: true, verdict: TUNNEL, reason: "ended" },
  error: { kind: "error", enrolled: true, verdict: TUNNEL, reason: "boom" },
};
const ENROLLING: EngineState = {
  kind: "authenticating",
  enrolled: false,
  verdict: TUNNEL,
  phase: "enrolling",
};

/** A representative event of each type. */
const E: Record<EngineEvent["type"], EngineEvent> = {
  enroll_requested: { type: "enroll_requested" },
  enrollment_restored: { type: "enrollment_restored" },
  enrolled: { type: "enrolled" },
  enroll_failed: { type: "enroll_failed", reason: "bad key" },
  credential_rejected: { type: "credential_rejected", reason: "revoked" },
  tunnel_up: { type: "tunnel_up", transport: "tls" },
  tunnel_down: { type: "tunnel_down", reason: "peer gone" },
  handshake_timeout: { type: "handshake_timeout", mode: "blocked" },
  network_changed: { type: "network_changed", verdict: TUNNEL },
  captive_detected: { type: "captive_detected", windowMin: 10 },
  captive_cleared: { type: "captive_cleared" },
  captive_expired: { type: "captive_expired", then: "fail_open" },
  edge_unreachable: { type: "edge_unreachable", mode: "direct", reason: "no route" },
  edge_reachable: { type: "edge_reachable" },
  policy_updated: { type: "policy_updated", version: "v2" },
  disable_requested: { type: "disable_requested" },
  enable_requested: { type: "enable_requested" },
  restart_requested: { type: "restart_requested" },
  logout_requested: { type: "logout_requested" },
  strict_changed: { type: "strict_changed", strict: true },
  signin_lapsed: { type: "signin_lapsed", reason: "The sign-in of ana ended" },
  reauthenticated: { type: "reauthenticated" },
};

type Row = [EngineState, EngineEvent, StateKind, string[]];
const T = (s: EngineState, e: EngineEvent, to: StateKind, effects: string[] = []): Row => [
  s,
  e,
  to,
  effects,
];
const OFF = ["cancel_captive_timer", "set_fail_mode", "tear_down"];

/** Every legal transition of the representative states, with its effects. */
const LEGAL: Row[] = [
  // unenrolled
  T(S.unenrolled, E.enroll_requested, "authenticating", ["enroll"]),
  T(S.unenrolled, E.enrollment_restored, "authenticating", ["refresh"]),
  T(S.unenrolled, E.network_changed, "unenrolled"),
  T(S.unenrolled, E.disable_requested, "disabled", OFF),
  T(S.unenrolled, E.strict_changed, "unenrolled", ["set_fail_mode"]),
  // an enrolled device only remembers the setting, for a later logout
  ...STATE_KINDS.filter((k) => k !== "unenrolled").map((k) => T(S[k], E.strict_changed, k)),
  // authenticating (refreshing)
  T(S.authenticating, E.enrolled, "connecting", ["bring_up"]),
  T(S.authenticating, E.enroll_failed, "error"),
  T(S.authenticating, E.credential_rejected, "unenrolled", ["forget_enrollment"]),
  T(S.authenticating, E.edge_unreachable, "fail_open", ["set_fail_mode", "bring_up"]),
  T(S.authenticating, E.network_changed, "authenticating"),
  T(S.authenticating, E.policy_updated, "authenticating", ["apply_policy"]),
  T(S.authenticating, E.disable_requested, "disabled", OFF),
  T(S.authenticating, E.logout_requested, "unenrolled", [...OFF, "forget_enrollment"]),
  // connecting
  T(S.connecting, E.tunnel_up, "connected"),
  T(S.connecting, E.tunnel_down, "connecting"),
  T(S.connecting, E.handshake_timeout, "fail_closed", ["set_fail_mode"]),
  T(S.connecting, E.edge_unreachable, "fail_open", ["set_fail_mode"]),
  T(S.connecting, E.edge_reachable, "connecting"),
  T(S.connecting, E.captive_detected, "captive_portal", [
    "tear_down",
    "set_fail_mode",
    "start_captive_timer",
  ]),
  T(S.connecting, E.credential_rejected, "unenrolled", [...OFF, "forget_enrollment"]),
  T(S.connecting, E.network_changed, "connecting"),
  T(S.connecting, E.policy_updated, "connecting", ["apply_policy"]),
  T(S.connecting, E.disable_requested, "disabled", OFF),
  T(S.connecting, E.restart_requested, "authenticating", [...OFF, "refresh"]),
  T(S.connecting, E.logout_requested, "unenrolled", [...OFF, "forget_enrollment"]),
  // connected
  T(S.connected, E.tunnel_up, "connected"),
  T(S.connected, E.tunnel_down, "connecting"),
  T(S.connected, E.handshake_timeout, "fail_closed", ["set_fail_mode"]),
  T(S.connected, E.edge_unreachable, "fail_open", ["set_fail_mode"]),
  T(S.connected, E.edge_reachable, "connected"),
  T(S.connected, E.captive_detected, "captive_portal", [
    "tear_down",
    "set_fail_mode",
    "start_captive_timer",
  ]),
  T(S.connected, E.credential_rejected, "unenrolled", [...OFF, "forget_enrollment"]),
  T(S.connected, E.network_changed, "connected"),
  T(S.connected, E.policy_updated, "connected", ["apply_policy"]),
  T(S.connected, E.disable_requested, "disabled", OFF),
  T(S.connected, E.restart_requested, "authenticating", [...OFF, "refresh"]),
  T(S.connected, E.logout_requested, "unenrolled", [...OFF, "forget_enrollment"]),
  // captive portal
  T(S.captive_portal, E.captive_cleared, "connecting", [
    "cancel_captive_timer",
    "set_fail_mode",
    "bring_up",
  ]),
  T(S.captive_portal, E.captive_expired, "fail_open", ["set_fail_mode"]),
  T(S.captive_portal, E.tunnel_up, "connected", ["cancel_captive_timer", "set_fail_mode"]),
  T(S.captive_portal, E.captive_detected, "captive_portal"),
  T(S.captive_portal, E.network_changed, "captive_portal"),
  T(S.captive_portal, E.policy_updated, "captive_portal", ["apply_policy"]),
  T(S.captive_portal, E.disable_requested, "disabled", OFF),
  T(S.captive_portal, E.restart_requested, "authenticating", [...OFF, "refresh"]),
  T(S.captive_portal, E.logout_requested, "unenrolled", [...OFF, "forget_enrollment"]),
  // fail open / fail closed
  ...(["fail_open", "fail_closed"] as const).flatMap((k) => [
    T(S[k], E.tunnel_up, "connected", ["set_fail_mode"]),
    T(S[k], E.edge_reachable, "connecting", ["set_fail_mode", "bring_up"]),
    T(S[k], E.edge_unreachable, "fail_open", ["set_fail_mode"]),
    T(S[k], E.handshake_timeout, "fail_closed", ["set_fail_mode"]),
    T(S[k], E.tunnel_down, k),
    T(S[k], E.captive_detected, "captive_portal", [
      "tear_down",
      "set_fail_mode",
      "start_captive_timer",
    ]),
    T(S[k], E.credential_rejected, "unenrolled", [...OFF, "forget_enrollment"]),
    T(S[k], E.network_changed, "connecting", ["set_fail_mode", "bring_up"]),
    T(S[k], E.policy_updated, k, ["apply_policy"]),
    T(S[k], E.disable_requested, "disabled", OFF),
    T(S[k], E.restart_requested, "authenticating", [...OFF, "refresh"]),
    T(S[k], E.logout_requested, "unenrolled", [...OFF, "forget_enrollment"]),
  ]),
  // disabled
  T(S.disabled, E.enable_requested, "authenticating", ["refresh"]),
  T(S.disabled, E.network_changed, "disabled"),
  T(S.disabled, E.policy_updated, "disabled", ["apply_policy"]),
  T(S.disabled, E.logout_requested, "unenrolled", [...OFF, "forget_enrollment"]),
  // trusted network
  T(S.trusted_network, E.network_changed, "connecting", ["bring_up"]),
  T(S.trusted_network, E.credential_rejected, "unenrolled", [...OFF, "forget_enrollment"]),
  T(S.trusted_network, E.edge_reachable, "trusted_network"),
  T(S.trusted_network, E.edge_unreachable, "trusted_network"),
  T(S.trusted_network, E.policy_updated, "trusted_network", ["apply_policy"]),
  T(S.trusted_network, E.disable_requested, "disabled", OFF),
  T(S.trusted_network, E.restart_requested, "authenticating", [...OFF, "refresh"]),
  T(S.trusted_network, E.logout_requested, "unenrolled", [...OFF, "forget_enrollment"]),
  // error
  T(S.error, E.edge_reachable, "authenticating", ["refresh"]),
  T(S.error, E.credential_rejected, "unenrolled", [...OFF, "forget_enrollment"]),
  T(S.error, E.network_changed, "error"),
  T(S.error, E.policy_updated, "error", ["apply_policy"]),
  T(S.error, E.disable_requested, "disabled", OFF),
  T(S.error, E.restart_requested, "authenticating", [...OFF, "refresh"]),
  T(S.error, E.logout_requested, "unenrolled", [...OFF, "forget_enrollment"]),
  // the user's sign-in ended (re-authentication): the tunnel goes, the enrolment stays
  ...([
    "authenticating",
    "connecting",
    "connected",
    "captive_portal",
    "fail_open",
    "fail_closed",
  ] as const)
    .map((k) => T(S[k], E.signin_lapsed, "signin_required", OFF)),
  T(S.trusted_network, E.signin_lapsed, "signin_required", OFF),
  T(S.error, E.signin_lapsed, "signin_required", OFF),
  // sign-in required: only signing in again (or the user, or a refused credential) moves it
  T(S.signin_required, E.signin_lapsed, "signin_required"),
  T(S.signin_required, E.reauthenticated, "authenticating", ["refresh"]),
  T(S.signin_required, E.credential_rejected, "unenrolled", [...OFF, "forget_enrollment"]),
  ...([
    "edge_reachable",
    "edge_unreachable",
    "tunnel_up",
    "tunnel_down",
    "handshake_timeout",
  ] as const)
    .map((e) => T(S.signin_required, E[e], "signin_required")),
  T(S.signin_required, E.captive_detected, "signin_required"),
  T(S.signin_required, E.captive_cleared, "signin_required"),
  T(S.signin_required, E.network_changed, "signin_required"),
  T(S.signin_required, E.policy_updated, "signin_required", ["apply_policy"]),
  T(S.signin_required, E.disable_requested, "disabled", OFF),
  T(S.signin_required, E.logout_requested, "unenrolled", [...OFF, "forget_enrollment"]),
];

Deno.test("engine state: every legal transition gives the expected state and effects", async (t) => {
  for (const [s, e, to, effects] of LEGAL) {
    await t.step(`${s.kind} + ${e.type} → ${to}`, () => {
      const r = transition(s, e);
      assert.ok(r.ok, r.ok ? "" : r.reason);
      assert.equal(r.state.kind, to);
      assert.deepEqual(r.effects.map((x) => x.type), effects);
      assert.ok(describeState(r.state).length > 0);
    });
  }
});

Deno.test("engine state: every other (state, event) pair is refused and names both", () => {
  const legal = new Set(LEGAL.map(([s, e]) => `${s.kind}|${e.type}`));
  let refused = 0;
  for (const kind of STATE_KINDS) {
    for (const ev of Object.values(E)) {
      const r = transition(S[kind], ev);
      if (legal.has(`${kind}|${ev.type}`)) continue;
      assert.equal(r.ok, false, `${kind} + ${ev.type} should be refused`);
      assert.match(
        (r as { reason: string }).reason,
        new RegExp(`"${ev.type}" in state "${kind}"`),
      );
      refused++;
    }
  }
  assert.ok(refused > 80, `refused ${refused}`);
});

Deno.test("engine state: decisions that depend on context", async (t) => {
  await t.step("enrolled on a trusted network with action none → trusted_network", () => {
    const r = transition({ ...S.authenticating, verdict: NONE }, E.enrolled);
    assert.ok(r.ok && r.state.kind === "trusted_network");
  });
  await t.step("enrolling + edge unreachable → error (nothing to fall back on)", () => {
    const r = transition(ENROLLING, E.edge_unreachable);
    assert.ok(r.ok && r.state.kind === "error" && r.state.reason === "no route");
  });
  await t.step("enrolling + enrolled sets enrolled", () => {
    const r = transition(ENROLLING, E.enrolled);
    assert.ok(r.ok && r.state.enrolled && r.state.kind === "connecting");
  });
  await t.step("edge unreachable with mode blocked → fail_closed", () => {
    const r = transition(S.connected, { type: "edge_unreachable", mode: "blocked", reason: "r" });
    assert.ok(r.ok && r.state.kind === "fail_closed");
    assert.deepEqual(r.effects, [{ type: "set_fail_mode", mode: "blocked" }]);
  });
  await t.step(
    "connected + network becomes trusted (none) → trusted_network, tunnel torn down",
    () => {
      const r = transition(S.connected, { type: "network_changed", verdict: NONE });
      assert.ok(r.ok && r.state.kind === "trusted_network");
      assert.deepEqual(r.effects, [{ type: "tear_down" }]);
      assert.equal(r.state.transport, undefined);
    },
  );
  await t.step("captive window expiry with enforce → back to connecting", () => {
    const r = transition(S.captive_portal, { type: "captive_expired", then: "enforce" });
    assert.ok(r.ok && r.state.kind === "connecting");
  });
  await t.step("captive portal cleared on a trusted network → trusted_network", () => {
    const r = transition({ ...S.captive_portal, verdict: NONE }, E.captive_cleared);
    assert.ok(r.ok && r.state.kind === "trusted_network");
  });
  await t.step("enable when never enrolled → unenrolled", () => {
    const r = transition({ ...S.disabled, enrolled: false }, E.enable_requested);
    assert.ok(r.ok && r.state.kind === "unenrolled" && r.effects.length === 0);
  });
  await t.step("restart from an enrolment error re-enrols", () => {
    const r = transition({ ...S.error, enrolled: false }, E.restart_requested);
    assert.ok(r.ok && r.state.kind === "authenticating" && r.state.phase === "enrolling");
  });
  await t.step("logout when not enrolled is refused", () => {
    assert.equal(transition(S.unenrolled, E.logout_requested).ok, false);
  });
  await t.step("the initial state is unenrolled with no verdict", () => {
    assert.deepEqual(initialState(), { kind: "unenrolled", enrolled: false, verdict: null });
  });
  await t.step("a tunnel_up records the transport; tunnel_down clears it", () => {
    const up = transition(S.connecting, E.tunnel_up);
    assert.ok(up.ok && up.state.transport === "tls");
    const down = transition(up.state, E.tunnel_down);
    assert.ok(down.ok && down.state.transport === undefined && down.state.reason === "peer gone");
  });
});

/** Effects as "type" or "set_fail_mode:mode", for readable tables. */
const fx = (effects: Effect[]) =>
  effects.map((e) => e.type === "set_fail_mode" ? `set_fail_mode:${e.mode}` : e.type);

/** A state with strict enforcement on or off; `blocked` is set only when strict and not enrolled. */
function withStrict(
  s: EngineState,
  strict: boolean,
  blocked?: "enrollment" | "login",
): EngineState {
  const x: EngineState = { ...s };
  if (strict) x.strict = true;
  if (strict && blocked && !s.enrolled) x.blocked = blocked;
  return x;
}

type StrictRow = {
  name: string;
  from: EngineState;
  event: EngineEvent;
  /** Expected per strict setting: [state kind, blocked, effects], or "refused". */
  off: [StateKind, string | undefined, string[]] | "refused";
  on: [StateKind, string | undefined, string[]] | "refused";
  /** Block already in force in `from` when strict (default: none). */
  blockedBefore?: "enrollment" | "login";
};

const LOGOUT_FX = (mode: string) => [
  "cancel_captive_timer",
  `set_fail_mode:${mode}`,
  "tear_down",
  "forget_enrollment",
];
const UNENROLLED_NONE: EngineState = { kind: "unenrolled", enrolled: false, verdict: null };
const ENROLL_ERROR: EngineState = { kind: "error", enrolled: false, verdict: TUNNEL, reason: "x" };

/** Strict enforcement: every decision that depends on it, with it off and on. */
const STRICT: StrictRow[] = [
  {
    name: "first enrolment attempt",
    from: UNENROLLED_NONE,
    event: E.enroll_requested,
    off: ["authenticating", undefined, ["enroll"]],
    on: ["authenticating", "enrollment", ["set_fail_mode:blocked", "enroll"]],
  },
  {
    name: "enrolled: the tunnel is asked up before the block is lifted",
    from: ENROLLING,
    blockedBefore: "enrollment",
    event: E.enrolled,
    off: ["connecting", undefined, ["bring_up"]],
    on: ["connecting", undefined, ["bring_up", "set_fail_mode:null"]],
  },
  {
    name: "enrolled on a trusted network",
    from: { ...ENROLLING, verdict: NONE },
    blockedBefore: "enrollment",
    event: E.enrolled,
    off: ["trusted_network", undefined, ["tear_down"]],
    on: ["trusted_network", undefined, ["tear_down", "set_fail_mode:null"]],
  },
  {
    name: "edge unreachable while enrolling keeps the block",
    from: ENROLLING,
    blockedBefore: "enrollment",
    event: E.edge_unreachable,
    off: ["error", undefined, []],
    on: ["error", "enrollment", []],
  },
  {
    name: "a bad key keeps the block",
    from: ENROLLING,
    blockedBefore: "enrollment",
    event: E.enroll_failed,
    off: ["error", undefined, []],
    on: ["error", "enrollment", []],
  },
  {
    name: "enrolment retry after an unreachable edge",
    from: ENROLL_ERROR,
    blockedBefore: "enrollment",
    event: E.enroll_requested,
    off: ["authenticating", undefined, ["enroll"]],
    on: ["authenticating", "enrollment", ["enroll"]],
  },
  {
    name: "restart after an enrolment error keeps the block",
    from: ENROLL_ERROR,
    blockedBefore: "enrollment",
    event: E.restart_requested,
    off: ["authenticating", undefined, ["enroll"]],
    on: ["authenticating", "enrollment", ["enroll"]],
  },
  ...([
    "connected",
    "connecting",
    "fail_open",
    "fail_closed",
    "captive_portal",
    "trusted_network",
  ] as const)
    .map((k): StrictRow => ({
      name: `logout from ${k}`,
      from: S[k],
      event: E.logout_requested,
      off: ["unenrolled", undefined, LOGOUT_FX("null")],
      on: ["unenrolled", "login", LOGOUT_FX("blocked")],
    })),
  {
    name: "logout while disabled",
    from: S.disabled,
    event: E.logout_requested,
    off: ["unenrolled", undefined, LOGOUT_FX("null")],
    on: ["unenrolled", "login", LOGOUT_FX("blocked")],
  },
  {
    name: "the edge refuses the credential while connected",
    from: S.connected,
    event: E.credential_rejected,
    off: ["unenrolled", undefined, LOGOUT_FX("null")],
    on: ["unenrolled", "enrollment", LOGOUT_FX("blocked")],
  },
  {
    name: "the edge refuses the credential at refresh",
    from: S.authenticating,
    event: E.credential_rejected,
    off: ["unenrolled", undefined, ["forget_enrollment"]],
    on: ["unenrolled", "enrollment", ["set_fail_mode:blocked", "forget_enrollment"]],
  },
  {
    name: "after logout, enrolling again keeps the login block until enrolled",
    from: { ...UNENROLLED_NONE, verdict: TUNNEL },
    blockedBefore: "login",
    event: E.enroll_requested,
    off: ["authenticating", undefined, ["enroll"]],
    on: ["authenticating", "login", ["enroll"]],
  },
  {
    name: "disable cannot lift a strict block",
    from: UNENROLLED_NONE,
    blockedBefore: "enrollment",
    event: E.disable_requested,
    off: [
      "disabled",
      undefined,
      ["cancel_captive_timer", "set_fail_mode:null", "tear_down"],
    ],
    on: "refused",
  },
  {
    name: "enable before enrolment applies the setting",
    from: { ...S.disabled, enrolled: false },
    event: E.enable_requested,
    off: ["unenrolled", undefined, []],
    on: ["unenrolled", "enrollment", ["set_fail_mode:blocked"]],
  },
  {
    name: "network changes while blocked keep the block",
    from: UNENROLLED_NONE,
    blockedBefore: "login",
    event: E.network_changed,
    off: ["unenrolled", undefined, []],
    on: ["unenrolled", "login", []],
  },
  {
    name: "an enrolled device keeps strict through its states and is never blocked",
    from: S.connected,
    event: E.tunnel_down,
    off: ["connecting", undefined, []],
    on: ["connecting", undefined, []],
  },
];

Deno.test("engine state: strict enforcement decisions (states × strictEnforcement)", async (t) => {
  for (const row of STRICT) {
    for (const strict of [false, true]) {
      await t.step(`${row.name} (strict ${strict ? "on" : "off"})`, () => {
        const from = withStrict(row.from, strict, row.blockedBefore);
        const want = strict ? row.on : row.off;
        const r = transition(from, row.event);
        if (want === "refused") {
          assert.equal(r.ok, false);
          assert.match(
            (r as { reason: string }).reason,
            /traffic blocked until this device is enrolled \(strict enforcement\)/,
          );
          return;
        }
        assert.ok(r.ok, r.ok ? "" : r.reason);
        assert.equal(r.state.kind, want[0]);
        assert.equal(r.state.blocked, want[1]);
        assert.deepEqual(fx(r.effects), want[2]);
        assert.equal(r.state.strict === true, strict, "the setting is carried along");
        if (r.state.enrolled) assert.equal(r.state.blocked, undefined);
      });
    }
  }
});

Deno.test("engine state: strict_changed blocks or unblocks only while not enrolled", async (t) => {
  const on = { type: "strict_changed", strict: true } as const;
  const off = { type: "strict_changed", strict: false } as const;
  await t.step("turned on before enrolment → blocked until enrolled", () => {
    const r = transition(ENROLLING, on);
    assert.ok(r.ok && r.state.blocked === "enrollment" && r.state.strict === true);
    assert.deepEqual(fx(r.effects), ["set_fail_mode:blocked"]);
  });
  await t.step("turned off while blocked → unblocked", () => {
    const r = transition({ ...ENROLL_ERROR, strict: true, blocked: "login" }, off);
    assert.ok(r.ok && r.state.blocked === undefined && r.state.strict === undefined);
    assert.deepEqual(fx(r.effects), ["set_fail_mode:null"]);
  });
  await t.step("same value again → nothing to do", () => {
    const r = transition({ ...UNENROLLED_NONE, strict: true, blocked: "enrollment" }, on);
    assert.ok(r.ok && r.state.blocked === "enrollment");
    assert.deepEqual(r.effects, []);
  });
  await t.step("enrolled → remembered, no effect; a later logout blocks", () => {
    const r = transition(S.connected, on);
    assert.ok(r.ok && r.state.strict === true && r.state.blocked === undefined);
    assert.deepEqual(r.effects, []);
    const out = transition(r.state, E.logout_requested);
    assert.ok(out.ok && out.state.blocked === "login");
  });
  await t.step("disabled before enrolment → remembered, applied on enable", () => {
    const r = transition({ ...S.disabled, enrolled: false }, on);
    assert.ok(r.ok && r.state.blocked === undefined);
    assert.deepEqual(r.effects, []);
    const en = transition(r.state, E.enable_requested);
    assert.ok(en.ok && en.state.blocked === "enrollment");
  });
  await t.step("initial state carries the setting but blocks only on the first attempt", () => {
    assert.deepEqual(initialState(true), {
      kind: "unenrolled",
      enrolled: false,
      verdict: null,
      strict: true,
    });
  });
});

Deno.test("engine state: the description says why traffic is blocked", () => {
  const cases: [EngineState, RegExp][] = [
    [
      { ...UNENROLLED_NONE, strict: true, blocked: "enrollment" },
      /^Traffic blocked until this device is enrolled \(strict enforcement\)$/,
    ],
    [
      { ...UNENROLLED_NONE, strict: true, blocked: "login" },
      /^Traffic blocked until you log in again \(strict enforcement\)$/,
    ],
    [
      { ...ENROLLING, strict: true, blocked: "enrollment" },
      /^Traffic blocked until this device is enrolled \(strict enforcement\); enrolling/,
    ],
    [
      { ...ENROLL_ERROR, strict: true, blocked: "enrollment", reason: "edge down" },
      /^Traffic blocked until this device is enrolled \(strict enforcement\); error: edge down$/,
    ],
    [UNENROLLED_NONE, /^Not enrolled$/],
  ];
  for (const [s, re] of cases) assert.match(describeState(s), re);
  assert.equal(
    blockedSentence("login"),
    "Traffic blocked until you log in again (strict enforcement)",
  );
});
