/**
 * The fleet over HTTP: GET /api/v1/admin/edges lists the registered edges
 * with their health; a second edge registering answers a device's waiting
 * long-poll with a bundle that lists it; DELETE forgets a stopped edge and
 * refuses a healthy or unknown one with a code and a sentence.
 */
import assert from "node:assert/strict";
import { EdgeRegistry } from "../../src/fleet/edge_registry.ts";
import { PolicyResponse } from "../../src/http/api/schemas.ts";
import { fixture, key32 } from "./helpers.ts";

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 3000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

Deno.test("fleet API: list, a new edge wakes the long-poll, forget a stopped edge", async () => {
  const f = await fixture();
  const other = new EdgeRegistry({
    store: f.store,
    clock: f.clock,
    notifier: f.notifier,
    identity: {
      name: "edge-b",
      region: "us-east",
      wgPublicKey: key32(),
      endpoints: [{ transport: "udp", host: "203.0.113.9", port: 443 }],
      apiUrl: "https://203.0.113.9:8443",
      bootstrapUrl: "http://203.0.113.9:8081",
      caPem: "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n",
      version: "0.1.0",
    },
    heartbeatMs: 3600_000,
  });
  f.ctx.fleet.start();
  try {
    const d = await f.enroll();
    assert.deepEqual(d.json.policy.edges.map((e: { name: string }) => e.name), ["edge-test"]);

    // A device waiting on its bundle hears of the new edge at once.
    const t0 = performance.now();
    const pending = f.req("GET", "/api/v1/policy?wait=20", undefined, {
      ...d.headers,
      "if-none-match": `"${d.json.policy.version}"`,
    });
    await until(() => f.notifier.subscriberCount === 1, "the long-poll to wait");
    other.start();
    const res = await pending;
    assert.equal(res.status, 200);
    assert.ok(performance.now() - t0 < 3000);
    const body = PolicyResponse.parse(await res.json());
    assert.deepEqual(body.policy.edges.map((e) => [e.name, e.region]), [
      ["edge-b", "us-east"],
      ["edge-test", ""],
    ]);

    const list = await (await f.adminReq("GET", "/api/v1/admin/edges")).json();
    assert.equal(list.self, f.ctx.fleet.id);
    assert.equal(list.unhealthyAfterMs, 15_000);
    assert.deepEqual(
      list.edges.map((e: { name: string; health: string; self: boolean }) => [
        e.name,
        e.health,
        e.self,
      ]),
      [["edge-b", "healthy", false], ["edge-test", "healthy", true]],
    );
    assert.equal(list.edges[0].endpoints[0].host, "203.0.113.9");
    assert.equal(typeof list.edges[0].lastHeartbeat, "string");
    assert.equal(list.edges[0].caPem, undefined, "the list does not carry CA certificates");

    // A healthy edge cannot be forgotten; an unknown one is 404.
    const healthy = await f.adminReq("DELETE", `/api/v1/admin/edges/${other.id}`);
    assert.equal(healthy.status, 409);
    const hj = await healthy.json();
    assert.equal(hj.error.code, "edge_healthy");
    assert.match(hj.error.message, /edge-b.*healthy/);
    const unknown = await f.adminReq("DELETE", "/api/v1/admin/edges/nope");
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).error.code, "edge_not_found");

    other.stop();
    await until(() => f.ctx.fleet.healthy().length === 1, "the stopped edge to leave the list");
    const gone = await f.adminReq("DELETE", `/api/v1/admin/edges/${other.id}`);
    assert.equal(gone.status, 204);
    assert.equal(f.store.edges.get(other.id), undefined);
    assert.equal(f.store.audit.list({ action: "edge.forget" }).length, 1);
  } finally {
    other.stop();
    f.ctx.fleet.stop();
  }
});
