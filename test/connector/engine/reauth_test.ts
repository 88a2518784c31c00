/**
 * Signing in again (engine/reauth.ts) over a scripted edge client: only
 * while the engine waits for it; a browser grant and a local user's
 * password each renew the same enrolment; the device flow starts by itself
 * on entering the state and, when the person does not finish it, again a
 * minute later — once at a time, and not after the state was left.
 */
import assert from "node:assert/strict";
import { ManualTimers } from "../../../src/clock.ts";
import type { EdgeApi } from "../../../src/connector/edge_api.ts";
import { Reauth } from "../../../src/connector/engine/reauth.ts";
import { setLogSinks } from "../../../src/log.ts";

setLogSinks([]);

const result = (username: string, token: string) => ({
  token,
  user: { username, email: username, provider: null },
  expiresAt: new Date(0).toISOString(),
});

Deno.test("reauth: renews only while required; grant and local paths; device flow retried", async () => {
  const calls: string[] = [];
  const client = {
    redeemSignIn: (g: string) => (calls.push(`redeem ${g}`), Promise.resolve(result("ana", "t1"))),
    signInLocal: (u: string) => (calls.push(`local ${u}`), Promise.resolve(result(u, "t2"))),
    reauth: (t: string) => (
      calls.push(`reauth ${t}`),
        Promise.resolve({ user: "ana", signInEndsAt: "x", serverTime: "y" })
    ),
  } as unknown as EdgeApi;
  let required = false;
  let signedIn = 0;
  const raised: string[] = [];
  const timers = new ManualTimers();
  let flows = 0;
  let finish: ((token: string) => void) | null = null;
  let fail: ((e: Error) => void) | null = null;
  const r = new Reauth({
    client: () => client,
    required: () => required,
    signedIn: () => {
      signedIn++;
      required = false;
      return Promise.resolve();
    },
    deviceFlow: () => {
      flows++;
      return new Promise<string>((res, rej) => {
        finish = res;
        fail = rej;
      });
    },
    hub: { raise: (type: string) => void raised.push(type) } as never,
    timers,
  });

  // Not waiting for a sign-in: refused, nothing sent.
  await assert.rejects(() => r.withGrant("g0"), /not waiting for its user to sign in/);
  assert.deepEqual(calls, []);

  required = true;
  assert.deepEqual(await r.withGrant("g1"), { username: "ana" });
  assert.deepEqual(calls, ["redeem g1", "reauth t1"]);
  assert.equal(signedIn, 1);

  required = true;
  assert.deepEqual(await r.local("carol", "pw", "123456"), { username: "carol" });
  assert.deepEqual(calls.slice(2), ["local carol", "reauth t2"]);
  assert.equal(signedIn, 2);

  // The device flow: starts on entering, once at a time; a failure retries a minute later.
  required = true;
  r.entered();
  r.entered();
  assert.equal(flows, 1);
  fail!(new Error("The sign-in code expired"));
  await timers.advance(1);
  assert.ok(raised.includes("signin_failed"));
  await timers.advance(59_000);
  assert.equal(flows, 1, "not before the minute");
  await timers.advance(1000);
  assert.equal(flows, 2);
  finish!("t3");
  await timers.advance(1);
  assert.deepEqual(calls.slice(-1), ["reauth t3"]);
  assert.equal(signedIn, 3);

  // Failed after the state was left (signed in elsewhere): no retry.
  required = true;
  r.entered();
  assert.equal(flows, 3);
  required = false;
  fail!(new Error("gone"));
  await timers.advance(120_000);
  assert.equal(flows, 3);
  r.stop();
});
