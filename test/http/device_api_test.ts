/** Device API: enrolment, identity, device auth, policy, posture, c2c, heartbeat, support. */
import { reenrollMessage } from "../../src/control/mod.ts";
import assert from "node:assert/strict";
import { EnrollResponse, PolicyResponse } from "../../src/http/api/schemas.ts";
import { fingerprintHash } from "../../src/identity/secrets.ts";
import { fixture, key32, signedPosture } from "./helpers.ts";
import { postureSigningMessage } from "../../src/posture/report.ts";
import { waitUntil } from "../e2e/netns.ts";

/** Waits until the notifier has `n` subscribers (streams end asynchronously). */
function subscribers(f: { notifier: { subscriberCount: number } }, n: number): Promise<number> {
  return waitUntil(
    `${n} notifier subscribers`,
    () => Promise.resolve(f.notifier.subscriberCount === n),
    2000,
    2,
  );
}

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const j = await res.json();
  return { status: res.status, code: j.error?.code, message: j.error?.message };
}

Deno.test("enrol: a good request gets a device, credential, address and policy in one go", async () => {
  const f = await fixture();
  const before = f.store.tableCounts();
  const { key } = f.newKey();
  const body = f.enrollBody(key);
  const res = await f.req("POST", "/api/v1/enroll", body);
  assert.equal(res.status, 200);
  assert.ok(res.headers.get("x-server-time"));
  const json = EnrollResponse.parse(await res.json());
  assert.equal(json.address, "100.64.0.2");
  assert.equal(json.network, "100.64.0.0/16");
  assert.equal(json.edgeAddress, "100.64.0.1");
  assert.equal(json.policy.appProfile.name, "default");
  assert.match(json.credential, /^pcd_/);
  const after = f.store.tableCounts();
  assert.equal(after.devices, before.devices + 1);
  assert.equal(after.address_leases, before.address_leases + 1);
  assert.equal(after.audit_log, before.audit_log + 2); // key creation + enrolment
  const dev = f.store.devices.byId(json.deviceId)!;
  assert.equal(dev.fingerprint, fingerprintHash(body.fingerprint));
  assert.notEqual(dev.credentialHash, json.credential, "credential stored hashed");
  assert.equal(f.tunnel.peers.get(body.wgPublicKey)?.address, "100.64.0.2");
  // The full key string and the bare secret are both accepted.
  const second = await f.enroll();
  assert.equal(second.json.address, "100.64.0.3");
});

Deno.test("enrol: bad input gets a 4xx with a code and writes nothing", async () => {
  const f = await fixture();
  const used = f.newKey();
  await f.enroll({}, used.key);
  const revoked = f.newKey();
  f.store.enrollmentKeys.revoke(revoked.record.id, f.clock.now());
  const expired = f.newKey({ expiresInMs: 1000 });
  f.clock.advance(2000);
  const good = f.newKey({ reusable: true }).key;
  const secretOnly = "x".repeat(43);
  const cases: [string, () => Response | Promise<Response>, number, string][] = [
    ["malformed JSON", () => f.req("POST", "/api/v1/enroll", "{not json"), 400, "malformed_json"],
    ["empty body", () => f.req("POST", "/api/v1/enroll", ""), 400, "malformed_json"],
    ["JSON array", () => f.req("POST", "/api/v1/enroll", []), 400, "invalid_request"],
    [
      "wrong type",
      () => f.req("POST", "/api/v1/enroll", { ...f.enrollBody(good), hostname: 5 }),
      400,
      "invalid_request",
    ],
    [
      "unknown field",
      () => f.req("POST", "/api/v1/enroll", { ...f.enrollBody(good), admin: true }),
      400,
      "invalid_request",
    ],
    [
      "missing field",
      () => {
        const b: Record<string, unknown> = { ...f.enrollBody(good) };
        delete b.wgPublicKey;
        return f.req("POST", "/api/v1/enroll", b);
      },
      400,
      "invalid_request",
    ],
    [
      "bad key format",
      () => f.req("POST", "/api/v1/enroll", { ...f.enrollBody(good), wgPublicKey: "abc" }),
      400,
      "invalid_request",
    ],
    [
      "bad MAC",
      () =>
        f.req("POST", "/api/v1/enroll", {
          ...f.enrollBody(good),
          fingerprint: { machineId: "m", macs: ["zz"] },
        }),
      400,
      "invalid_request",
    ],
    [
      "SQL in hostname",
      () =>
        f.req("POST", "/api/v1/enroll", {
          ...f.enrollBody(good),
          hostname: "x'; DROP TABLE devices;--",
        }),
      400,
      "invalid_request",
    ],
    [
      "oversized body",
      () => f.req("POST", "/api/v1/enroll", { ...f.enrollBody(good), os: "a".repeat(70_000) }),
      413,
      "body_too_large",
    ],
    [
      "wrong content type",
      () =>
        f.app.request("/api/v1/enroll", {
          method: "POST",
          headers: { "content-type": "text/plain" },
          body: JSON.stringify(f.enrollBody(good)),
        }),
      415,
      "unsupported_media_type",
    ],
    [
      "no content type",
      () =>
        f.app.request("/api/v1/enroll", {
          method: "POST",
          body: JSON.stringify(f.enrollBody(good)),
        }),
      415,
      "unsupported_media_type",
    ],
    [
      "invalid UTF-8",
      () =>
        f.app.request("/api/v1/enroll", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
        }),
      400,
      "malformed_json",
    ],
    [
      "unknown key",
      () => f.req("POST", "/api/v1/enroll", f.enrollBody(secretOnly)),
      401,
      "enrollment_key_unknown",
    ],
    [
      "malformed key string",
      () => f.req("POST", "/api/v1/enroll", f.enrollBody("pc1.!!!!!!!!!!!!!!!!!")),
      400,
      "malformed_enrollment_key",
    ],
    [
      "revoked key",
      () => f.req("POST", "/api/v1/enroll", f.enrollBody(revoked.key)),
      403,
      "enrollment_key_revoked",
    ],
    [
      "expired key",
      () => f.req("POST", "/api/v1/enroll", f.enrollBody(expired.key)),
      410,
      "enrollment_key_expired",
    ],
    [
      "reused key",
      () => f.req("POST", "/api/v1/enroll", f.enrollBody(used.key)),
      410,
      "enrollment_key_used",
    ],
    [
      "same wg and signing key",
      () => {
        const k = key32();
        return f.req(
          "POST",
          "/api/v1/enroll",
          f.enrollBody(good, { wgPublicKey: k, signingPublicKey: k }),
        );
      },
      400,
      "invalid_request",
    ],
  ];
  for (const [name, run, status, code] of cases) {
    const before = f.store.tableCounts();
    const res = await run();
    const err = await errorOf(res);
    assert.equal(err.status, status, `${name}: ${JSON.stringify(err)}`);
    assert.equal(err.code, code, name);
    assert.ok(err.message.length > 5, name);
    assert.ok(res.headers.get("x-server-time"), name);
    assert.deepEqual(f.store.tableCounts(), before, `${name}: nothing written`);
  }
  // The field path is named.
  const res = await f.req("POST", "/api/v1/enroll", {
    ...f.enrollBody(good),
    fingerprint: { machineId: "m", macs: ["zz"] },
  });
  assert.match((await errorOf(res)).message, /fingerprint\.macs\[0\]/);
});

