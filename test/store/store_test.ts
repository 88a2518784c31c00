/** Store: migrations, pragmas, transactions, leases, cascades. */
import assert from "node:assert/strict";
import { Database, MIGRATIONS, openStore, StoreError } from "../../src/store/mod.ts";
import { deviceRecord, singleUseKey, storeTest } from "./backends.ts";

Deno.test("store: file database opens in WAL with foreign keys, migrations recorded once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = openStore(`${dir}/t.db`);
    assert.equal(s.db.get<{ journal_mode: string }>("PRAGMA journal_mode")!.journal_mode, "wal");
    assert.equal(s.db.get<{ foreign_keys: number }>("PRAGMA foreign_keys")!.foreign_keys, 1);
    assert.equal(s.db.get<{ synchronous: number }>("PRAGMA synchronous")!.synchronous, 1);
    assert.equal(s.db.schemaVersion(), MIGRATIONS.at(-1)!.version);
    s.settings.set("k", "v");
    s.close();
    const again = openStore(`${dir}/t.db`);
    assert.equal(again.settings.get("k"), "v");
    assert.equal(again.db.all("SELECT * FROM schema_version").length, MIGRATIONS.length);
    again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store: a failing migration leaves the database at the old version", () => {
  const db = Database.open(":memory:", {
    migrations: [{ version: 1, name: "a", sql: "CREATE TABLE a (x)" }],
  });
  assert.throws(() =>
    db.migrate([
      { version: 1, name: "a", sql: "CREATE TABLE a (x)" },
      { version: 2, name: "b", sql: "CREATE TABLE b (x); CREATE TABLE broken (" },
    ])
  );
  assert.equal(db.schemaVersion(), 1);
  assert.equal(db.all("SELECT name FROM sqlite_master WHERE name = 'b'").length, 0);
  db.close();
});

