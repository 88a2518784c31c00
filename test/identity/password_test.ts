/** scrypt password hashing, credentials, rate limiting and sessions. */
import { testStore } from "../http/test_store.ts";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ManualClock } from "../../src/clock.ts";
import { hashPassword, verifyPassword } from "../../src/identity/password.ts";
import { LoginRateLimiter } from "../../src/identity/rate_limit.ts";
import {
  constantTimeEqual,
  fingerprintHash,
  newDeviceCredential,
  verifyDeviceCredential,
} from "../../src/identity/secrets.ts";
import { SessionManager } from "../../src/identity/sessions.ts";

Deno.test("password: scrypt hash format, verify, per-hash salt, tampering", async () => {
  const h = await hashPassword("hunter2 hunter2");
  assert.match(h, /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  assert.ok(await verifyPassword("hunter2 hunter2", h));
  assert.ok(!(await verifyPassword("hunter2 hunter3", h)));
  const small = { N: 1024, r: 8, p: 1 };
  assert.notEqual(await hashPassword("x", small), await hashPassword("x", small));
  for (
    const bad of [
      "",
      "scrypt$1$8$1$aa$bb",
      "bcrypt$x",
      h.replace("$32768$", "$4194304$"),
      h.slice(0, -2),
    ]
  ) {
    assert.ok(!(await verifyPassword("hunter2 hunter2", bad)), bad);
  }
});

Deno.test("device credentials: hashed at rest, constant-time check", () => {
  const { credential, hash } = newDeviceCredential();
  assert.ok(verifyDeviceCredential(credential, hash));
  assert.ok(!verifyDeviceCredential(credential + "x", hash));
  assert.ok(constantTimeEqual("abc", "abc"));
  assert.ok(!constantTimeEqual("abc", "abcd"));
  const a = fingerprintHash({ machineId: "m1", macs: ["aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"] });
  const b = fingerprintHash({ machineId: "m1", macs: ["aa:bb:cc:dd:ee:02", "aa:bb:cc:dd:ee:01"] });
  const c = fingerprintHash({ machineId: "m2", macs: ["aa:bb:cc:dd:ee:02", "aa:bb:cc:dd:ee:01"] });
  assert.equal(a, b, "MAC order does not matter");
  assert.notEqual(a, c);
});

Deno.test("rate limit: per user and per IP within a sliding window", () => {
  const clock = new ManualClock();
  const rl = new LoginRateLimiter(clock, { perUser: 3, perIp: 5, windowMs: 60_000 });
  for (let i = 0; i < 3; i++) rl.fail("alice", "10.0.0.1");
  assert.ok(rl.retryAfterMs("alice", "10.0.0.9") > 0, "user locked from any IP");
  assert.equal(rl.retryAfterMs("bob", "10.0.0.9"), 0);
  rl.fail("bob", "10.0.0.1");
  rl.fail("carol", "10.0.0.1");
  assert.ok(rl.retryAfterMs("dave", "10.0.0.1") > 0, "IP locked for any user");
  clock.advance(60_001);
  assert.equal(rl.retryAfterMs("alice", "10.0.0.1"), 0);
});

Deno.test("sessions: expiry, idle timeout, CSRF", async () => {
  const clock = new ManualClock();
  const store = await testStore();
  store.users.insert({
    id: "u1",
    username: "a",
    passwordHash: "x",
    totpSecret: "A",
    totpLastStep: 0,
    role: "admin",
    groups: [],
    createdAt: 0,
  });
  const sm = new SessionManager(store, clock, { ttlMs: 60_000, idleMs: 20_000 });
  const s = sm.create("u1", "127.0.0.1");
  const active = sm.resolve(s.id)!;
  assert.equal(active.user.username, "a");
  assert.ok(sm.checkCsrf(active.session, s.csrfToken));
  assert.ok(!sm.checkCsrf(active.session, undefined));
  assert.ok(!sm.checkCsrf(active.session, s.csrfToken.slice(1)));
  clock.advance(15_000);
  assert.ok(sm.resolve(s.id), "activity refreshes idle timer");
  clock.advance(15_000);
  assert.ok(sm.resolve(s.id));
  clock.advance(21_000);
  assert.equal(sm.resolve(s.id), undefined, "idle");
  const s2 = sm.create("u1", "127.0.0.1");
  for (let i = 0; i < 7; i++) {
    clock.advance(10_000);
    sm.resolve(s2.id);
  }
  assert.equal(sm.resolve(s2.id), undefined, "absolute expiry");
  assert.equal(sm.resolve("x".repeat(500)), undefined);
});

Deno.test("fingerprint hash: the connector's definition (canonical JSON) is the edge's", () => {
  const fp = { machineId: "abc", macs: ["AA:bb:cc:dd:ee:02".toLowerCase(), "aa:bb:cc:dd:ee:01"] };
  const want = createHash("sha256")
    .update('{"machineId":"abc","macs":["aa:bb:cc:dd:ee:01","aa:bb:cc:dd:ee:02"]}')
    .digest("hex");
  assert.equal(fingerprintHash(fp), want);
});