Deno.test("enrol: SQL metacharacters in accepted strings are stored verbatim", async () => {
  const f = await fixture();
  const nasty = `Robert'); DROP TABLE devices; -- "x" \\ %_`;
  const { json } = await f.enroll({ osVersion: nasty, os: "li'nux" });
  const d = f.store.devices.byId(json.deviceId)!;
  assert.equal(d.osVersion, nasty);
  assert.equal(d.os, "li'nux");
  assert.equal(f.store.devices.count(), 1);
});

Deno.test("enrol: a cloned disk image (same keys, other hardware) is refused and the original kept", async () => {
  const f = await fixture();
  const orig = await f.enroll();
  const beforeDevice = f.store.devices.byId(orig.json.deviceId);
  const before = f.store.tableCounts();
  const clone = f.enrollBody(f.newKey().key, {
    wgPublicKey: orig.body.wgPublicKey,
    signingPublicKey: orig.body.signingPublicKey,
  });
  const countsWithKey = f.store.tableCounts();
  const res = await f.req("POST", "/api/v1/enroll", clone);
  const err = await errorOf(res);
  assert.equal(err.status, 409);
  assert.equal(err.code, "device_identity_conflict");
  assert.match(err.message, /cloned disk image/);
  assert.deepEqual(f.store.devices.byId(orig.json.deviceId), beforeDevice);
  const after = f.store.tableCounts();
  assert.equal(after.devices, before.devices);
  assert.equal(after.notifications, countsWithKey.notifications + 1);
  assert.equal(f.store.notifications.count("identity_conflict"), 1);
  assert.equal(
    after.audit_log,
    countsWithKey.audit_log,
    "refused enrolment leaves no audit half-write",
  );
  // The clone's single-use key was not consumed.
  assert.equal(f.store.enrollmentKeys.list().filter((k) => k.useCount === 0).length, 1);
  // The original still works.
  const pol = await f.req("GET", "/api/v1/policy", undefined, orig.headers);
  assert.equal(pol.status, 200);
  // Only one key reused (the signing key) is enough to refuse.
  const res2 = await f.req(
    "POST",
    "/api/v1/enroll",
    f.enrollBody(f.newKey().key, { signingPublicKey: orig.body.signingPublicKey }),
  );
  assert.equal((await errorOf(res2)).code, "device_identity_conflict");
});

