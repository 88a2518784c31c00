/** Transition notices: what the user and the log are told on each transition (table). */
import assert from "node:assert/strict";
import type { EngineEvent, EngineState } from "../../../src/connector/engine_state.ts";
import {
  isRetryFlip,
  sameVerdict,
  transitionNotices,
} from "../../../src/connector/engine/notices.ts";

const st = (kind: EngineState["kind"], extra: Partial<EngineState> = {}): EngineState => ({
  kind,
  enrolled: true,
  verdict: null,
  ...extra,
});
const V1 = { type: "off_trusted" as const, action: "tunnel" as const, explanation: "Off trusted" };
const V2 = { type: "on_trusted" as const, action: "none" as const, explanation: "On trusted" };

/** The notice types (in order) and the logged levels of a transition. */
function outline(
  from: EngineState,
  to: EngineState,
  event: EngineEvent,
  ctx: { enrollFailures?: number; failEpisode?: boolean; edgeKnown?: boolean } = {},
) {
  const r = transitionNotices(from, to, event, {
    enrollFailures: ctx.enrollFailures ?? 0,
    failEpisode: ctx.failEpisode ?? false,
    edgeKnown: () => ctx.edgeKnown ?? true,
  });
  return {
    notices: r.steps.flatMap((s) => ("notice" in s ? [s.notice.type] : [])),
    logs: r.steps.flatMap((s) => ("log" in s ? [s.log.level] : [])),
    failEpisode: r.failEpisode,
    messages: r.steps.flatMap((s) => ("notice" in s ? [s.notice.message] : [])),
  };
}

Deno.test("notices: a table of transitions and what they tell", () => {
  const up: EngineEvent = { type: "tunnel_up", transport: "udp" };
  const table: {
    name: string;
    from: EngineState;
    to: EngineState;
    event: EngineEvent;
    ctx?: { enrollFailures?: number; failEpisode?: boolean; edgeKnown?: boolean };
    notices: string[];
    logs: string[];
    failEpisode: boolean;
  }[] = [
    {
      name: "connecting → connected",
      from: st("connecting"),
      to: st("connected", { transport: "udp" }),
      event: up,
      notices: ["state_changed"],
      logs: ["info"],
      failEpisode: false,
    },
    {
      name: "same state, same transport: nothing",
      from: st("connected", { transport: "udp" }),
      to: st("connected", { transport: "udp" }),
      event: up,
      notices: [],
      logs: [],
      failEpisode: false,
    },
    {
      name: "transport change is a state change",
      from: st("connected", { transport: "udp" }),
      to: st("connected", { transport: "tls" }),
      event: { type: "tunnel_up", transport: "tls" },
      notices: ["state_changed"],
      logs: ["info"],
      failEpisode: false,
    },
    {
      name: "a new verdict without a state change",
      from: st("connected", { transport: "udp", verdict: V1 }),
      to: st("connected", { transport: "udp", verdict: V2 }),
      event: { type: "network_changed", verdict: V2 },
      notices: ["network_changed"],
      logs: [],
      failEpisode: false,
    },
    {
      name: "the same verdict again is not news",
      from: st("connected", { transport: "udp", verdict: V1 }),
      to: st("connected", { transport: "udp", verdict: V1 }),
      event: { type: "network_changed", verdict: V1 },
      notices: [],
      logs: [],
      failEpisode: false,
    },
    {
      name: "fail-open starts an episode and says security is off",
      from: st("connecting"),
      to: st("fail_open", { reason: "no answer" }),
      event: { type: "edge_unreachable", mode: "direct", reason: "no answer" },
      notices: ["state_changed", "security_off"],
      logs: ["warn"],
      failEpisode: true,
    },
    {
      name: "fail-closed says traffic is blocked",
      from: st("connecting"),
      to: st("fail_closed"),
      event: { type: "edge_unreachable", mode: "blocked", reason: "x" },
      notices: ["state_changed", "traffic_blocked"],
      logs: ["error"],
      failEpisode: true,
    },
    {
      name: "connected after an episode: protection restored, episode over",
      from: st("connecting"),
      to: st("connected", { transport: "tls" }),
      event: { type: "tunnel_up", transport: "tls" },
      ctx: { failEpisode: true },
      notices: ["state_changed", "protection_restored"],
      logs: ["info"],
      failEpisode: false,
    },
    {
      name: "trusted network ends an episode quietly",
      from: st("fail_open"),
      to: st("trusted_network", { verdict: V2 }),
      event: { type: "network_changed", verdict: V2 },
      ctx: { failEpisode: true },
      notices: ["network_changed", "state_changed"],
      logs: ["info"],
      failEpisode: false,
    },
    {
      name: "a background retry flip after the first failure only logs (debug)",
      from: st("error", { enrolled: false }),
      to: st("authenticating", { enrolled: false }),
      event: { type: "enroll_requested" },
      ctx: { enrollFailures: 1 },
      notices: [],
      logs: ["debug"],
      failEpisode: false,
    },
    {
      name: "the first enrolment attempt is told",
      from: st("unenrolled", { enrolled: false }),
      to: st("authenticating", { enrolled: false }),
      event: { type: "enroll_requested" },
      notices: ["state_changed"],
      logs: ["info"],
      failEpisode: false,
    },
    {
      name: "strict block starts",
      from: st("unenrolled", { enrolled: false }),
      to: st("authenticating", { enrolled: false, strict: true, blocked: "enrollment" }),
      event: { type: "enroll_requested" },
      notices: ["state_changed", "strict_enforcement"],
      logs: ["info", "warn"],
      failEpisode: false,
    },
    {
      name: "strict block lifted at enrolment",
      from: st("authenticating", { enrolled: false, strict: true, blocked: "enrollment" }),
      to: st("connecting", { strict: true }),
      event: { type: "enrolled" },
      notices: ["state_changed", "strict_enforcement_lifted"],
      logs: ["info", "info"],
      failEpisode: false,
    },
  ];
  for (const t of table) {
    const o = outline(t.from, t.to, t.event, t.ctx);
    assert.deepEqual(o.notices, t.notices, t.name);
    assert.deepEqual(o.logs, t.logs, t.name);
    assert.equal(o.failEpisode, t.failEpisode, t.name);
  }
});