Deno.test("store: refuses a database newer than the program", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = openStore(`${dir}/t.db`);
    s.db.run("INSERT INTO schema_version (version, name, applied_at) VALUES (99, 'future', 'x')");
    s.close();
    assert.throws(
      () => openStore(`${dir}/t.db`),
      (e) => e instanceof StoreError && /newer/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

storeTest("store: transactions roll back on error, nest as savepoints, refuse async", (open) => {
  const s = open();
  assert.throws(() =>
    s.transaction(() => {
      s.settings.set("a", "1");
      throw new Error("boom");
    }), /boom/);
  assert.equal(s.settings.get("a"), null);
  s.transaction(() => {
    s.settings.set("outer", "1");
    assert.throws(() =>
      s.transaction(() => {
        s.settings.set("inner", "1");
        throw new Error("inner");
      })
    );
  });
  assert.equal(s.settings.get("outer"), "1");
  assert.equal(s.settings.get("inner"), null);
  assert.throws(() => s.transaction(() => Promise.resolve(1)), /asynchronous/);
  assert.equal(s.db.inTransaction, false);
});

storeTest(
  "store: leases take the lowest free host, stop at the limit, cascade on delete",
  (open) => {
    const s = open();
    const dev = (id: string) => s.devices.insert(deviceRecord(id));
    for (const id of ["a", "b", "c"]) dev(id);
    assert.equal(s.leases.allocate("a", 0, 10), 2);
    assert.equal(s.leases.allocate("b", 0, 10), 3);
    s.devices.delete("a");
    assert.equal(s.leases.hostOf("a"), null, "lease cascades");
    assert.equal(s.leases.allocate("c", 0, 10), 2, "freed host reused");
    dev("d");
    assert.equal(s.leases.allocate("d", 0, 3), null, "range full");
    assert.throws(() => s.leases.allocate("b", 0, 10), "one lease per device");
  },
);

storeTest("store: single-use key can be claimed once, reusable counts", (open) => {
  const s = open();
  s.enrollmentKeys.insert(singleUseKey("k1"));
  s.enrollmentKeys.insert({ ...singleUseKey("k2"), reusable: true });
  assert.ok(s.enrollmentKeys.claimUse("k1", 1));
  assert.ok(!s.enrollmentKeys.claimUse("k1", 2));
  assert.ok(s.enrollmentKeys.claimUse("k2", 1));
  assert.ok(s.enrollmentKeys.claimUse("k2", 2));
  assert.equal(s.enrollmentKeys.byId("k2")!.useCount, 2);
  assert.ok(s.enrollmentKeys.revoke("k2", 3));
  assert.ok(!s.enrollmentKeys.revoke("k2", 4));
});

storeTest(
  "store: DLP repositories — EDM keys sealed at rest, incidents stored once per report",
  (open) => {
    const sealer = {
      seal: (s: string) => `sealed:${btoa(s)}`,
      open: (s: string) => atob(s.slice(7)),
    };
    const s = open({ sealer });
    s.dlpDictionaries.upsert("customers", { name: "customers", kind: "edm" }, 1);
    assert.ok(s.dlpDictionaries.setEdm("customers", { cells: [] }, "a2V5", 2));
    assert.equal(s.dlpDictionaries.get("customers")!.edmKey, "a2V5");
    assert.notEqual(s.dlpDictionaries.sealedKey("customers"), "a2V5");
    assert.equal(s.dlpDictionaries.list()[0].edmKey, null, "lists leave the index and key out");
    const inc = {
      id: "dlp_1",
      reportId: "r1",
      source: "endpoint" as const,
      deviceId: null,
      hostname: "ws",
      user: null,
      channel: "removable_media",
      fileName: "a.txt",
      fileSha256: "0".repeat(64),
      fileSize: 1,
      fileType: "text",
      rule: "r",
      action: "block",
      outcome: "quarantined",
      matches: [],
      occurredAt: 1,
      receivedAt: 2,
    };
    assert.ok(s.dlpIncidents.insert(inc));
    assert.ok(!s.dlpIncidents.insert({ ...inc, id: "dlp_2" }), "same report id");
    assert.equal(s.dlpIncidents.count(), 1);
    s.close();
  },
);

Deno.test("store: a migration numbered below one already applied is still applied (merge order)", () => {
  const db = Database.open(":memory:", {
    migrations: [
      { version: 1, name: "a", sql: "CREATE TABLE a (x)" },
      { version: 3, name: "c", sql: "CREATE TABLE c (x)" },
    ],
  });
  db.migrate([
    { version: 1, name: "a", sql: "CREATE TABLE a (x)" },
    { version: 2, name: "b", sql: "CREATE TABLE b (x)" },
    { version: 3, name: "c", sql: "CREATE TABLE c (x)" },
  ]);
  assert.equal(db.all("SELECT name FROM sqlite_master WHERE name = 'b'").length, 1);
  assert.deepEqual(
    db.all<{ version: number }>("SELECT version FROM schema_version ORDER BY version").map((r) =>
      r.version
    ),
    [1, 2, 3],
  );
  db.close();
});

storeTest(
  "store: the decision log filters, pages newest first, and prunes by rows and age",
  (open) => {
    const s = open();
    const base = {
      deviceName: "ws",
      user: null,
      src: "100.64.0.2",
      dst: "198.19.0.10",
      port: 80,
      protocol: "tcp",
      name: null,
      segments: ["app"],
      reason: "x",
    };
    s.transaction(() => {
      for (let i = 0; i < 10; i++) {
        s.decisions.insert({
          ...base,
          at: 1000 + i,
          deviceId: i % 2 ? "dev_a" : "dev_b",
          user: i === 3 ? "carol" : null,
          verdict: i % 3 ? "deny" : "allow",
          rule: i % 3 ? null : "eng",
        });
      }
    });
    assert.equal(s.decisions.list().length, 10);
    assert.deepEqual(s.decisions.list({ deviceId: "dev_a" }).map((d) => d.at), [
      1009,
      1007,
      1005,
      1003,
      1001,
    ]);
    assert.deepEqual(s.decisions.list({ verdict: "allow" }).map((d) => d.rule), [
      "eng",
      "eng",
      "eng",
      "eng",
    ]);
    assert.deepEqual(s.decisions.list({ rule: "eng", deviceId: "dev_b" }).map((d) => d.at), [
      1006,
      1000,
    ]);
    assert.deepEqual(s.decisions.list({ user: "carol" }).map((d) => d.at), [1003]);
    assert.deepEqual(s.decisions.list({ since: 1004, until: 1006 }).map((d) => d.at), [1005, 1004]);
    const page = s.decisions.list({ limit: 3 });
    assert.deepEqual(s.decisions.list({ beforeId: page[2].id, limit: 2 }).map((d) => d.at), [
      1006,
      1005,
    ]);
    assert.deepEqual(page[0].segments, ["app"]);
    assert.equal(s.decisions.prune(6, 0), 4);
    assert.equal(s.decisions.count(), 6);
    assert.equal(s.decisions.prune(100, 1008), 4);
    assert.deepEqual(s.decisions.list().map((d) => d.at), [1009, 1008]);
  },
);