Deno.test("enrol: the same hardware re-enrolling replaces keys and credential, keeps id and address", async () => {
  const f = await fixture();
  await f.enroll();
  const sig = f.signer();
  const first = await f.enroll({ signingPublicKey: sig.publicKey });
  const fingerprint = {
    ...first.body.fingerprint,
    macs: [...first.body.fingerprint.macs].reverse(),
  };
  const wgPublicKey = f.enrollBody("x").wgPublicKey;
  const proof = sig.sign(
    reenrollMessage(fingerprintHash(fingerprint), wgPublicKey, sig.publicKey),
  );
  const again = await f.enroll({
    fingerprint,
    wgPublicKey,
    signingPublicKey: sig.publicKey,
    proof,
  });
  assert.equal(again.json.deviceId, first.json.deviceId);
  assert.equal(again.json.address, first.json.address);
  assert.equal(f.store.devices.count(), 2);
  assert.equal(f.store.leases.count(), 2);
  assert.ok(!f.tunnel.peers.has(first.body.wgPublicKey), "old tunnel key removed");
  assert.ok(f.tunnel.peers.has(again.body.wgPublicKey));
  const old = await f.req("GET", "/api/v1/policy", undefined, first.headers);
  assert.equal((await errorOf(old)).code, "device_unauthorized");
  const fresh = await f.req("GET", "/api/v1/policy", undefined, again.headers);
  assert.equal(fresh.status, 200);
});

Deno.test("enrol: knowing a device's fingerprint is not enough to take its identity", async () => {
  const f = await fixture();
  const sig = f.signer();
  const victim = await f.enroll({ signingPublicKey: sig.publicKey });
  const before = f.store.tableCounts();
  const attacker = f.signer();
  const wgPublicKey = f.enrollBody("x").wgPublicKey;
  const fp = victim.body.fingerprint;
  const msg = reenrollMessage(fingerprintHash(fp), wgPublicKey, attacker.publicKey);
  const attempts: [string, string | undefined][] = [
    ["no proof", undefined],
    ["signed with the attacker's own key", attacker.sign(msg)],
    ["the victim's signature over another message", sig.sign(msg + "x")],
  ];
  for (const [name, proof] of attempts) {
    const body = f.enrollBody(f.newKey().key, {
      fingerprint: fp,
      wgPublicKey,
      signingPublicKey: attacker.publicKey,
      ...(proof ? { proof } : {}),
    });
    const err = await errorOf(await f.req("POST", "/api/v1/enroll", body));
    assert.equal(err.status, 409, name);
    assert.equal(err.code, "device_reenrollment_unproven", name);
    assert.match(err.message, /already enrolled as device/, name);
  }
  const counts = f.store.tableCounts();
  assert.equal(counts.devices, before.devices, "no device added or changed");
  assert.equal(counts.address_leases, before.address_leases);
  // The victim keeps working, and the admins were told.
  const ok = await f.req("GET", "/api/v1/policy", undefined, victim.headers);
  assert.equal(ok.status, 200);
  assert.ok(f.store.notifications.list({ limit: 50 }).some((n) => n.kind === "identity_conflict"));
});

Deno.test("device auth: wrong credential, missing header, other hardware, disabled", async () => {
  const f = await fixture();
  const d = await f.enroll();
  const cases: [string, Record<string, string>, number, string][] = [
    ["no auth", {}, 401, "device_unauthorized"],
    ["not bearer", { authorization: "Basic abc" }, 401, "device_unauthorized"],
    [
      "wrong credential",
      { ...d.headers, authorization: "Bearer pcd_" + "A".repeat(43) },
      401,
      "device_unauthorized",
    ],
    [
      "SQL credential",
      { ...d.headers, authorization: "Bearer ' OR 1=1 --" },
      401,
      "device_unauthorized",
    ],
    [
      "fingerprint mismatch",
      { ...d.headers, "x-device-fingerprint": "0".repeat(64) },
      403,
      "device_fingerprint_mismatch",
    ],
    [
      "fingerprint missing",
      { authorization: d.headers.authorization },
      403,
      "device_fingerprint_mismatch",
    ],
  ];
  for (const [name, headers, status, code] of cases) {
    const res = await f.req("GET", "/api/v1/policy", undefined, headers);
    const err = await errorOf(res);
    assert.equal(err.status, status, name);
    assert.equal(err.code, code, name);
  }
  assert.equal(f.store.notifications.count("fingerprint_mismatch"), 2);
  const dis = await f.adminReq("POST", `/api/v1/admin/devices/${d.json.deviceId}/disable`);
  assert.equal(dis.status, 200);
  const res = await f.req("GET", "/api/v1/policy", undefined, d.headers);
  assert.equal((await errorOf(res)).code, "device_disabled");
  // A disabled device cannot re-enrol its way back.
  const re = await f.req("POST", "/api/v1/enroll", { ...d.body, key: f.newKey().key });
  assert.equal((await errorOf(re)).code, "device_disabled");
});

