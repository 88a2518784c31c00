/**
 * Contract test: the connector's EdgeClient against the real edge app
 * (src/http/app_edge.ts) in-process, so a drift between the two sides of
 * src/http/api/schemas.ts fails here.
 */
import assert from "node:assert/strict";
import { EdgeApiError, isCredentialRefused } from "../../src/connector/edge_api.ts";
import { parseEnrollmentKey } from "../../src/connector/enrollment_key.ts";
import { EdgeClient } from "../../src/http/edge_client.ts";
import {
  DeviceIdentity,
  fingerprintHash,
  generateDeviceKeys,
} from "../../src/connector/identity.ts";
import { postureReport } from "../../src/connector/mod.ts";
import { makeBundle } from "../connector/fake_edge.ts";
import { fixture } from "./helpers.ts";

Deno.test("EdgeClient speaks the real edge API", async () => {
  const f = await fixture({ sseKeepaliveMs: 50 });
  const keyText = f.newKey().key;
  const payload = parseEnrollmentKey(keyText);
  assert.equal(payload.u, "https://edge.test:8443");
  const client = new EdgeClient({
    apiUrl: payload.u,
    caPem: "unused",
    fetch: (req) => Promise.resolve(f.app.fetch(req)),
  });
  const keys = await generateDeviceKeys();
  const fp = { machineId: "0123456789abcdef0123456789abcdef", macs: ["02:00:00:00:00:07"] };
  const res = await client.enroll({
    key: payload.s,
    hostname: "ws1",
    os: "debian",
    osVersion: "12",
    connectorVersion: "0.1.0",
    fingerprint: fp,
    wgPublicKey: keys.wgPublicKey,
    signingPublicKey: keys.signingPublicKey,
  });
  assert.match(res.address, /^100\.64\./);
  assert.notEqual(client.clockSkewMs, null, "X-Server-Time read");
  client.setCredentials(res.credential, await fingerprintHash(fp));

  const p = await client.fetchPolicy();
  assert.equal(p.status, "updated");
  const etag = p.status === "updated" ? p.etag : null;
  assert.deepEqual(await client.fetchPolicy(etag), { status: "unchanged" });
  await client.heartbeat({ state: "connected", transport: "udp", clockSkewMs: 0 });
  // A report signed with the device key, as the connector builds it, is accepted.
  const identity = new DeviceIdentity(fp, await fingerprintHash(fp), keys.secrets, {
    ...keys,
    createdAt: 0,
  });
  const report = await postureReport(makeBundle("v1"), {}, {
    deviceId: () => res.deviceId,
    sign: (d) => identity.sign(d),
  }, () => f.clock.now());
  assert.deepEqual(await client.reportPosture(report), { passed: true, profiles: [] });
  // The same report again is a replay; the edge's refusal arrives as a typed error.
  await assert.rejects(
    client.reportPosture(report),
    (e) => e instanceof EdgeApiError && e.code === "posture_report_replayed",
  );
  const c2c = await client.registerC2c("ws1.clients.portcullis.internal");
  assert.equal(typeof c2c.valid, "boolean");
  await client.supportRequest(
    "it broke",
    new Uint8Array([0x50, 0x4b, 5, 6, ...new Uint8Array(18)]),
  );

  // The stream announces the current version at once.
  const ac = new AbortController();
  const seen: string[] = [];
  const following = client.followPolicy({
    signal: ac.signal,
    onVersion: (v) => seen.push(v),
    minBackoffMs: 20,
    maxBackoffMs: 50,
  });
  for (let i = 0; i < 200 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(seen[0], p.status === "updated" ? p.policy.version : "");
  ac.abort();
  await following;

  // A wrong fingerprint with a good credential is a refused credential.
  client.setCredentials(res.credential, "f".repeat(64));
  await assert.rejects(() => client.fetchPolicy(), (e: unknown) => {
    assert.ok(e instanceof EdgeApiError);
    assert.equal(e.code, "device_fingerprint_mismatch");
    assert.ok(isCredentialRefused(e));
    return true;
  });
  f.store.close();
});