Deno.test("notices: the strict block says whether the edge stays reachable", () => {
  const from = st("unenrolled", { enrolled: false });
  const to = st("unenrolled", { enrolled: false, strict: true, blocked: "login" });
  // Same kind: the state change notices (and the strict ones with them) are not repeated.
  assert.deepEqual(outline(from, to, { type: "strict_changed", strict: true }).notices, []);
  const to2 = st("authenticating", { enrolled: false, strict: true, blocked: "login" });
  const known = outline(from, to2, { type: "enroll_requested" }, { edgeKnown: true });
  assert.match(
    known.messages[1],
    /^Traffic blocked until you log in again.*the edge are allowed\.$/,
  );
  const unknown = outline(from, to2, { type: "enroll_requested" }, { edgeKnown: false });
  assert.match(unknown.messages[1], /no edge is known yet: start with an enrolment key\)\.$/);
});

Deno.test("notices: retry flips and verdict comparison", () => {
  const e = st("error", { enrolled: false });
  const a = st("authenticating", { enrolled: false });
  const table: [EngineState, EngineState, number, boolean][] = [
    [e, a, 0, false],
    [e, a, 1, true],
    [a, e, 1, false],
    [a, e, 2, true],
    [e, st("authenticating"), 3, false], // enrolled: never a retry flip
    [st("unenrolled", { enrolled: false }), a, 5, false],
  ];
  for (const [from, to, n, want] of table) {
    assert.equal(isRetryFlip(from, to, n), want, `${from.kind} → ${to.kind} after ${n}`);
  }
  assert.ok(sameVerdict(V1, { ...V1 }));
  assert.ok(!sameVerdict(V1, V2));
  assert.ok(sameVerdict(null, null));
  assert.ok(!sameVerdict(V1, null));
});