Deno.test("policy: ETag and If-None-Match, version changes with policy", async () => {
  const f = await fixture();
  const d = await f.enroll();
  const res = await f.req("GET", "/api/v1/policy", undefined, d.headers);
  assert.equal(res.status, 200);
  const body = PolicyResponse.parse(await res.json());
  assert.equal(res.headers.get("etag"), `"${body.policy.version}"`);
  assert.equal(body.policy.version, d.json.policy.version);
  const nm = await f.req("GET", "/api/v1/policy", undefined, {
    ...d.headers,
    "if-none-match": `"${body.policy.version}"`,
  });
  assert.equal(nm.status, 304);
  const put = await f.adminReq("PUT", "/api/v1/admin/policy/app-profiles", {
    items: [{ name: "branch", forwarding: { name: "fp", udpTimeoutSec: 10 } }],
  });
  assert.equal(put.status, 200);
  const changed = await f.req("GET", "/api/v1/policy", undefined, {
    ...d.headers,
    "if-none-match": `"${body.policy.version}"`,
  });
  assert.equal(changed.status, 200);
  const nb = PolicyResponse.parse(await changed.json());
  assert.notEqual(nb.policy.version, body.policy.version);
  assert.equal(nb.policy.appProfile.name, "branch");
  assert.equal(nb.policy.appProfile.forwarding.udpTimeoutSec, 10);
  const bad = await f.req("GET", "/api/v1/policy?wait=abc", undefined, d.headers);
  assert.equal((await errorOf(bad)).code, "invalid_request");
  const big = await f.req("GET", "/api/v1/policy?wait=999", undefined, d.headers);
  assert.equal(big.status, 400);
});

Deno.test("policy: app profiles match the device group by rule order", async () => {
  const f = await fixture();
  const put = await f.adminReq("PUT", "/api/v1/admin/policy/app-profiles", {
    items: [
      { name: "all", ruleOrder: 10, forwarding: { name: "a" } },
      {
        name: "eng",
        ruleOrder: 1,
        groups: ["eng"],
        forwarding: { name: "e" },
        postureProfiles: ["disk"],
      },
    ],
  });
  assert.equal(put.status, 200);
  await f.adminReq("PUT", "/api/v1/admin/policy/posture-profiles", {
    items: [{ name: "disk", checks: [{ type: "disk_encryption" }] }],
  });
  const eng = await f.enroll({}, f.newKey({ group: "eng" }).key);
  const other = await f.enroll();
  assert.equal(eng.json.group, "eng");
  assert.equal(eng.json.policy.appProfile.name, "eng");
  assert.equal(eng.json.policy.postureProfiles[0].name, "disk");
  assert.equal(other.json.policy.appProfile.name, "all");
});

Deno.test("policy: long-poll returns on change, or 304 after the wait", async () => {
  const f = await fixture();
  // A rule for a segment that does not exist yet changes no device's bundle.
  await f.adminReq("PUT", "/api/v1/admin/policy/access-rules", {
    items: [{ name: "all-intranet", segments: ["intranet"] }],
  });
  const d = await f.enroll();
  const etag = `"${d.json.policy.version}"`;
  const t0 = performance.now();
  const pending = f.req("GET", "/api/v1/policy?wait=20", undefined, {
    ...d.headers,
    "if-none-match": etag,
  });
  await subscribers(f, 1); // the long-poll is waiting
  await f.adminReq("PUT", "/api/v1/admin/policy/segments", {
    items: [{ name: "intranet", cidrs: ["10.1.0.0/16"] }],
  });
  const res = await pending;
  assert.equal(res.status, 200);
  assert.ok(performance.now() - t0 < 5000);
  const body = PolicyResponse.parse(await res.json());
  assert.equal(body.policy.segments[0].name, "intranet");
  const t1 = performance.now();
  const idle = await f.req("GET", "/api/v1/policy?wait=1", undefined, {
    ...d.headers,
    "if-none-match": `"${body.policy.version}"`,
  });
  assert.equal(idle.status, 304);
  assert.ok(performance.now() - t1 >= 900);
  assert.equal(f.notifier.subscriberCount, 0, "no leaked subscriptions");
});

Deno.test("policy stream: pushes the current and each new version, keepalive comments", async () => {
  const f = await fixture({ sseKeepaliveMs: 30 });
  const d = await f.enroll();
  const res = await f.req("GET", "/api/v1/policy/stream", undefined, d.headers);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /text\/event-stream/);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const until = async (pred: (s: string) => boolean) => {
    while (!pred(buf)) {
      const { value, done } = await reader.read();
      if (done) throw new Error("stream ended");
      buf += value;
    }
  };
  await until((s) => s.includes("event: policy"));
  assert.ok(buf.includes(d.json.policy.version));
  await until((s) => s.includes(": keepalive"));
  buf = "";
  await f.adminReq("PUT", "/api/v1/admin/policy/client-to-client", { enabled: true });
  await until((s) => /event: policy\nid: \w+\ndata: .*\n\n/.test(s));
  const data = JSON.parse(/data: (.*)\n/.exec(buf)![1]);
  const pr = PolicyResponse.parse(data);
  assert.notEqual(pr.policy.version, d.json.policy.version);
  assert.equal(pr.policy.clientToClient.enabled, true);
  // Disabling the device ends its stream.
  buf = "";
  await f.adminReq("POST", `/api/v1/admin/devices/${d.json.deviceId}/disable`);
  await until((s) => s.includes("event: revoked"));
  await reader.cancel();
  await subscribers(f, 0);
});

