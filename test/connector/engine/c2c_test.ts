/** Client-to-client names: derived from the policy and hostname, refusals told. */
import assert from "node:assert/strict";
import { deviceFqdn, registerC2c } from "../../../src/connector/engine/c2c.ts";
import { FakeEdgeApi } from "../../../src/connector/fake_edge_api.ts";
import { PolicyBundle } from "../../../src/policy/types.ts";
import { setLogSinks } from "../../../src/log.ts";
import { makeBundle } from "./helpers.ts";

setLogSinks([]);

function withC2c(enabled: boolean, domain = "clients.portcullis.internal"): PolicyBundle {
  return PolicyBundle.parse({ ...makeBundle("v1"), clientToClient: { enabled, domain } });
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
