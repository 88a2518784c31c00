/**
 * The edge's own posture judgement (EdgePostureSource) over the real store
 * and device API: it judges signed facts, judges again when the profiles
 * change and when a profile's re-evaluation time comes (a certificate that
 * expires meanwhile fails then), and tells enforcement only when an outcome
 * changed.
 */
import assert from "node:assert/strict";
import type { EdgePostureSource } from "../../src/edge/access/posture_source.ts";
import { fixture, signedPosture } from "../http/helpers.ts";

async function setup() {
  const f = await fixture();
  const sig = f.signer();
  const d = await f.enroll({ signingPublicKey: sig.publicKey });
  const id = d.json.deviceId as string;
  const source = f.ctx.posture as EdgePostureSource;
  const changes: string[] = [];
  source.onChange((x) => changes.push(x));
  const profiles = (items: unknown[]) =>
    f.adminReq("PUT", "/api/v1/admin/policy/posture-profiles", { items });
  const report = async (facts: Record<string, unknown>) => {
    const r = await f.req(
      "POST",
      "/api/v1/posture",
      signedPosture(sig, id, f.clock.now(), facts),
      d.headers,
    );
    assert.equal(r.status, 200, await r.clone().text());
    f.clock.advance(1); // the next report is collected later
  };
  return { f, id, source, changes, profiles, report };
}

Deno.test("edge posture: judged from the facts, again on a profile change", async () => {
  const { f, id, source, changes, profiles, report } = await setup();
  await profiles([{ name: "marker", checks: [{ type: "file_exists", path: "/etc/corp/marker" }] }]);
  await report({ files: [{ path: "/etc/corp/marker", exists: false }], diskEncryption: true });
  const m = source.profiles(id).get("marker")!;
  assert.equal(m.passed, false);
  assert.equal(m.reason, "/etc/corp/marker missing");
  assert.deepEqual(changes, [id]);

  // The admin changes the profile: the stored facts are judged again at once.
  await profiles([{ name: "marker", checks: [{ type: "disk_encryption" }] }]);
  assert.equal(source.profiles(id).get("marker")!.passed, true);
  assert.deepEqual(changes, [id, id]);
  assert.deepEqual(
    f.store.posture.results(id).map((r) => [r.check, r.expected, r.actual]),
    [["disk_encryption", "disk encrypted", "disk encrypted"]],
  );
  // A change that leaves the outcome as it was re-decides nothing.
  await profiles([{ name: "marker", checks: [{ type: "disk_encryption" }], validityMinutes: 30 }]);
  assert.deepEqual(changes, [id, id]);
  // Deleting the profile leaves nothing to pass.
  await profiles([]);
  assert.equal(source.profiles(id).size, 0);
  assert.deepEqual(changes, [id, id, id]);
});

Deno.test("edge posture: re-evaluated every reevaluateMinutes (a certificate expiring meanwhile fails)", async () => {
  const { f, id, source, changes, profiles, report } = await setup();
  await profiles([{
    name: "cert",
    checks: [{ type: "certificate", issuer: "CN=Corp Device CA" }],
    reevaluateMinutes: 1,
    validityMinutes: 60,
  }]);
  await report({
    certificates: [{
      subject: "CN=laptop-17",
      issuer: "CN=Corp Device CA",
      notAfter: f.clock.now() + 90_000,
      hasKey: true,
    }],
  });
  assert.equal(source.profiles(id).get("cert")!.passed, true);
  changes.length = 0;
  f.clock.advance(30_000);
  source.tick();
  assert.deepEqual(changes, [], "not due yet");
  f.clock.advance(31_000);
  source.tick();
  assert.deepEqual(changes, [], "due, judged again, still valid: nothing changed");
  f.clock.advance(61_000);
  source.tick();
  assert.deepEqual(changes, [id]);
  const c = source.profiles(id).get("cert")!;
  assert.equal(c.passed, false);
  assert.equal(c.reason, "certificate CN=laptop-17 expired");
});

Deno.test("edge posture: a report counts for the profile's validity from its collection", async () => {
  const { f, id, source, profiles, report } = await setup();
  await profiles([{ name: "disk", checks: [{ type: "disk_encryption" }], validityMinutes: 2 }]);
  await report({ diskEncryption: true });
  const s = source.profiles(id).get("disk")!;
  assert.equal(s.passed, true);
  assert.equal(s.expiresAt, f.clock.now() - 1 + 2 * 60_000);
  // The admin API says so once it has expired.
  f.clock.advance(2 * 60_000);
  const d = await (await f.adminReq("GET", `/api/v1/admin/devices/${id}`)).json();
  assert.equal(d.posture.profiles[0].passed, false);
  assert.match(d.posture.profiles[0].reason, /^expired at /);
});

Deno.test("edge posture: bad profile settings are refused with a code and a sentence, nothing stored", async () => {
  const { f, profiles } = await setup();
  await profiles([{ name: "ok", checks: [{ type: "disk_encryption" }] }]);
  const bad: [string, unknown][] = [
    ["validity 0", { name: "p", checks: [{ type: "disk_encryption" }], validityMinutes: 0 }],
    ["validity a string", {
      name: "p",
      checks: [{ type: "disk_encryption" }],
      validityMinutes: "5",
    }],
    ["re-evaluation over a day", {
      name: "p",
      checks: [{ type: "disk_encryption" }],
      reevaluateMinutes: 1441,
    }],
    ["certificate with neither issuer nor subject", {
      name: "p",
      checks: [{ type: "certificate" }],
    }],
    ["EDR hash not hex", { name: "p", checks: [{ type: "edr", service: "x", sha256: "zz" }] }],
    ["EDR without a service", { name: "p", checks: [{ type: "edr" }] }],
  ];
  for (const [name, item] of bad) {
    const r = await profiles([item]);
    assert.equal(r.status, 400, name);
    const body = await r.json();
    assert.equal(body.error.code, "invalid_request", name);
    assert.ok(body.error.message.length > 10, name);
  }
  const list = await (await f.adminReq("GET", "/api/v1/admin/policy/posture-profiles")).json();
  assert.deepEqual(list.items.map((p: { name: string }) => p.name), ["ok"]);
});