/** Reads a stream until it ends; false if it is still open after `ms`. */
async function endsWithin(body: ReadableStream<Uint8Array>, ms: number): Promise<boolean> {
  const reader = body.getReader();
  const deadline = Date.now() + ms;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    while (Date.now() < deadline) {
      const r = await Promise.race([
        reader.read(),
        new Promise<"timeout">((res) =>
          timer = setTimeout(() => res("timeout"), deadline - Date.now())
        ),
      ]);
      clearTimeout(timer);
      if (r === "timeout") return false;
      if (r.done) return true;
    }
    return false;
  } finally {
    clearTimeout(timer);
    void reader.cancel().catch(() => {});
  }
}

Deno.test("policy stream: ends when re-enrolment rotates the credential", async () => {
  const f = await fixture({ sseKeepaliveMs: 20 });
  const sig = f.signer();
  const first = await f.enroll({ signingPublicKey: sig.publicKey });
  const res = await f.req("GET", "/api/v1/policy/stream", undefined, first.headers);
  assert.equal(res.status, 200);
  const [a, b] = res.body!.tee();
  assert.equal(await endsWithin(a, 100), false, "open while the credential is valid");
  const wgPublicKey = f.enrollBody("x").wgPublicKey;
  const proof = sig.sign(
    reenrollMessage(fingerprintHash(first.body.fingerprint), wgPublicKey, sig.publicKey),
  );
  const again = await f.enroll({
    fingerprint: first.body.fingerprint,
    wgPublicKey,
    signingPublicKey: sig.publicKey,
    proof,
  });
  assert.equal(again.json.deviceId, first.json.deviceId);
  assert.equal(await endsWithin(b, 2000), true, "closed once the credential was rotated");
});

