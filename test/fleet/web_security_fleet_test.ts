/**
 * URL rules and SSL inspection settings changed on one edge are enforced by
 * every edge of the fleet: each edge compiles them once and recompiles when
 * the change feed says they changed. Before, an edge kept what it had
 * compiled at its first request until it restarted, so a block rule added
 * on edge A let the same request through edge B.
 *
 * Two edges on one real PostgreSQL database (each its own store, connection
 * and listen connection), as in a fleet; and on SQLite, two services over
 * the one store a SQLite edge has. Also: a change made while B's listen
 * connection was down is read after it reconnects.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { DlpService } from "../../src/edge/dlp.ts";
import { WEB_SECURITY_CHANNEL, WebSecurityService } from "../../src/edge/web_security.ts";
import { Notifier } from "../../src/notify/mod.ts";
import { openStore, type Store } from "../../src/store/mod.ts";
import { pgBinDir, startPgCluster } from "../../src/store/pg/cluster.ts";

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function service(store: Store): WebSecurityService {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const notifier = new Notifier(store, clock);
  const lists = new Map([["news", ["news.test"]], ["do_not_inspect", ["idp.test"]]]);
  return new WebSecurityService(
    store,
    clock,
    notifier,
    new DlpService(store, clock, notifier),
    lists,
  );
}

/** The action edge `w` takes on a request to `host` now. */
const action = (w: WebSecurityService, host: string) =>
  w.policy().evaluate({ host, path: "/", method: "GET", subject: null }).action;

/** Changes made through A (by its API's own calls) and what B must then do. */
async function followsChanges(a: WebSecurityService, b: WebSecurityService): Promise<void> {
  // Both have compiled the empty policy: everything allowed, nothing inspected.
  assert.equal(action(b, "shop.test"), "allow");
  assert.equal(action(b, "www.news.test"), "allow");
  assert.equal(b.inspects("shop.test"), false);

  a.replaceRules([
    { name: "no-shop", hosts: ["shop.test"], action: "block" },
    { name: "news", categories: ["news"], action: "caution" },
  ], "admin");
  await until(() => action(b, "shop.test") === "block", "edge B to block shop.test");
  assert.equal(action(b, "www.news.test"), "caution");
  assert.equal(action(b, "other.test"), "allow");

  a.setInspection({ enabled: true, doNotInspect: ["bank.test"] }, "admin");
  await until(() => b.inspects("shop.test"), "edge B to inspect");
  assert.equal(b.inspects("bank.test"), false, "the Do-Not-Inspect host passes through on B");
  assert.equal(b.inspects("login.idp.test"), false, "so does the default category");
  assert.deepEqual(b.inspection().doNotInspect, ["bank.test"]);

  a.replaceRules([], "admin");
  await until(() => action(b, "shop.test") === "allow", "edge B to drop the rule");
  a.setInspection({ enabled: false }, "admin");
  await until(() => !b.inspects("shop.test"), "edge B to stop inspecting");
}

Deno.test("web security fleet [sqlite]: two services on one store follow each other's changes", async () => {
  const store = openStore(":memory:");
  const a = service(store);
  const b = service(store);
  try {
    await followsChanges(a, b);
  } finally {
    a.close();
    b.close();
    await store.close();
  }
});

Deno.test({
  name: "web security fleet [postgres]: edge B enforces edge A's URL rules and inspection settings",
  ignore: pgBinDir() === null,
  async fn() {
    const cluster = await startPgCluster();
    const url = await cluster.createDatabase("web");
    const sa = openStore(url, { application: "edge-a" });
    const sb = openStore(url, { application: "edge-b" });
    const a = service(sa);
    const b = service(sb);
    try {
      // Heard after B's service (listeners run in order): once this has all
      // four changes, so has B, and nothing is still on its way to it.
      let heard = 0;
      sb.feed.listen(WEB_SECURITY_CHANNEL, () => heard++);
      await sa.feed.ready();
      await sb.feed.ready();
      await followsChanges(a, b);
      await until(() => heard === 4, "edge B to have heard the four changes");

      // A change while B's listen connection is down: NOTIFY loses the
      // message, and B reads the store again once it listens again.
      assert.equal(action(b, "late.test"), "allow");
      const pid = sb.db.get<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'edge-b feed'",
      )?.pid;
      assert.ok(pid, "edge B's listen connection is in pg_stat_activity");
      sb.db.get("SELECT pg_terminate_backend(?) AS t", pid);
      // Synchronous, so B's feed cannot listen again before A writes.
      const end = Date.now() + 5000;
      while (sb.db.get("SELECT 1 AS x FROM pg_stat_activity WHERE pid = ?", pid)) {
        if (Date.now() > end) throw new Error(`Backend ${pid} did not exit`);
      }
      a.replaceRules([{ name: "late", hosts: ["late.test"], action: "block" }], "admin");
      await until(
        () => action(b, "late.test") === "block",
        "edge B to catch up after reconnecting",
      );
    } catch (err) {
      console.error(cluster.log().slice(-4000));
      throw err;
    } finally {
      a.close();
      b.close();
      await sa.close();
      await sb.close();
      await cluster.stop();
    }
  },
});
