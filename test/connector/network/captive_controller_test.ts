import assert from "node:assert/strict";
import { ManualClock } from "../../../src/clock.ts";
import { CaptiveController } from "../../../src/connector/network/captive_controller.ts";
import type { CaptiveProbeResult } from "../../../src/connector/network/captive.ts";

const PORTAL: CaptiveProbeResult = {
  kind: "captive",
  reason: "redirect",
  status: 302,
  location: "http://portal.hotel.test/login",
  detail: "Redirected (302) to http://portal.hotel.test/login",
};
const CLEAR: CaptiveProbeResult = { kind: "clear", latencyMs: 3 };
const DOWN: CaptiveProbeResult = { kind: "unreachable", detail: "No answer" };

function setup(expiry: "enforce" | "fail_open" = "enforce", windowMin = 2) {
  const clock = new ManualClock();
  const c = new CaptiveController({
    settings: { captivePortalWindowMin: windowMin, captivePortalExpiry: expiry },
    clock,
  });
  return { clock, c, t0: clock.monotonic() };
}

Deno.test("captive controller: portal pauses enforcement and clears as soon as it is gone", () => {
  const { clock, c, t0 } = setup();
  assert.equal(c.nextProbeAt(), t0, "probe at once on start");
  assert.deepEqual(c.onProbe(CLEAR), []);
  assert.equal(c.nextProbeAt(), t0 + 60_000, "idle probing is slow");
  assert.equal(c.enforcement(), "on");

  clock.advance(5000);
  c.probeSoon();
  assert.equal(c.nextProbeAt(), t0 + 5000);
  const d = c.onProbe(PORTAL);
  assert.deepEqual(d, [{
    type: "portal_detected",
    until: t0 + 5000 + 120_000,
    windowMin: 2,
    location: "http://portal.hotel.test/login",
    detail: PORTAL.detail,
  }]);
  assert.equal(c.state, "portal");
  assert.equal(c.enforcement(), "paused");
  assert.equal(c.location, "http://portal.hotel.test/login");
  assert.equal(c.nextProbeAt(), t0 + 8000, "probing every 3 s during the portal");
  assert.equal(c.windowEndsAt(), t0 + 125_000);

  // Still a portal, an unreachable probe in between: nothing changes.
  for (const r of [PORTAL, DOWN, PORTAL]) {
    clock.advance(3000);
    assert.deepEqual(c.onProbe(r), []);
    assert.equal(c.state, "portal");
  }
  clock.advance(3000);
  assert.deepEqual(c.onProbe(CLEAR), [{ type: "portal_cleared", heldMs: 12_000 }]);
  assert.equal(c.state, "clear");
  assert.equal(c.enforcement(), "on");
  assert.equal(c.windowEndsAt(), 0);
});

Deno.test("captive controller: window expiry follows the profile", () => {
  for (const expiry of ["enforce", "fail_open"] as const) {
    const { clock, c, t0 } = setup(expiry, 1);
    c.onProbe(PORTAL);
    clock.advance(59_999);
    assert.deepEqual(c.tick(), []);
    assert.equal(c.nextWakeAt(), Math.min(c.nextProbeAt(), t0 + 60_000));
    clock.advance(1);
    assert.deepEqual(c.tick(), [{ type: "window_expired", action: expiry }], expiry);
    assert.deepEqual(c.tick(), [], "expiry is reported once");
    assert.equal(c.state, "expired");
    assert.equal(c.enforcement(), expiry === "enforce" ? "on" : "fail_open");
    // The portal is still there: no second window.
    clock.advance(3000);
    assert.deepEqual(c.onProbe(PORTAL), []);
    assert.equal(c.state, "expired");
    assert.equal(c.nextProbeAt(), clock.monotonic() + 3000, "keeps probing quickly");
    // Signed in at last: protection resumes.
    clock.advance(3000);
    assert.deepEqual(c.onProbe(CLEAR), [{ type: "portal_cleared", heldMs: 66_000 }]);
    assert.equal(c.enforcement(), "on");
  }
});

Deno.test("captive controller: a late probe reports expiry before its own result; reset opens a new window", () => {
  const { clock, c } = setup("enforce", 1);
  c.onProbe(PORTAL);
  clock.advance(61_000);
  assert.deepEqual(c.onProbe(PORTAL), [{ type: "window_expired", action: "enforce" }]);
  c.reset();
  assert.equal(c.state, "clear");
  assert.equal(c.nextProbeAt(), clock.monotonic());
  const d = c.onProbe(PORTAL);
  assert.equal(d[0].type, "portal_detected");
  // New settings apply to the next window, not the open one.
  c.updateSettings({ captivePortalWindowMin: 30, captivePortalExpiry: "fail_open" });
  assert.equal(c.windowEndsAt(), clock.monotonic() + 60_000);
  clock.advance(60_000);
  assert.deepEqual(c.tick(), [{ type: "window_expired", action: "fail_open" }]);
});
