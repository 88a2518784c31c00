/** The connector's posture loop: looks often, sends on a change of facts or when the period is up. */
import assert from "node:assert/strict";
import {
  describeVerdict,
  type PostureSendState,
  reportPeriodMs,
  reportPostureOnce,
} from "../../../src/connector/engine/posture_loop.ts";
import { FakeEdgeApi } from "../../../src/connector/fake_edge_api.ts";
import { PostureProfile } from "../../../src/policy/types.ts";
import { makeBundle } from "./helpers.ts";

Deno.test("posture loop: sends on changed facts or when due, not on every look", async () => {
  const c = new FakeEdgeApi();
  const policy = makeBundle("v1");
  let facts: unknown = { files: [{ path: "/x", exists: false }] };
  let n = 0;
  const collect = () =>
    Promise.resolve({
      payload: JSON.stringify({ deviceId: "d", collectedAt: `t${n++}`, facts }),
      signature: "",
    });
  const state: PostureSendState = { lastFacts: null, lastSentAt: 0 };
  const look = (now: number) =>
    reportPostureOnce(c, policy, collect, Object.assign(state, { now, periodMs: 60_000 }));
  const table: [number, unknown, boolean][] = [
    [2_000, null, true], // the first look sends
    [4_000, null, false], // same facts, not due
    [6_000, { files: [{ path: "/x", exists: true }] }, true], // changed: sends at once
    [8_000, null, false],
    [66_000, null, true], // a period after the last send
    [68_000, null, false],
  ];
  for (const [now, next, sends] of table) {
    if (next) facts = next;
    assert.equal(await look(now), sends, `at ${now} ms`);
  }
  assert.equal(c.postures.length, 3);
});

Deno.test("posture loop: the period is at most a third of the shortest profile validity", () => {
  const policy = makeBundle("v1");
  assert.equal(reportPeriodMs(policy, 300), 300_000);
  const short = {
    ...policy,
    postureProfiles: [
      PostureProfile.parse({
        name: "a",
        checks: [{ type: "disk_encryption" }],
        validityMinutes: 6,
      }),
      PostureProfile.parse({ name: "b", checks: [{ type: "disk_encryption" }] }),
    ],
  };
  assert.equal(reportPeriodMs(short, 300), 120_000);
});

Deno.test("posture loop: the user is told when the edge's verdict changes, in a sentence", async () => {
  const c = new FakeEdgeApi();
  const policy = makeBundle("v1");
  let n = 0;
  const collect = () =>
    Promise.resolve({ payload: JSON.stringify({ facts: { n: n++ } }), signature: "" });
  const told: string[] = [];
  const state: PostureSendState = {
    lastFacts: null,
    lastSentAt: 0,
    onVerdict: (v) => told.push(describeVerdict(v)),
  };
  const pass = { passed: true, profiles: [{ profile: "disk", passed: true, reason: "ok" }] };
  const fail = {
    passed: false,
    profiles: [{ profile: "disk", passed: false, reason: "disk not encrypted" }],
  };
  for (const [i, v] of [pass, fail, fail, pass].entries()) {
    c.postureVerdict = v;
    await reportPostureOnce(c, policy, collect, Object.assign(state, { now: i, periodMs: 1 }));
  }
  assert.deepEqual(told, [
    "Posture failing: disk (disk not encrypted)",
    "Posture passes: disk",
  ], "a first passing verdict is not news; a repeated one neither");
});
