/** Notifier: stored first, then delivered to live subscribers with filters. */
import { testStore } from "../http/test_store.ts";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { Notifier } from "../../src/notify/mod.ts";
import { MAX_PAYLOAD } from "../../src/store/mod.ts";

Deno.test("notify: events are stored and fanned out; filters and close work", async () => {
  const store = await testStore();
  const n = new Notifier(store, new ManualClock());
  const all = n.subscribe();
  const onlyPolicy = n.subscribe({ kinds: ["policy_updated"] });
  n.publish({ kind: "device_enrolled", deviceId: "d1", hostname: "h", reenrolled: false });
  n.publish({ kind: "policy_updated", revision: 2, objectKind: "segment", by: "user:a" });
  assert.equal(store.notifications.count(), 2);
  assert.equal((await all.next()).value.kind, "device_enrolled");
  assert.equal((await all.next()).value.kind, "policy_updated");
  const p = await onlyPolicy.next();
  assert.equal(p.value.kind, "policy_updated");
  assert.equal(p.value.data.revision, 2);
  assert.match(p.value.message, /revision 2/);
  const waiting = all.next();
  all.close();
  assert.equal((await waiting).done, true);
  assert.equal(n.subscriberCount, 1);
  const ac = new AbortController();
  const sub = n.subscribe({ signal: ac.signal });
  ac.abort();
  assert.equal((await sub.next()).done, true);
  onlyPolicy.close();
  assert.equal(n.subscriberCount, 0);
});

Deno.test("notify: a slow subscriber keeps only the newest events", async () => {
  const store = await testStore();
  const n = new Notifier(store, new ManualClock());
  const sub = n.subscribe({ capacity: 2 });
  for (let i = 0; i < 5; i++) {
    n.publish({ kind: "policy_updated", revision: i, objectKind: "x", by: "t" });
  }
  assert.equal((await sub.next()).value.data.revision, 3);
  assert.equal((await sub.next()).value.data.revision, 4);
  sub.close();
});

Deno.test("notify: a catch-up delivers what was stored meanwhile, once, and nothing from before", async () => {
  const store = await testStore();
  const clock = new ManualClock();
  const stored = (revision: number) =>
    store.notifications.insert({
      kind: "policy_updated",
      severity: "info",
      message: `revision ${revision}`,
      data: { revision },
      createdAt: clock.now(),
    });
  stored(0); // before the notifier: old news, never delivered
  const n = new Notifier(store, clock);
  const sub = n.subscribe();
  n.publish({ kind: "policy_updated", revision: 1, objectKind: "x", by: "t" });
  // Stored by another edge while this one's feed was deaf.
  stored(2);
  stored(3);
  assert.equal(n.catchUp(), 2);
  assert.equal(n.catchUp(), 0);
  const revisions = [];
  for (let i = 0; i < 3; i++) revisions.push((await sub.next()).value.data.revision);
  assert.deepEqual(revisions, [1, 2, 3]);
  sub.close();
});

Deno.test("feed: checkMessage refuses what NOTIFY could not carry, on every backend", async () => {
  const store = await testStore();
  const cases: [string, string, RegExp | null][] = [
    ["notify", "x".repeat(MAX_PAYLOAD), null],
    ["notify", "é".repeat((MAX_PAYLOAD - 1) / 2), null],
    ["notify", "x".repeat(MAX_PAYLOAD + 1), /8000 bytes, over the 7999/],
    ["notify", "é".repeat(4000), /8000 bytes/],
    ["notify", "a\0b", /NUL/],
    ["Notify", "x", /Invalid feed channel "Notify"/],
    ["n".repeat(64), "x", /Invalid feed channel/],
  ];
  for (const [channel, payload, error] of cases) {
    if (error) assert.throws(() => store.feed.publish(channel, payload), error);
    else store.feed.publish(channel, payload);
  }
});