Deno.test("posture, c2c and heartbeat: good and bad input", async () => {
  const f = await fixture();
  const sig = f.signer();
  const d = await f.enroll({ signingPublicKey: sig.publicKey });
  const h = d.headers;
  const id = d.json.deviceId;
  await f.adminReq("PUT", "/api/v1/admin/policy/posture-profiles", {
    items: [{ name: "disk", checks: [{ type: "disk_encryption" }] }],
  });
  const now = f.clock.now();
  // The edge judges the facts itself: the device says nothing about passing.
  const ok = await f.req(
    "POST",
    "/api/v1/posture",
    signedPosture(sig, id, now - 1000, {
      diskEncryption: false,
    }),
    h,
  );
  assert.equal(ok.status, 200);
  const verdict = await ok.json();
  assert.equal(verdict.passed, false);
  assert.deepEqual(verdict.profiles, [
    { profile: "disk", passed: false, reason: "disk not encrypted" },
  ]);
  assert.equal(f.store.posture.latest(id)?.passed, false);
  assert.deepEqual(
    f.store.posture.results(id).map((r) => [r.profile, r.check, r.passed, r.expected, r.actual]),
    [["disk", "disk_encryption", false, "disk encrypted", "disk not encrypted"]],
  );
  const before = f.store.tableCounts();
  const forger = f.signer();
  const good = signedPosture(sig, id, now, { diskEncryption: true });
  const bad: [string, unknown, number, string][] = [
    [
      "unsigned (the old, self-judged form)",
      { collectedAt: new Date(now).toISOString(), results: [] },
      400,
      "invalid_request",
    ],
    [
      "signed by another key",
      signedPosture(forger, id, now, { diskEncryption: true }),
      400,
      "posture_signature_invalid",
    ],
    [
      "payload changed after signing",
      { ...good, payload: good.payload.replace("true", "false") },
      400,
      "posture_signature_invalid",
    ],
    [
      "for another device",
      signedPosture(sig, "dev_other", now, {}),
      403,
      "posture_device_mismatch",
    ],
    ["stale", signedPosture(sig, id, now - 6 * 60_000, {}), 400, "posture_report_stale"],
    ["from the future", signedPosture(sig, id, now + 6 * 60_000, {}), 400, "posture_report_stale"],
    [
      "replayed",
      signedPosture(sig, id, now - 1000, { diskEncryption: false }),
      409,
      "posture_report_replayed",
    ],
    ["older than the last", signedPosture(sig, id, now - 2000, {}), 409, "posture_report_replayed"],
    [
      "facts of the wrong type",
      signedPosture(sig, id, now, { diskEncryption: "yes" }),
      400,
      "invalid_request",
    ],
    ["unknown fact", signedPosture(sig, id, now, { trustMe: true }), 400, "invalid_request"],
    [
      "payload not JSON",
      { payload: "nope", signature: sig.sign(postureSigningMessage("nope")) },
      400,
      "invalid_request",
    ],
    ["bad signature text", { ...good, signature: "x" }, 400, "invalid_request"],
  ];
  for (const [name, body, status, code] of bad) {
    const err = await errorOf(await f.req("POST", "/api/v1/posture", body, h));
    assert.equal(err.status, status, name);
    assert.equal(err.code, code, `${name}: ${err.message}`);
    assert.ok(err.message.length > 20, name);
  }
  const huge = await errorOf(
    await f.req("POST", "/api/v1/posture", { ...good, pad: "x".repeat(100_000) }, h),
  );
  assert.equal(huge.code, "body_too_large");
  assert.deepEqual(f.store.tableCounts(), before);
  // The good one still goes through after all that.
  const pass = await f.req("POST", "/api/v1/posture", good, h);
  assert.equal((await pass.json()).passed, true);

  // c2c: disabled by default.
  let r = await (await f.req("POST", "/api/v1/c2c/register", {
    fqdn: "laptop.clients.portcullis.internal",
  }, h)).json();
  assert.equal(r.valid, false);
  assert.match(r.reason, /disabled/);
  await f.adminReq("PUT", "/api/v1/admin/policy/client-to-client", { enabled: true });
  r = await (await f.req("POST", "/api/v1/c2c/register", {
    fqdn: "Laptop.clients.portcullis.internal",
  }, h)).json();
  assert.equal(r.valid, true, r.reason);
  assert.equal(r.fqdn, "laptop.clients.portcullis.internal");
  r = await (await f.req("POST", "/api/v1/c2c/register", { fqdn: "laptop.evil.example" }, h))
    .json();
  assert.equal(r.valid, false);
  assert.match(r.reason, /does not match/);
  r = await (await f.req("POST", "/api/v1/c2c/register", {
    fqdn: "bad_name'--.clients.portcullis.internal",
  }, h)).json();
  assert.equal(r.valid, false);
  assert.match(r.reason, /not a valid DNS name/);
  const other = await f.enroll();
  await f.req("POST", "/api/v1/c2c/register", { fqdn: "laptop.clients.portcullis.internal" }, h);
  r = await (await f.req("POST", "/api/v1/c2c/register", {
    fqdn: "laptop.clients.portcullis.internal",
  }, other.headers)).json();
  assert.equal(r.valid, false);
  assert.match(r.reason, /already registered/);
  const long = await errorOf(
    await f.req("POST", "/api/v1/c2c/register", { fqdn: "a".repeat(300) }, h),
  );
  assert.equal(long.code, "invalid_request");
  // Patterns that backtrack catastrophically in V8 run in linear time (RE2):
  // accepted, and a long host name is simply judged.
  for (const evil of ["^(a+)+$", "^(a|aa)+$", "^((a)+)+$"]) {
    const put = await f.adminReq("PUT", "/api/v1/admin/policy/client-to-client", {
      enabled: true,
      hostnameRegex: evil,
    });
    assert.equal(put.status, 200, evil);
    r = await (await f.req("POST", "/api/v1/c2c/register", {
      fqdn: `${"a".repeat(63)}.${"a".repeat(63)}.${"a".repeat(63)}.${"a".repeat(61)}`,
    }, h)).json();
    assert.equal(r.valid, false, evil);
    assert.match(r.reason, /does not match/);
  }
  // Syntax RE2 lacks (back-references, look-arounds) and broken patterns are
  // refused at PUT time, and nothing changes.
  const c2cBefore = f.store.tableCounts();
  for (const bad of ["([", "(a)\\1", "(?=a)b"]) {
    const err = await errorOf(
      await f.adminReq("PUT", "/api/v1/admin/policy/client-to-client", { hostnameRegex: bad }),
    );
    assert.equal(err.code, "invalid_request", bad);
    assert.match(err.message, /^Invalid request: hostnameRegex: /);
  }
  assert.deepEqual(f.store.tableCounts(), c2cBefore);

  // heartbeat
  f.clock.advance(5000);
  const hb = await f.req("POST", "/api/v1/heartbeat", {
    state: "connected",
    transport: "tls",
    clockSkewMs: -120,
  }, h);
  assert.equal(hb.status, 200);
  const dev = f.store.devices.byId(d.json.deviceId)!;
  assert.equal(dev.lastSeenAt, f.clock.now());
  assert.equal(dev.reportedTransport, "tls");
  assert.equal(dev.clockSkewMs, -120);
  const hbBad = await errorOf(
    await f.req("POST", "/api/v1/heartbeat", { state: "x", transport: "carrier-pigeon" }, h),
  );
  assert.equal(hbBad.code, "invalid_request");
});

