/** The event runner: one event at a time, effects before the next event, stop refuses the rest. */
import assert from "node:assert/strict";
import { EventRunner } from "../../../src/connector/engine/runner.ts";
import {
  type Effect,
  type EngineEvent,
  type EngineState,
  initialState,
  type TransitionResult,
} from "../../../src/connector/engine_state.ts";
import { setLogSinks } from "../../../src/log.ts";

setLogSinks([]);

/** A tiny machine: every event is accepted except "disable_requested"; "enroll_requested" asks for "enroll". */
function toy(s: EngineState, e: EngineEvent): TransitionResult {
  if (e.type === "disable_requested") return { ok: false, reason: "no" };
  const effects: Effect[] = e.type === "enroll_requested" ? [{ type: "enroll" }] : [];
  return { ok: true, state: { ...s, reason: e.type }, effects };
}

Deno.test("runner: events in order, each with its effects done before the next", async () => {
  const log: string[] = [];
  const runner: EventRunner = new EventRunner(initialState(), {
    transition: toy,
    onTransition: (from, to, e) => log.push(`transition ${e.type}: ${from.reason} → ${to.reason}`),
    perform: async (eff) => {
      log.push(`start ${eff.type}`);
      // A follow-up queued from an effect runs after this event, never inside it.
      runner.enqueue({ type: "enrolled" });
      await new Promise((r) => setTimeout(r, 5));
      log.push(`end ${eff.type}`);
    },
  });
  const a = runner.dispatch({ type: "enroll_requested" });
  // Arrives while the first event's effect runs.
  const b = runner.dispatch({ type: "restart_requested" });
  const r = await a;
  assert.equal(r.ok, true);
  await b;
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(log, [
    "transition enroll_requested: undefined → enroll_requested",
    "start enroll",
    "end enroll",
    // Strictly in arrival order: the follow-up was queued (during the effect)
    // before the second dispatch arrived.
    "transition enrolled: enroll_requested → enrolled",
    "transition restart_requested: enrolled → restart_requested",
  ]);
  assert.equal(runner.state.reason, "restart_requested");
});

Deno.test("runner: a refused event leaves the state; a failing effect does not stop the others", async () => {
  const done: string[] = [];
  const runner = new EventRunner(initialState(), {
    transition: (s, e) =>
      e.type === "logout_requested"
        ? { ok: true, state: s, effects: [{ type: "tear_down" }, { type: "forget_enrollment" }] }
        : toy(s, e),
    onTransition: () => {},
    perform: (eff) => {
      if (eff.type === "tear_down") return Promise.reject(new Error("boom"));
      done.push(eff.type);
      return Promise.resolve();
    },
  });
  const refused = await runner.dispatch({ type: "disable_requested" });
  assert.deepEqual(refused, { ok: false, reason: "no" });
  assert.equal(runner.state.reason, undefined);
  assert.equal((await runner.dispatch({ type: "logout_requested" })).ok, true);
  assert.deepEqual(done, ["forget_enrollment"]);
});

Deno.test("runner: stop refuses queued and later events", async () => {
  let release = () => {};
  const runner = new EventRunner(initialState(), {
    transition: toy,
    onTransition: () => {},
    perform: () => new Promise<void>((r) => (release = r)),
  });
  const first = runner.dispatch({ type: "enroll_requested" });
  const queued = runner.dispatch({ type: "enrolled" });
  runner.stop();
  assert.equal(runner.stopped, true);
  assert.equal((await queued).ok, false);
  release();
  assert.equal((await first).ok, true, "the event under way completes");
  const later = await runner.dispatch({ type: "enrolled" });
  assert.deepEqual(later, { ok: false, reason: "Cannot handle events: the engine is stopped" });
});
