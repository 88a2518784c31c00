/**
 * The web log is written in batches of WEB_LOG_BATCH rows (a real store:
 * SQLite, or PostgreSQL in the suite's second pass): a busy proxy's rows
 * reach the database as soon as a batch is full, without waiting for the
 * quarter-second timer, and fewer stay queued until it fires or the log is
 * read.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { DlpService } from "../../src/edge/dlp.ts";
import { WEB_LOG_BATCH, WebSecurityService } from "../../src/edge/web_security.ts";
import { Notifier } from "../../src/notify/mod.ts";
import { testStore } from "../http/test_store.ts";
import { webLogEntry as entry } from "../store/backends.ts";

Deno.test("web log: a full batch is written at once, the rest on the timer or a read", async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const store = await testStore();
  const notifier = new Notifier(store, clock);
  const web = new WebSecurityService(
    store,
    clock,
    notifier,
    new DlpService(store, clock, notifier),
    new Map(),
  );
  const stored = () => store.webLog.list({ limit: 10_000 }).length;
  try {
    // Rows recorded at this step → rows in the database after it.
    const steps = [
      { more: WEB_LOG_BATCH - 1, written: 0 },
      { more: 1, written: WEB_LOG_BATCH },
      { more: WEB_LOG_BATCH + 3, written: 2 * WEB_LOG_BATCH },
    ];
    let n = 0;
    for (const { more, written } of steps) {
      for (let i = 0; i < more; i++) web.record(entry(n++));
      assert.equal(stored(), written, `after ${n} recorded`);
    }
    // Three left in the queue: a read writes them first.
    assert.equal(web.webLog({ limit: 10_000 }).length, 2 * WEB_LOG_BATCH + 3);
  } finally {
    web.close();
    await store.close();
  }
});
