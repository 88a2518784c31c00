/**
 * Device sign-ins are started by callers nobody has authenticated yet and
 * each makes the edge poll the IdP in the background, so at most
 * MAX_DEVICE_POLLS wait at once: one more is 429 `too_many_signins`, and a
 * slot frees when a sign-in ends. The IdP side is a stand-in whose polls
 * wait until the test lets them end (the real IdP is in oidc_signin_test.ts).
 */
import { testStore } from "../http/test_store.ts";
import assert from "node:assert/strict";
import { InputError } from "../../src/errors.ts";
import type { OidcRelyingParty } from "../../src/identity/oidc.ts";
import { IdentityProviders } from "../../src/identity/providers.ts";
import { MAX_DEVICE_POLLS, SignInService } from "../../src/identity/signin.ts";
import { ManualClock } from "../../src/clock.ts";

Deno.test("sign-in: device polls are bounded; a finished one frees its slot", async () => {
  const store = await testStore();
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const providers = new IdentityProviders(store, clock);
  await providers.create({
    name: "Corp",
    kind: "oidc",
    domains: ["corp.example"],
    isDefault: false,
    groupsClaim: "groups",
    groupMap: {},
    oidc: { issuer: "https://idp.corp.example", clientId: "c", clientSecret: "s" },
  }, "test");
  const ends: ((e: Error) => void)[] = [];
  const idp = {
    deviceStart: () =>
      Promise.resolve({
        device_code: "d",
        user_code: "ABCD-EFGH",
        verification_uri: "https://idp.corp.example/device",
        expires_in: 600,
        interval: 5,
      }),
    devicePoll: () => new Promise((_, reject) => ends.push(reject)),
  } as unknown as OidcRelyingParty;
  const signIn = new SignInService({ store, clock, providers, oidc: idp });
  for (let i = 0; i < MAX_DEVICE_POLLS; i++) await signIn.deviceStart("ana@corp.example");
  const e = await signIn.deviceStart("ana@corp.example").then(() => null, (e) => e);
  assert.ok(e instanceof InputError);
  assert.equal(e.code, "too_many_signins");
  assert.equal(e.status, 429);
  // One ends (the user never came): its slot is free again.
  ends[0](new Error("expired_token"));
  await new Promise((r) => setTimeout(r, 0));
  await signIn.deviceStart("ana@corp.example");
  signIn.close();
  store.close();
});