Deno.test("support requests: zip bundle upload, admin list and download, bad uploads refused", async () => {
  const f = await fixture();
  const d = await f.enroll();
  const zip = new Uint8Array([0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)]);
  const form = new FormData();
  form.set("message", "VPN drops every hour");
  form.set("bundle", new File([zip], "bundle.zip", { type: "application/zip" }));
  const res = await f.app.request("/api/v1/support", {
    method: "POST",
    headers: d.headers,
    body: form,
  });
  assert.equal(res.status, 201);
  const { id } = await res.json();
  assert.equal(f.store.notifications.count("support_request"), 1);
  const list = await (await f.adminReq("GET", "/api/v1/admin/support-requests")).json();
  assert.equal(list.requests[0].message, "VPN drops every hour");
  assert.equal(list.requests[0].bundleSize, zip.length);
  const dl = await f.adminReq("GET", `/api/v1/admin/support-requests/${id}/bundle`);
  assert.equal(dl.headers.get("content-type"), "application/zip");
  assert.deepEqual(new Uint8Array(await dl.arrayBuffer()), zip);

  const before = f.store.tableCounts();
  const notZip = new FormData();
  notZip.set("message", "hi");
  notZip.set("bundle", new File([new Uint8Array([1, 2, 3, 4])], "x.zip"));
  const bad1 = await f.app.request("/api/v1/support", {
    method: "POST",
    headers: d.headers,
    body: notZip,
  });
  assert.equal((await errorOf(bad1)).code, "invalid_request");
  const big = new FormData();
  big.set("message", "hi");
  big.set("bundle", new File([new Uint8Array(11 * 1024 * 1024)], "x.zip"));
  const bad2 = await f.app.request("/api/v1/support", {
    method: "POST",
    headers: d.headers,
    body: big,
  });
  assert.equal((await errorOf(bad2)).code, "body_too_large");
  const bad3 = await f.req("POST", "/api/v1/support", { message: "hi" }, d.headers);
  assert.equal((await errorOf(bad3)).code, "unsupported_media_type");
  const noMsg = new FormData();
  noMsg.set("bundle", new File([zip], "b.zip"));
  const bad4 = await f.app.request("/api/v1/support", {
    method: "POST",
    headers: d.headers,
    body: noMsg,
  });
  assert.equal((await errorOf(bad4)).code, "invalid_request");
  assert.deepEqual(f.store.tableCounts(), before);
});

Deno.test("unknown routes are 404 not_found; unexpected errors are 500 without details", async () => {
  const f = await fixture();
  const res = await f.req("GET", "/api/v1/nope");
  assert.equal((await errorOf(res)).code, "not_found");
  assert.ok(res.headers.get("x-server-time"));
  await f.enroll();
  f.tunnel.peerStats = () => {
    throw new Error("secret internal detail");
  };
  const { setLogSinks, stderrSink } = await import("../../src/log.ts");
  setLogSinks([]);
  try {
    const boom = await f.adminReq("GET", "/api/v1/admin/devices");
    const err = await errorOf(boom);
    assert.equal(err.status, 500);
    assert.equal(err.code, "internal_error");
    assert.ok(!err.message.includes("secret"));
  } finally {
    setLogSinks([stderrSink]);
  }
});

Deno.test("policy stream and long-poll: at most four open per device, a fifth ends the oldest", async () => {
  const f = await fixture({ sseKeepaliveMs: 1000 });
  const d = await f.enroll();
  const other = await f.enroll();
  const o = await f.req("GET", "/api/v1/policy/stream", undefined, other.headers);
  const open: Response[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await f.req("GET", "/api/v1/policy/stream", undefined, d.headers);
    assert.equal(r.status, 200);
    open.push(r);
  }
  const [oldestA, oldestB] = open[0].body!.tee();
  assert.equal(await endsWithin(oldestA, 100), false, "four streams may stay open");
  const fifth = await f.req("GET", "/api/v1/policy/stream", undefined, d.headers);
  assert.equal(fifth.status, 200);
  assert.equal(await endsWithin(oldestB, 2000), true, "the oldest stream was closed");
  // A long-poll counts too: it ends the next-oldest stream.
  const [secondA, secondB] = open[1].body!.tee();
  const poll = f.req("GET", "/api/v1/policy?wait=1", undefined, {
    ...d.headers,
    "if-none-match": `"${d.json.policy.version}"`,
  });
  assert.equal(await endsWithin(secondB, 2000), true, "the long-poll took the oldest slot");
  void secondA.cancel();
  assert.equal((await poll).status, 304);
  // Another device's stream is unaffected.
  const [oa, ob] = o.body!.tee();
  assert.equal(await endsWithin(oa, 50), false);
  void ob.cancel();
  for (const r of [...open.slice(2), fifth]) await r.body!.cancel();
  await subscribers(f, 0);
});

