/** Enrolment with a key over the fake edge API: proof, stored result, failure classes, retries. */
import assert from "node:assert/strict";
import { ManualClock, ManualTimers } from "../../../src/clock.ts";
import { reenrollMessage } from "../../../src/control/mod.ts";
import {
  EdgeApiError,
  EdgeTlsError,
  EdgeUnreachableError,
} from "../../../src/connector/edge_api.ts";
import {
  enrol,
  enrolFailure,
  EnrolRetry,
  enrolRetryDelay,
} from "../../../src/connector/engine/enrol.ts";
import { FakeEdgeApiFactory } from "../../../src/connector/fake_edge_api.ts";
import { fromBase64 } from "../../../src/connector/identity.ts";
import { InputError } from "../../../src/errors.ts";
import { keyFor, makeBundle, makeIdentity, memoryState } from "./helpers.ts";

const DEVICE = { hostname: "ws1", os: "debian", osVersion: "12", connectorVersion: "0.1.0" };

Deno.test("enrol: signs the re-enrolment message, stores enrolment, credential and policy at once", async () => {
  const edge = new FakeEdgeApiFactory();
  edge.configure = (c) => (c.policy = makeBundle("v7"));
  const identity = await makeIdentity();
  const store = memoryState();
  const clock = new ManualClock(Date.UTC(2026, 4, 1));
  try {
    const done = await enrol(keyFor("edge.test", { b: "http://boot.test:8081/" }), {
      fetchCa: (p) => edge.fetchCa(p),
      makeClient: (u, ca) => edge.client(u, ca),
      identity,
      device: DEVICE,
      store,
      clock,
    });
    assert.deepEqual(edge.made, [{ apiUrl: "https://edge.test:8443", caPem: edge.caPem }]);
    const client = edge.last!;
    const req = client.enrolls[0];
    assert.equal(req.key, "s".repeat(24), "only the key's secret is sent");
    assert.equal(req.hostname, "ws1");
    assert.equal(req.wgPublicKey, identity.wgPublicKey);
    // The proof is a real Ed25519 signature over the re-enrolment message.
    const pub = await crypto.subtle.importKey(
      "raw",
      fromBase64(identity.signingPublicKey) as BufferSource,
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    const msg = reenrollMessage(
      identity.fingerprintHash,
      identity.wgPublicKey,
      identity.signingPublicKey,
    );
    assert.ok(
      await crypto.subtle.verify(
        "Ed25519",
        pub,
        fromBase64(req.proof!) as BufferSource,
        new TextEncoder().encode(msg),
      ),
    );
    assert.equal(identity.credential, "cred-fake");
    assert.equal(client.credential, "cred-fake", "the client carries the new credential");
    assert.equal(client.fingerprintHash, identity.fingerprintHash);
    const stored = store.getEnrollment()!;
    assert.equal(stored.bootstrapUrl, "http://boot.test:8081");
    assert.equal(stored.caPem, edge.caPem);
    assert.equal(stored.enrolledAt, clock.now());
    assert.equal(store.getPolicy()!.etag, '"v7"');
    assert.equal(done.response.policy.version, "v7");
  } finally {
    store.close();
  }
});

Deno.test("enrol: a bad key, a CA that fails its pin, a refusal: nothing is stored", async () => {
  const identity = await makeIdentity();
  const store = memoryState();
  try {
    const edge = new FakeEdgeApiFactory();
    edge.configure = (c) => (c.policy = makeBundle("v1"));
    const deps = {
      fetchCa: (p: Parameters<typeof edge.fetchCa>[0]) => edge.fetchCa(p),
      makeClient: (u: string, ca: string) => edge.client(u, ca),
      identity,
      device: DEVICE,
      store,
      clock: new ManualClock(),
    };
    await assert.rejects(enrol("pc1.garbage$", deps), InputError);
    edge.caError = new EdgeTlsError("pin mismatch");
    await assert.rejects(enrol(keyFor(), deps), EdgeTlsError);
    assert.equal(edge.clients.length, 0, "no client before the CA is trusted");
    edge.caError = null;
    edge.configure = (c) => c.failures.set("enroll", new EdgeApiError("invalid_key", "No.", 403));
    await assert.rejects(enrol(keyFor(), deps), /No\./);
    assert.equal(store.getEnrollment(), null);
    assert.equal(identity.credential, null);
  } finally {
    store.close();
  }
});

Deno.test("enrol: failure classes and retry delays (table)", () => {
  const unreachable = new EdgeUnreachableError("Cannot POST: refused");
  const table: [string, unknown, number, { retry: boolean; tell: boolean; message: RegExp }][] = [
    ["first unreachable: told, retried", unreachable, 0, {
      retry: true,
      tell: true,
      message: /refused; retrying in the background$/,
    }],
    ["later unreachable: retried quietly", unreachable, 3, {
      retry: true,
      tell: false,
      message: /retrying/,
    }],
    ["tls refusal is unreachable", new EdgeTlsError("bad cert"), 0, {
      retry: true,
      tell: true,
      message: /bad cert/,
    }],
    ["5xx is unreachable", new EdgeApiError("down", "Down.", 503), 1, {
      retry: true,
      tell: false,
      message: /Down/,
    }],
    ["4xx is final", new EdgeApiError("invalid_key", "Bad key.", 403), 2, {
      retry: false,
      tell: true,
      message: /^Bad key\.$/,
    }],
    ["a bad key is final", new InputError("bad_enrollment_key", "Cannot parse"), 0, {
      retry: false,
      tell: true,
      message: /^Cannot parse$/,
    }],
  ];
  for (const [name, err, n, want] of table) {
    const f = enrolFailure(err, n);
    assert.equal(f.retry, want.retry, name);
    assert.equal(f.tell, want.tell, name);
    assert.match(f.message, want.message, name);
  }
  const b = { min: 1000, max: 30_000 };
  assert.deepEqual([1, 2, 3, 4, 5, 6, 50].map((n) => enrolRetryDelay(n, b)), [
    1000,
    2000,
    4000,
    8000,
    16000,
    30000,
    30000,
  ]);
});

Deno.test("enrol retry: one pending retry at a time, cancellable", async () => {
  const timers = new ManualTimers();
  const r = new EnrolRetry(timers);
  let runs = 0;
  r.schedule(1000, () => runs++);
  r.schedule(2000, () => runs++); // replaces the first
  await timers.advance(1500);
  assert.equal(runs, 0);
  assert.equal(r.pending, true);
  await timers.advance(500);
  assert.equal(runs, 1);
  assert.equal(r.pending, false);
  r.schedule(10, () => runs++);
  r.cancel();
  await timers.advance(100);
  assert.equal(runs, 1);
});
