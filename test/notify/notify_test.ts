/** Notifier: stored first, then delivered to live subscribers with filters. */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { Notifier } from "../../src/notify/mod.ts";
import { openStore } from "../../src/store/mod.ts";

Deno.test("notify: events are stored and fanned out; filters and close work", async () => {
  const store = openStore(":memory:");
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
  const store = openStore(":memory:");
  const n = new Notifier(store, new ManualClock());
  const sub = n.subscribe({ capacity: 2 });
  for (let i = 0; i < 5; i++) {
    n.publish({ kind: "policy_updated", revision: i, objectKind: "x", by: "t" });
  }
  assert.equal((await sub.next()).value.data.revision, 3);
  assert.equal((await sub.next()).value.data.revision, 4);
  sub.close();
});
