/** Heartbeats and posture reports over the fake edge API. */
import assert from "node:assert/strict";
import {
  EdgeApiError,
  EdgeTlsError,
  EdgeUnreachableError,
} from "../../../src/connector/edge_api.ts";
import type { EngineState } from "../../../src/connector/engine_state.ts";
import { heartbeatReport, sendHeartbeat } from "../../../src/connector/engine/heartbeat.ts";
import { reportPostureOnce } from "../../../src/connector/engine/posture_loop.ts";
import { FakeEdgeApi } from "../../../src/connector/fake_edge_api.ts";
import { makeBundle } from "./helpers.ts";
import { VERSION } from "../../../src/version.ts";

const CONNECTED: EngineState = {
  kind: "connected",
  enrolled: true,
  verdict: null,
  transport: "tls",
};

Deno.test("heartbeat: reports state, transport (when connected) and clock skew", async () => {
  assert.deepEqual(heartbeatReport(CONNECTED, -1200), {
    state: "connected",
    transport: "tls",
    clockSkewMs: -1200,
    connectorVersion: VERSION,
  });
  assert.deepEqual(heartbeatReport({ ...CONNECTED, kind: "fail_open" }, null), {
    state: "fail_open",
    transport: null,
    clockSkewMs: undefined,
    connectorVersion: VERSION,
  });
  const c = new FakeEdgeApi();
  c.clockSkewMs = 250;
  assert.deepEqual(await sendHeartbeat(c, CONNECTED), { kind: "ok" });
  assert.deepEqual(c.heartbeats, [{
    state: "connected",
    transport: "tls",
    clockSkewMs: 250,
    connectorVersion: VERSION,
  }]);
});

Deno.test("heartbeat: what a failure means (table)", async () => {
  const table: [Error, string][] = [
    [new EdgeApiError("bad_credential", "Unknown credential.", 401), "refused"],
    [new EdgeApiError("device_fingerprint_mismatch", "Other hardware.", 403), "refused"],
    [new EdgeApiError("device_disabled", "Disabled by the admin.", 403), "disabled"],
    [new EdgeUnreachableError("Cannot POST: refused"), "unreachable"],
    [new EdgeTlsError("Bad certificate"), "unreachable"],
    [new EdgeApiError("down", "Down.", 503), "unreachable"],
  ];
  for (const [err, kind] of table) {
    const c = new FakeEdgeApi();
    c.failures.set("heartbeat", err);
    const r = await sendHeartbeat(c, CONNECTED);
    assert.equal(r.kind, kind, err.message);
  }
  const c = new FakeEdgeApi();
  c.failures.set("heartbeat", new EdgeApiError("bad_response", "Garbage.", 400));
  await assert.rejects(sendHeartbeat(c, CONNECTED), /Garbage/, "other answers are errors");
});

Deno.test("posture: collects for the policy in force and sends; nothing before enrolment", async () => {
  const c = new FakeEdgeApi();
  const policy = makeBundle("v1");
  const report = { payload: '{"facts":{}}', signature: "" };
  const seen: string[] = [];
  const collect = (p: typeof policy) => (seen.push(p.version), Promise.resolve(report));
  assert.equal(await reportPostureOnce(null, policy, collect), false);
  assert.equal(await reportPostureOnce(c, null, collect), false);
  assert.equal(await reportPostureOnce(c, policy, undefined), false);
  assert.deepEqual(seen, []);
  assert.equal(await reportPostureOnce(c, policy, collect), true);
  assert.deepEqual(seen, ["v1"]);
  assert.deepEqual(c.postures, [report]);
});
