/** Client-to-client names: derived from the policy and hostname, refusals told. */
import assert from "node:assert/strict";
import { C2cRegistrar, deviceFqdn, registerC2c } from "../../../src/connector/engine/c2c.ts";
import { FakeEdgeApi } from "../../../src/connector/fake_edge_api.ts";
import { PolicyBundle } from "../../../src/policy/types.ts";
import { setLogSinks } from "../../../src/log.ts";
import { makeBundle } from "./helpers.ts";

setLogSinks([]);

function withC2c(
  enabled: boolean,
  domain = "clients.portcullis.internal",
  hostnameRegex?: string,
): PolicyBundle {
  return PolicyBundle.parse({
    ...makeBundle("v1"),
    clientToClient: { enabled, domain, ...(hostnameRegex ? { hostnameRegex } : {}) },
  });
}

Deno.test("c2c: the device name (table)", () => {
  const table: [PolicyBundle | null, string, string | null][] = [
    [null, "ws1", null],
    [withC2c(false), "ws1", null],
    [withC2c(true), "ws1", "ws1.clients.portcullis.internal"],
    [withC2c(true), "WS1.corp.example", "ws1.clients.portcullis.internal"],
    [withC2c(true, "c2c.example"), "laptop-7", "laptop-7.c2c.example"],
  ];
  for (const [policy, host, want] of table) assert.equal(deviceFqdn(policy, host), want, host);
});

Deno.test("c2c: registration; a refused name is told, a failure is not", async () => {
  const raised: string[] = [];
  const hub = {
    raise: (type: string, _s: string, m: string) => (raised.push(`${type}: ${m}`), {} as never),
  };
  const c = new FakeEdgeApi();
  await registerC2c(c, null, hub);
  await registerC2c(null, "ws1.c", hub);
  assert.deepEqual(c.calls, []);
  await registerC2c(c, "ws1.c", hub);
  assert.deepEqual(c.calls, ["registerC2c:ws1.c"]);
  assert.deepEqual(raised, []);
  c.c2c = { valid: false, reason: "taken by another device", serverTime: "" };
  await registerC2c(c, "ws1.c", hub);
  assert.deepEqual(raised, [
    "c2c_invalid: Client-to-client name ws1.c refused: taken by another device",
  ]);
  c.failures.set("registerC2c", new Error("edge down"));
  await registerC2c(c, "ws1.c", hub);
  assert.equal(raised.length, 1);
});

Deno.test("c2c: the registrar registers again when the policy turns it on or changes the pattern", async () => {
  const hub = { raise: () => ({}) as never };
  const c = new FakeEdgeApi();
  let now = 1000;
  const r = new C2cRegistrar({ hub, clock: { now: () => now } });
  // [policy, force, registers?, standing valid after]
  const steps: [string, PolicyBundle | null, boolean, boolean, boolean | null][] = [
    ["no policy", null, false, false, null],
    ["client-to-client off", withC2c(false), false, false, null],
    ["turned on", withC2c(true, "c.example", "^x$"), false, true, true],
    ["same policy again", withC2c(true, "c.example", "^x$"), false, false, true],
    ["a new pattern", withC2c(true, "c.example", "^ws1\\."), false, true, true],
    ["a new domain", withC2c(true, "d.example", "^ws1\\."), false, true, true],
    ["a reconnect forces it", withC2c(true, "d.example", "^ws1\\."), true, true, true],
    ["turned off", withC2c(false), false, false, null],
    ["on again, same as before", withC2c(true, "d.example", "^ws1\\."), false, true, true],
  ];
  for (const [name, policy, force, registers, valid] of steps) {
    now += 1000;
    const before = c.calls.length;
    assert.equal(await r.sync(c, policy, "ws1", force), registers, name);
    assert.equal(c.calls.length - before, registers ? 1 : 0, name);
    assert.equal(r.standing()?.valid ?? null, valid, name);
    if (registers) assert.equal(r.standing()?.checkedAt, now, name);
  }
  assert.equal(c.calls.at(-1), "registerC2c:ws1.d.example");

  // The edge's refusal is what the standing shows, with its reason.
  c.c2c = { valid: false, reason: "does not match ^nope$", serverTime: "" };
  await r.sync(c, withC2c(true, "d.example", "^nope$"), "ws1");
  assert.deepEqual(r.standing(), {
    fqdn: "ws1.d.example",
    valid: false,
    reason: "does not match ^nope$",
    checkedAt: now,
  });
  // An unreachable edge leaves the name to be registered on the next sync.
  c.failures.set("registerC2c", new Error("edge down"));
  assert.equal(await r.sync(c, withC2c(true, "d.example", "^y$"), "ws1"), true);
  c.failures.delete("registerC2c");
  c.c2c = { valid: true, reason: "matches", serverTime: "" };
  assert.equal(await r.sync(c, withC2c(true, "d.example", "^y$"), "ws1"), true, "retried");
  assert.equal(r.standing()?.valid, true);
});
