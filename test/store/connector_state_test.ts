import assert from "node:assert/strict";
import { ConnectorState } from "../../src/store/connector_state.ts";

const row = {
  fingerprintHash: "a".repeat(64),
  salt: "c2FsdA==",
  iv: "aXY=",
  ciphertext: "Y3Q=",
  wgPublicKey: "A".repeat(43) + "=",
  signingPublicKey: "B".repeat(43) + "=",
  createdAt: 5,
};
const enrol = {
  deviceId: "dev-1",
  apiUrl: "https://edge.example:8443",
  bootstrapUrl: "http://edge.example:8081",
  caPem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
  address: "100.64.0.2",
  network: "100.64.0.0/16",
  edgeAddress: "100.64.0.1",
  edgePublicKey: "C".repeat(43) + "=",
  endpoints: [{ transport: "udp" as const, host: "192.0.2.1", port: 443 }],
  user: "alice",
  group: null,
  enrolledAt: 10,
};

Deno.test("connector state: identity, enrolment and policy round-trip and survive reopen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc-cstate-" });
  try {
    let s = ConnectorState.open(`${dir}/c.db`);
    assert.equal(s.getIdentity(), null);
    assert.equal(s.getEnrollment(), null);
    s.putEnrollment(enrol, row, { version: "v1", etag: '"v1"', bundle: { x: 1 }, updatedAt: 11 });
    s.close();
    s = ConnectorState.open(`${dir}/c.db`);
    assert.deepEqual(s.getIdentity(), row);
    assert.deepEqual(s.getEnrollment(), enrol);
    assert.deepEqual(s.getPolicy(), {
      version: "v1",
      etag: '"v1"',
      bundle: { x: 1 },
      updatedAt: 11,
    });
    s.clearEnrollment();
    assert.equal(s.getEnrollment(), null);
    assert.equal(s.getPolicy(), null);
    assert.deepEqual(s.getIdentity(), row, "logout keeps the device keys");
    s.discardIdentity();
    assert.equal(s.getIdentity(), null);
    s.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connector state: a failing enrolment write leaves nothing half-written", () => {
  const s = ConnectorState.open(":memory:");
  assert.throws(() =>
    s.putEnrollment(enrol, { ...row, salt: null as unknown as string }, {
      version: "v1",
      etag: null,
      bundle: {},
      updatedAt: 1,
    })
  );
  assert.equal(s.getIdentity(), null);
  assert.equal(s.getEnrollment(), null);
  assert.equal(s.getPolicy(), null);
  s.close();
});

Deno.test("connector state: notifications filter by type and after id, newest first", () => {
  const s = ConnectorState.open(":memory:");
  const a = s.addNotification({
    ts: 1,
    type: "state_changed",
    severity: "info",
    message: "a",
    data: {},
  });
  s.addNotification({
    ts: 2,
    type: "policy_updated",
    severity: "info",
    message: "b",
    data: { v: 2 },
  });
  s.addNotification({ ts: 3, type: "state_changed", severity: "warn", message: "c", data: {} });
  assert.deepEqual(s.listNotifications().map((n) => n.message), ["c", "b", "a"]);
  assert.deepEqual(s.listNotifications({ type: "state_changed" }).map((n) => n.message), [
    "c",
    "a",
  ]);
  assert.deepEqual(s.listNotifications({ afterId: a.id }).map((n) => n.message), ["c", "b"]);
  assert.deepEqual(s.listNotifications({ type: "x'; DROP TABLE notifications; --" }), []);
  assert.equal(s.listNotifications({ limit: 1 }).length, 1);
  assert.deepEqual(s.listNotifications({ type: "policy_updated" })[0].data, { v: 2 });
  s.setMeta("k", { a: 1 });
  assert.deepEqual(s.getMeta("k"), { a: 1 });
  s.close();
});