Deno.test("support requests: five an hour per device (429 support_rate_limited), newest twenty kept", async () => {
  const f = await fixture();
  const d = await f.enroll();
  const other = await f.enroll();
  const zip = new Uint8Array([0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)]);
  const upload = (headers: Record<string, string>, message: string) => {
    const form = new FormData();
    form.set("message", message);
    form.set("bundle", new File([zip], "bundle.zip", { type: "application/zip" }));
    return f.app.request("/api/v1/support", { method: "POST", headers, body: form });
  };
  for (let i = 0; i < 5; i++) assert.equal((await upload(d.headers, `m${i}`)).status, 201);
  const sixth = await upload(d.headers, "m5");
  assert.equal(sixth.status, 429);
  assert.equal((await errorOf(sixth)).code, "support_rate_limited");
  assert.equal((await upload(other.headers, "other")).status, 201, "other devices unaffected");
  // Over five hours, 25 uploads; only the newest 20 of this device are kept.
  for (let h = 1; h <= 4; h++) {
    f.clock.advance(3_600_001);
    for (let i = 0; i < 5; i++) {
      assert.equal((await upload(d.headers, `h${h}m${i}`)).status, 201);
    }
  }
  const mine = f.store.support.list().filter((r) => r.deviceId === d.json.deviceId);
  assert.equal(mine.length, 20);
  assert.ok(!mine.some((r) => /^m\d$/.test(r.message)), "the first hour's bundles were pruned");
  assert.equal(f.store.support.list().filter((r) => r.deviceId === other.json.deviceId).length, 1);
});

Deno.test("policy: each device's bundle holds only the segments a rule could allow it, with their standing", async () => {
  const f = await fixture();
  await f.adminReq("PUT", "/api/v1/admin/policy/segments", {
    items: [
      { name: "eng-wiki", domains: ["wiki.corp.internal"], cidrs: ["10.1.0.0/24"] },
      { name: "hr", domains: ["*.hr.corp.internal"], cidrs: ["10.2.0.0/24"] },
      { name: "finance", cidrs: ["10.3.0.0/24"] },
    ],
  });
  await f.adminReq("PUT", "/api/v1/admin/policy/access-rules", {
    items: [
      { name: "eng", segments: ["eng-wiki"], machineGroups: ["engineering"] },
      {
        name: "HR apps",
        segments: ["hr"],
        machineGroups: ["engineering"],
        postureProfiles: ["disk-encrypted"],
      },
      { name: "finance", segments: ["finance"], users: ["cfo"] },
    ],
  });
  await f.adminReq("PUT", "/api/v1/admin/policy/posture-profiles", {
    items: [{ name: "disk-encrypted", checks: [{ type: "disk_encryption" }], validityMinutes: 15 }],
  });
  const sig = f.signer();
  const eng = await f.enroll(
    { signingPublicKey: sig.publicKey },
    f.newKey({ group: "engineering" }).key,
  );
  const other = await f.enroll({}, f.newKey({ group: "branch" }).key);
  const policyOf = async (h: Record<string, string>) =>
    PolicyResponse.parse(await (await f.req("GET", "/api/v1/policy", undefined, h)).json()).policy;

  let p = await policyOf(eng.headers);
  assert.deepEqual(p.segments.map((s) => s.name), ["eng-wiki", "hr"]);
  assert.deepEqual(p.access.map((a) => [a.segment, a.state, a.rule]), [
    ["eng-wiki", "allowed", "eng"],
    ["hr", "posture_failing", "HR apps"],
  ]);
  assert.match(
    p.access[1].reason,
    /needs posture "disk-encrypted", the device has not reported it/,
  );
  assert.deepEqual(p.edgeDnsDomains.sort(), [
    "hr.corp.internal",
    "portcullis.internal",
    "wiki.corp.internal",
  ]);
  assert.equal(JSON.stringify(p).includes("finance"), false, "no other segment or rule leaks");
  // The profiles its deciding rules need travel with it, so its connector reports on them.
  assert.deepEqual(p.postureProfiles.map((x) => x.name), ["disk-encrypted"]);

  const o = await policyOf(other.headers);
  assert.deepEqual(o.segments, []);
  assert.deepEqual(o.access, []);
  assert.deepEqual(o.edgeDnsDomains, ["portcullis.internal"]);

  // A failing report: the reason is the edge's reading of the facts.
  await f.req(
    "POST",
    "/api/v1/posture",
    signedPosture(sig, eng.json.deviceId, f.clock.now(), { diskEncryption: false }),
    eng.headers,
  );
  p = await policyOf(eng.headers);
  assert.equal(p.access[1].state, "posture_failing");
  assert.match(
    p.access[1].reason,
    /rule "HR apps" needs posture "disk-encrypted", device reports disk not encrypted/,
  );
  // A passing posture report changes the standing (and the version).
  const before = p.version;
  f.clock.advance(1000);
  await f.req(
    "POST",
    "/api/v1/posture",
    signedPosture(sig, eng.json.deviceId, f.clock.now(), { diskEncryption: true }),
    eng.headers,
  );
  p = await policyOf(eng.headers);
  assert.notEqual(p.version, before);
  assert.equal(p.access[1].state, "allowed");
  // ... until it expires.
  f.clock.advance(16 * 60_000);
  p = await policyOf(eng.headers);
  assert.equal(p.access[1].state, "posture_failing");
  assert.match(p.access[1].reason, /expired/);
});
