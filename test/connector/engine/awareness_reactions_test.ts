/** Reactions to network-awareness decisions (table). */
import assert from "node:assert/strict";
import type { AwarenessDecision } from "../../../src/connector/awareness.ts";
import type { StateKind } from "../../../src/connector/engine_state.ts";
import { awarenessReaction } from "../../../src/connector/engine/awareness_reactions.ts";

Deno.test("awareness reactions: notices and actions per decision and state", () => {
  const table: [string, AwarenessDecision, StateKind, string[], string[]][] = [
    [
      "portal found",
      {
        type: "portal_detected",
        until: 0,
        location: "http://portal/login",
        windowMin: 10,
        detail: "Redirected (302)",
      },
      "connected",
      ["notice captive_portal", "log warn"],
      ["captive_detected"],
    ],
    [
      "portal gone",
      { type: "portal_cleared", heldMs: 41_400 },
      "captive_portal",
      ["notice captive_portal_cleared", "log info"],
      ["captive_cleared"],
    ],
    [
      "window over, fail open",
      { type: "window_expired", action: "fail_open" },
      "captive_portal",
      ["notice captive_portal_expired"],
      ["cancel_captive_timer", "event captive_expired"],
    ],
    [
      "edge unreachable while the tunnel works: only logged",
      { type: "edge_unreachable", action: "fail_closed", failures: 3, reason: "timeout" },
      "connected",
      ["log warn"],
      [],
    ],
    [
      "edge unreachable while connecting",
      { type: "edge_unreachable", action: "fail_closed", failures: 3, reason: "timeout" },
      "connecting",
      ["log warn"],
      ["event edge_unreachable"],
    ],
    [
      "edge back after fail-open",
      { type: "edge_recovered", from: "fail_open", downMs: 61_000 },
      "fail_open",
      ["notice edge_reachable"],
      ["event edge_reachable"],
    ],
    [
      "edge back during retries, while connected",
      { type: "edge_recovered", from: "retrying", downMs: 2000 },
      "connected",
      [],
      [],
    ],
    [
      "edge back, engine in error",
      { type: "edge_recovered", from: "retrying", downMs: 2000 },
      "error",
      [],
      ["event edge_reachable"],
    ],
  ];
  for (const [name, d, kind, steps, actions] of table) {
    const r = awarenessReaction(d, kind);
    assert.deepEqual(
      r.steps.map((s) => ("notice" in s ? `notice ${s.notice.type}` : `log ${s.log.level}`)),
      steps,
      name,
    );
    assert.deepEqual(
      r.actions.map((a) => (a.type === "event" ? `event ${a.event.type}` : a.type)),
      actions,
      name,
    );
  }
});

Deno.test("awareness reactions: the sentences carry what the user needs", () => {
  const found = awarenessReaction({
    type: "portal_detected",
    until: 0,
    location: "http://portal/login",
    windowMin: 10,
    detail: "Redirected (302) to http://portal/login",
  }, "connected");
  const n = found.steps[0];
  assert.ok("notice" in n);
  assert.match(n.notice.message, /the login page is http:\/\/portal\/login/);
  assert.match(n.notice.message, /paused for up to 10 min/);
  const down = awarenessReaction(
    { type: "edge_unreachable", action: "fail_open", failures: 4, reason: "refused" },
    "connecting",
  );
  const a = down.actions[0];
  assert.ok(a.type === "event" && a.event.type === "edge_unreachable");
  assert.deepEqual(a.event, {
    type: "edge_unreachable",
    mode: "direct",
    reason: "no answer to 4 attempts in a row: refused",
  });
  const back = awarenessReaction(
    { type: "edge_recovered", from: "fail_closed", downMs: 61_400 },
    "fail_closed",
  );
  const b = back.steps[0];
  assert.ok("notice" in b);
  assert.equal(b.notice.message, "The edge answers again after 61 s unreachable");
});
