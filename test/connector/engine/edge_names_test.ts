/** The edge named by DNS: resolution, changes, failures, and the routes it keeps out. */
import assert from "node:assert/strict";
import { setLogSinks } from "../../../src/log.ts";
import { EdgeNames } from "../../../src/connector/engine/edge_names.ts";
import { tunnelConfig } from "../../../src/connector/engine/tunnel_config.ts";
import { keepOut } from "../../../src/connector/tunnel.ts";
import { routedThroughTunnel } from "../../../src/policy/routes.ts";
import { PolicyBundle } from "../../../src/policy/types.ts";
import type { StoredEnrollment } from "../../../src/store/connector_state.ts";

setLogSinks([]);

const ep = (host: string) => ({ transport: "udp" as const, host, port: 443 });

Deno.test("EdgeNames: names resolve, literals are left to the plan, failures keep the last answer", async () => {
  const answers: Record<string, string[] | Error> = { "edge.test": ["192.0.2.1"] };
  const names = new EdgeNames((h) => {
    const a = answers[h];
    return a instanceof Error ? Promise.reject(a) : Promise.resolve(a ?? []);
  });
  assert.equal(await names.refresh([ep("192.0.2.9")]), false);
  assert.deepEqual(names.addresses, []);
  assert.equal(await names.refresh([ep("edge.test"), ep("192.0.2.9")]), true);
  assert.deepEqual(names.addresses, ["192.0.2.1"]);
  assert.equal(await names.refresh([ep("edge.test")]), false, "same answer: no change");
  answers["edge.test"] = ["192.0.2.2", "2001:db8::2"];
  assert.equal(await names.refresh([ep("edge.test")]), true);
  assert.deepEqual(names.addresses, ["192.0.2.2", "2001:db8::2"]);
  answers["edge.test"] = new Error("SERVFAIL");
  assert.equal(
    await names.refresh([ep("edge.test")]),
    false,
    "a failed lookup keeps the addresses",
  );
  assert.deepEqual(names.addresses, ["192.0.2.2", "2001:db8::2"]);
  answers["edge.test"] = [];
  assert.equal(await names.refresh([ep("edge.test")]), false, "no answer keeps them too");
  assert.equal(await names.refresh([ep("192.0.2.9")]), true, "no named endpoint any more");
  assert.deepEqual(names.addresses, []);
});

Deno.test("tunnelConfig: resolved edge addresses are routed outside the tunnel", () => {
  const e = {
    deviceId: "d",
    apiUrl: "https://edge.test:8443",
    caPem: "",
    address: "100.64.0.2",
    network: "100.64.0.0/16",
    edgeAddress: "100.64.0.1",
    edgePublicKey: "k",
    endpoints: [ep("edge.test")],
    user: null,
    group: null,
    enrolledAt: 0,
  } satisfies StoredEnrollment;
  const p = PolicyBundle.parse({
    version: "1",
    generatedAt: new Date(0).toISOString(),
    appProfile: { name: "p", forwarding: { name: "f" } },
  });
  const without = tunnelConfig(e, p, "key")!;
  assert.ok(routedThroughTunnel(without.routes, "198.51.100.1"));
  assert.ok(routedThroughTunnel(without.routes, "198.51.100.7"));
  const withName = tunnelConfig(e, p, "key", ["198.51.100.7"])!;
  assert.ok(!routedThroughTunnel(withName.routes, "198.51.100.7"));
  assert.ok(routedThroughTunnel(withName.routes, "198.51.100.1"));
});

Deno.test("keepOut: the tunnel's own endpoint is cut out of its family only", () => {
  const routes = ["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"];
  const out = keepOut(routes, "198.51.100.7");
  assert.ok(out.includes("::/1") && out.includes("8000::/1"), "IPv6 halves stay halves");
  assert.ok(!out.includes("0.0.0.0/0") && !out.includes("::/0"));
  const plan = {
    tunnel4: out.filter((r) => !r.includes(":")),
    tunnel6: [],
    bypass4: [],
    bypass6: [],
  };
  assert.ok(!routedThroughTunnel(plan, "198.51.100.7"));
  assert.ok(routedThroughTunnel(plan, "198.51.100.8"));
  assert.deepEqual(keepOut(routes, undefined), routes);
  assert.deepEqual(keepOut(["10.0.0.0/8"], "192.0.2.1"), ["10.0.0.0/8"], "not routed: unchanged");
  const v6 = keepOut(routes, "[2001:db8::1]");
  assert.ok(v6.includes("0.0.0.0/1") && v6.includes("128.0.0.0/1"));
  assert.ok(!v6.includes("::/1"), "the IPv6 half with the endpoint is split");
});
