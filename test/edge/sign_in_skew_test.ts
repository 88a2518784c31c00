/**
 * The sign-in clock tolerance is a policy setting the SAML validation reads:
 * the same signed assertion, presented 7 min after it expired, is refused
 * under the default profile's 2 min and accepted once the admin raises the
 * tolerance to 10 min, with no new service provider in between; a bad value
 * is refused when saved.
 */
import assert from "node:assert/strict";
import {
  MemoryReplayCache,
  MemoryRequestStore,
  SamlServiceProvider,
} from "../../src/identity/saml.ts";
import { b64, defaultFields } from "../identity/saml_craft.ts";
import { IDP, refused, signed, SP } from "../identity/saml_fixture.ts";
import { fixture } from "../http/helpers.ts";

Deno.test("sign-in clock tolerance: the policy's value decides SAML acceptance", async () => {
  const edge = await fixture();
  try {
    const { clock, policy } = edge;
    assert.equal(policy.signInClockSkewSec(), 120, "default 2 min");
    const sp = new SamlServiceProvider(SP, IDP, {
      replay: new MemoryReplayCache(clock),
      requests: new MemoryRequestStore(clock),
      clock,
      requestTtlMs: 3600_000,
      clockSkewSec: () => policy.signInClockSkewSec(),
    });
    const { requestId } = await sp.loginUrl("rs-1");
    const fields = defaultFields(
      { idpEntityId: IDP.entityId, spEntityId: SP.entityId, acsUrl: SP.acsUrl, now: clock.now() },
      requestId,
    );
    const body = { SAMLResponse: b64(signed(fields)) };
    // The fixture's NotOnOrAfter is 5 min after issue: 12 min on is 7 min past it.
    clock.advance(12 * 60_000);
    const err = await refused(sp, body, "saml_expired", "under 2 min");
    assert.match(err.message, /allowed clock skew is 120 s/);

    // A whole-number bound: a bad tolerance is refused when saved, nothing stored.
    assert.throws(
      () =>
        policy.replace("app-profiles", [{
          name: "default",
          forwarding: { name: "default" },
          clockSkewToleranceSec: 3600,
        }], "admin"),
      /from 0 to 1800/,
    );
    assert.equal(policy.signInClockSkewSec(), 120);

    policy.replace("app-profiles", [{
      name: "default",
      forwarding: { name: "default" },
      clockSkewToleranceSec: 600,
    }], "admin");
    assert.equal(policy.signInClockSkewSec(), 600);
    const id = await sp.validatePostResponse(body);
    assert.equal(id.nameId, "ana@corp.example", "accepted under 10 min");
  } finally {
    edge.store.close();
  }
});
