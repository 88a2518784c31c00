/** Keeping the policy current: restore, conditional fetch, coalescing, stream and poll reactions. */
import assert from "node:assert/strict";
import { ManualClock } from "../../../src/clock.ts";
import { EdgeApiError, EdgeUnreachableError } from "../../../src/connector/edge_api.ts";
import {
  followPolicyStream,
  PolicySync,
  pollPolicy,
} from "../../../src/connector/engine/policy_sync.ts";
import { FakeEdgeApi } from "../../../src/connector/fake_edge_api.ts";
import { setLogSinks } from "../../../src/log.ts";
import { makeBundle, memoryState } from "./helpers.ts";

setLogSinks([]);

function setup(client: FakeEdgeApi | null = new FakeEdgeApi()) {
  const store = memoryState();
  const raised: string[] = [];
  const events: string[] = [];
  const sync = new PolicySync({
    store,
    clock: new ManualClock(5000),
    hub: { raise: (type, _s, message) => (raised.push(`${type}: ${message}`), {} as never) },
    client: () => client,
    onSet: (p, refreshChanged) => events.push(`set ${p.version} ${refreshChanged}`),
    onStored: (p) => events.push(`stored ${p.version}`),
    onNewVersion: (v) => events.push(`new ${v}`),
  });
  return { store, sync, raised, events, client };
}

Deno.test("policy sync: restore a stored bundle; a corrupt one is ignored", () => {
  const { store, sync } = setup();
  try {
    assert.equal(sync.restore(null), false);
    assert.equal(
      sync.restore({ version: "x", etag: '"x"', bundle: { nope: 1 }, updatedAt: 1 }),
      false,
    );
    assert.equal(sync.policy, null);
    const restored = () => sync.policy; // read afresh (the assert above narrowed the getter)
    const b = makeBundle("v3");
    assert.equal(sync.restore({ version: "v3", etag: '"v3"', bundle: b, updatedAt: 42 }), true);
    assert.equal(restored()?.version, "v3");
    assert.equal(sync.etag, '"v3"');
    assert.equal(sync.updatedAt, 42);
  } finally {
    store.close();
  }
});

Deno.test("policy sync: fetches with the ETag in force, stores a new bundle, tells a new version", async () => {
  const { store, sync, raised, events, client } = setup();
  try {
    client!.policy = makeBundle("v1");
    assert.deepEqual(await sync.fetchNow(), { status: "updated", version: "v1" });
    assert.deepEqual(client!.calls, ["fetchPolicy:null"], "no ETag without a policy");
    assert.equal(store.getPolicy()!.version, "v1");
    assert.equal(sync.updatedAt, 5000);
    assert.deepEqual(events, ["set v1 true", "stored v1", "new v1"]);
    assert.deepEqual(raised, ["policy_updated: Policy updated to version v1"]);

    assert.deepEqual(await sync.fetchNow(), { status: "unchanged", version: "v1" });
    assert.equal(client!.calls[1], 'fetchPolicy:"v1"');
    assert.equal(events.length, 3, "an unchanged policy changes nothing");

    client!.policy = makeBundle("v2", { policyRefreshSec: 60 });
    await sync.fetchNow();
    assert.deepEqual(events.slice(3), ["set v2 false", "stored v2", "new v2"]);
    sync.clear();
    assert.equal(sync.policy, null);
    assert.equal(sync.etag, null);
  } finally {
    store.close();
  }
});

Deno.test("policy sync: concurrent updates share one fetch; not enrolled is an unreachable error", async () => {
  const { store, sync, client } = setup();
  try {
    client!.policy = makeBundle("v1");
    const [a, b, c] = await Promise.all([sync.update(), sync.update(), sync.update()]);
    assert.deepEqual([a, b, c].map((r) => r.status), ["updated", "updated", "updated"]);
    assert.equal(client!.count("fetchPolicy"), 1);
    await sync.update();
    assert.equal(client!.count("fetchPolicy"), 2, "a later update fetches again");
  } finally {
    store.close();
  }
  const none = setup(null);
  try {
    await assert.rejects(none.sync.update(), EdgeUnreachableError);
  } finally {
    none.store.close();
  }
});

Deno.test("policy stream: new versions fetch, revocations check, errors reach the engine", async () => {
  const client = new FakeEdgeApi();
  const ac = new AbortController();
  const log: string[] = [];
  let current = "v1";
  followPolicyStream(client, ac.signal, {
    currentVersion: () => current,
    update: () => (log.push("update"), Promise.resolve()),
    onEdgeError: (e, action) => log.push(`error ${action}: ${(e as Error).message}`),
    onDeviceDisabled: (m) => log.push(`disabled: ${m}`),
  });
  assert.equal(client.streams, 1);
  client.announce("v1");
  assert.deepEqual(log, [], "the version in force is not fetched again");
  client.announce("v2");
  current = "v2";
  client.revoke("device_disabled");
  client.revoke("device_deleted");
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(log, [
    "update",
    "disabled: The administrator disabled this device",
    "update",
    "update",
  ]);
  ac.abort();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(client.streams, 0);

  // A stream that ends with an error (a refused credential) is handed to the engine.
  const refused = new FakeEdgeApi();
  refused.failures.set("followPolicy", new EdgeApiError("bad_credential", "Refused.", 401));
  const seen: string[] = [];
  followPolicyStream(refused, new AbortController().signal, {
    currentVersion: () => null,
    update: () => Promise.resolve(),
    onEdgeError: (_e, action) => seen.push(action),
    onDeviceDisabled: () => {},
  });
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(seen, ["follow policy changes"]);
});

Deno.test("policy poll: only refusals reach the engine (table)", async () => {
  const table: [Error, boolean][] = [
    [new EdgeApiError("bad_credential", "x", 401), true],
    [new EdgeApiError("device_disabled", "x", 403), true],
    [new EdgeApiError("down", "x", 503), false],
    [new EdgeApiError("bad_response", "x", 502), false],
    [new EdgeUnreachableError("x"), false],
  ];
  for (const [err, told] of table) {
    const seen: string[] = [];
    await pollPolicy(() => Promise.reject(err), (_e, a) => seen.push(a));
    assert.deepEqual(
      seen,
      told ? ["fetch policy"] : [],
      `${err.message} ${(err as EdgeApiError).status}`,
    );
  }
  const seen: string[] = [];
  await pollPolicy(() => Promise.resolve(), (_e, a) => seen.push(a));
  assert.deepEqual(seen, []);
});
