/**
 * The log tables whose ids the database assigns (web log, ZDX results), on
 * both backends: a fleet on PostgreSQL lost every row of them until the
 * translation made their ids identity columns (migration 19 mends older
 * databases).
 */
import assert from "node:assert/strict";
import { MIGRATIONS } from "../../src/store/mod.ts";
import { ROWS_PER_INSERT } from "../../src/store/repos/web_log.ts";
import type { ZdxRecord } from "../../src/store/repos/zdx.ts";
import { type DecisionRecord, DECISIONS_PER_INSERT } from "../../src/store/repos/decisions.ts";
import { deviceRecord, storeTest, webLogEntry as entry } from "./backends.ts";

const zdxResult = (over: Partial<ZdxRecord> = {}): Omit<ZdxRecord, "id"> => ({
  deviceId: "d1",
  probe: "web",
  url: "https://example.test/",
  at: 1,
  ok: true,
  status: 200,
  phases: { dns: 1, connect: 2, tls: 3, ttfb: 4, total: 10 },
  edgeRttMs: 5,
  score: 90,
  z: null,
  worstHop: null,
  receivedAt: 2,
  ...over,
});

storeTest("web log: batches of any size append in order, filters and pruning", (open) => {
  const s = open();
  // Two full statements and a partial one, then a batch of one.
  const n = 2 * ROWS_PER_INSERT + 7;
  s.transaction(() => s.webLog.append(Array.from({ length: n }, (_, i) => entry(i))));
  s.transaction(() => s.webLog.append([entry(n, { action: "block", rule: "No news" })]));
  s.transaction(() => s.webLog.append([]));
  const all = s.webLog.list({ limit: 1000 });
  assert.equal(all.length, n + 1);
  assert.deepEqual(all.map((r) => r.bytesUp), Array.from({ length: n + 1 }, (_, i) => n - i));
  for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].id > all[i].id, "ids grow");
  const last = all[0];
  assert.deepEqual(
    { ...last, id: 0 },
    { ...entry(n, { action: "block", rule: "No news" }), id: 0, categories: [] },
  );
  assert.deepEqual(all.find((r) => r.bytesUp === 3)?.categories, ["news"]);

  assert.equal(s.webLog.list({ host: "h10" }).length, 9, "h10, h100…h107");
  assert.equal(s.webLog.list({ user: "ANA", limit: 1000 }).length, (n + 1) >> 1);
  assert.deepEqual(s.webLog.list({ action: "block" }).map((r) => r.rule), ["No news"]);
  assert.equal(s.webLog.list({ since: 1_000 + n - 2 }).length, 3);

  assert.equal(s.webLog.prune(1000), 0);
  assert.equal(s.webLog.prune(10), n + 1 - 10);
  assert.deepEqual(
    s.webLog.list().map((r) => r.bytesUp),
    Array.from({ length: 10 }, (_, i) => n - i),
  );
  const id = s.webLog.insert(entry(n + 1));
  assert.equal(id, last.id + 1);
});

storeTest("access decisions: batches of any size append in order, every field kept", (open) => {
  const s = open();
  const decision = (i: number): Omit<DecisionRecord, "id"> => ({
    at: 5_000 + i,
    deviceId: "d1",
    deviceName: "ws-1",
    user: i % 2 ? "ana" : null,
    src: "100.64.0.2",
    dst: `10.0.${i >> 8}.${i & 255}`,
    port: 443,
    protocol: "tcp",
    name: i % 3 ? null : `app${i}.corp.test`,
    verdict: i % 2 ? "allow" : "deny",
    rule: i % 2 ? "Engineers" : null,
    segments: i % 2 ? ["web", `s${i}`] : [],
    reason: i % 2 ? `allowed by rule "Engineers"` : "no rule allows it (default deny)",
  });
  // Two full statements and a partial one, then a batch of one and an empty one.
  const n = 2 * DECISIONS_PER_INSERT + 3;
  s.transaction(() => s.decisions.append(Array.from({ length: n }, (_, i) => decision(i))));
  s.transaction(() => s.decisions.append([decision(n)]));
  s.transaction(() => s.decisions.append([]));
  const all = s.decisions.list({ limit: 1000 });
  assert.equal(all.length, n + 1);
  assert.deepEqual(
    all.map(({ id: _, ...d }) => d),
    Array.from({ length: n + 1 }, (_, i) => decision(n - i)),
  );
  for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].id > all[i].id, "ids grow");
  assert.equal(s.decisions.insert(decision(n + 1)), all[0].id + 1);
});

storeTest("web log: the unused host and user indexes are gone (migration 20)", (open) => {
  const s = open();
  const sql = s.db.dialect === "postgres"
    ? "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'web_log' ORDER BY 1"
    : "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'web_log' ORDER BY 1";
  const names = s.db.all<{ name: string }>(sql).map((r) => r.name)
    .filter((n) => !n.startsWith("sqlite_") && !n.endsWith("_pkey"));
  assert.deepEqual(names, ["web_log_at"]);
});

storeTest("ZDX results get ids from the database", (open) => {
  const s = open();
  s.devices.insert(deviceRecord("d1"));
  const a = s.zdx.insert(zdxResult()), b = s.zdx.insert(zdxResult({ at: 2 }));
  assert.equal(b, a + 1);
  assert.deepEqual(s.zdx.history("d1", "web", 10).map((x) => x.at), [1, 2]);
  assert.deepEqual(s.zdx.history("d1", "web", 1).map((x) => x.at), [2]);
  assert.deepEqual(s.zdx.latest(0).map((x) => [x.id, x.hostname]), [[b, "d1"]]);
  assert.deepEqual(s.zdx.since(2).map((x) => x.id), [b]);
});

storeTest("migration 19 gives an older database's log tables their ids", (open) => {
  const s = open();
  // SQLite assigns them itself.
  if (s.db.dialect !== "postgres") return;
  const m19 = MIGRATIONS.find((m) => m.version === 19)!;
  // As a database made before the translation knew: no identity, a row in.
  s.transaction(() => {
    s.db.exec("ALTER TABLE web_log ALTER COLUMN id DROP IDENTITY");
    s.db.exec("ALTER TABLE zdx_results ALTER COLUMN id DROP IDENTITY");
  });
  s.db.run(
    `INSERT INTO web_log (id, at, src, mode, scheme, host, port, categories, action, reason,
       bytes_up, bytes_down) VALUES (41, 1, 's', 'explicit', 'http', 'h', 80, '[]', 'allow', 'r', 0, 0)`,
  );
  assert.throws(() => s.webLog.insert(entry(1)), /null value in column "id"/);
  s.transaction(() => s.db.exec(m19.pg!));
  assert.equal(s.webLog.insert(entry(2)), 42);
  s.devices.insert(deviceRecord("d1"));
  assert.equal(typeof s.zdx.insert(zdxResult()), "number");
  // Run again on a database that has them: nothing to do, nothing breaks.
  s.transaction(() => s.db.exec(m19.pg!));
  assert.equal(s.webLog.insert(entry(3)), 43);
});
