import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { LoginRateLimiter } from "../../src/identity/rate_limit.ts";

Deno.test("LoginRateLimiter.reserve counts an attempt before it is settled", () => {
  const clock = new ManualClock(0);
  const rl = new LoginRateLimiter(clock, {
    perUser: 5,
    perIp: 20,
    windowMs: 60_000,
    maxInFlight: 100,
  });
  const results = Array.from({ length: 10 }, () => rl.reserve("root", "10.0.0.1"));
  assert.equal(results.filter((r) => r.ok).length, 5);
  const refused = results.find((r) => !r.ok);
  assert.ok(refused && !refused.ok && refused.reason === "rate_limited");
  // A success forgives its own reservation and clears the user counter.
  for (const r of results) if (r.ok) r.reservation.succeed();
  assert.equal(rl.retryAfterMs("root", "10.0.0.1"), 0);
});

Deno.test("LoginRateLimiter.reserve caps attempts in flight per user and per IP", () => {
  const rl = new LoginRateLimiter(new ManualClock(0), {
    perUser: 50,
    perIp: 50,
    windowMs: 60_000,
    maxInFlight: 2,
  });
  const a = rl.reserve("a", "ip1");
  const b = rl.reserve("b", "ip1");
  const c = rl.reserve("c", "ip1");
  assert.ok(a.ok && b.ok);
  assert.ok(!c.ok && c.reason === "in_flight");
  a.reservation.fail();
  assert.ok(rl.reserve("c", "ip1").ok);
  // Per user as well, from another address.
  const rl2 = new LoginRateLimiter(new ManualClock(0), {
    perUser: 50,
    perIp: 50,
    windowMs: 60_000,
    maxInFlight: 2,
  });
  assert.ok(rl2.reserve("root", "ip1").ok);
  assert.ok(rl2.reserve("root", "ip2").ok);
  const third = rl2.reserve("root", "ip3");
  assert.ok(!third.ok && third.reason === "in_flight");
});

Deno.test("LoginRateLimiter evicts the oldest keys instead of wiping all counters", () => {
  const clock = new ManualClock(0);
  const rl = new LoginRateLimiter(clock, {
    perUser: 3,
    perIp: 1000,
    windowMs: 60_000,
    maxKeys: 10,
  });
  for (let i = 0; i < 3; i++) rl.fail("root", "ip1");
  assert.ok(rl.retryAfterMs("root", "ip1") > 0);
  // A spray of distinct usernames from other addresses overflows the map.
  for (let i = 0; i < 20; i++) {
    clock.advance(1);
    rl.fail(`spray${i}`, `ip-s${i}`);
  }
  assert.ok(rl.size <= 10);
  // Keys touched most recently survive.
  assert.ok(rl.retryAfterMs("spray19", "ip-x") === 0); // one failure is below perUser
  for (let i = 0; i < 2; i++) rl.fail("spray19", "ip-x");
  assert.ok(rl.retryAfterMs("spray19", "ip-x") > 0);
});
