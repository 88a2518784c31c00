/** The releases repository (migrations 13 and 17: rules' authorisations, program chunks) on SQLite and PostgreSQL. */
import assert from "node:assert/strict";
import { deviceRecord, storeTest } from "./backends.ts";
import type { ReleaseRecord } from "../../src/store/mod.ts";

const release = (version: string, at: number): ReleaseRecord => ({
  version,
  sha256: version.replace(/\./g, "").padStart(64, "a"),
  size: 10,
  keyId: "0123456789abcdef",
  signedManifest: `{"v":"${version}"}`,
  uploadedAt: at,
  uploadedBy: "user:root",
});

storeTest("store: releases, ordered rules, reports (last per device, cascade)", (open) => {
  const s = open();
  assert.equal(s.releases.insert(release("0.1.0", 1)), true);
  assert.equal(s.releases.insert(release("0.1.0", 2)), false, "one row per version");
  s.releases.insert(release("0.2.0", 3));
  assert.deepEqual(s.releases.list().map((r) => r.version), ["0.2.0", "0.1.0"]);
  const base = {
    group: null,
    percent: 50,
    paused: false,
    rollback: false,
    rollbackAuthorisation: null,
    createdAt: 5,
    updatedAt: 5,
  };
  const a = s.releases.insertRule({ ...base, id: "upd_a", name: "a", targetVersion: "0.2.0" });
  const b = s.releases.insertRule({
    ...base,
    id: "upd_b",
    name: "b",
    group: "eng",
    targetVersion: "0.1.0",
    rollback: true,
    rollbackAuthorisation: '{"format":"portcullis-rollback-1"}',
  });
  assert.deepEqual([a.position, b.position], [1, 2]);
  assert.deepEqual(s.releases.rules().map((r) => [r.name, r.group, r.rollback]), [
    ["a", null, false],
    ["b", "eng", true],
  ]);
  assert.equal(s.releases.updateRule({ ...b, position: 0, paused: true, updatedAt: 9 }), true);
  assert.deepEqual(s.releases.rules().map((r) => r.name), ["b", "a"]);
  assert.equal(s.releases.rule("upd_b")?.paused, true);
  assert.equal(
    s.releases.rule("upd_b")?.rollbackAuthorisation,
    '{"format":"portcullis-rollback-1"}',
    "the authorisation is kept as given (migration 17)",
  );
  assert.equal(s.releases.rule("upd_a")?.rollbackAuthorisation, null);
  s.releases.updateRule({ ...b, rollbackAuthorisation: null, updatedAt: 10 });
  assert.equal(s.releases.rule("upd_b")?.rollbackAuthorisation, null);
  assert.equal(s.releases.ruleByName("a")?.id, "upd_a");
  assert.deepEqual(s.releases.rulesTargeting("0.2.0").map((r) => r.id), ["upd_a"]);
  // A rule keeps its release: the row cannot go while a rule targets it.
  assert.throws(() => s.releases.delete("0.2.0"));
  assert.equal(s.releases.deleteRule("upd_a"), true);
  assert.equal(s.releases.delete("0.2.0"), true);

  s.devices.insert(deviceRecord("d1"));
  s.releases.putReport({
    deviceId: "d1",
    version: "0.2.0",
    outcome: "refused",
    reason: "x",
    at: 1,
  });
  s.releases.putReport({
    deviceId: "d1",
    version: "0.2.0",
    outcome: "installed",
    reason: "",
    at: 2,
  });
  assert.deepEqual(s.releases.reports().map((r) => [r.outcome, r.at]), [["installed", 2]]);
  s.devices.setConnectorVersion("d1", "0.2.0");
  assert.equal(s.devices.byId("d1")?.connectorVersion, "0.2.0");
  s.devices.delete("d1");
  assert.deepEqual(s.releases.reports(), [], "reports cascade with the device");
});

storeTest("store: release chunks keep their bytes exactly (BLOB / BYTEA)", (open) => {
  const s = open();
  const sha = "f".repeat(64);
  const big = new Uint8Array(1024 * 1024);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  const small = new Uint8Array([0, 255, 0, 10, 13, 92, 39]);
  s.releases.putChunk(sha, 0, big);
  s.releases.putChunk(sha, 1, small);
  s.releases.putChunk(sha, 1, new Uint8Array([1]));
  assert.equal(s.releases.chunkCount(sha), 2);
  assert.deepEqual(s.releases.chunk(sha, 0), big);
  assert.deepEqual(s.releases.chunk(sha, 1), small, "an existing chunk is kept");
  assert.equal(s.releases.chunk(sha, 2), undefined);
  assert.equal(s.releases.chunkCount("0".repeat(64)), 0);
  s.releases.deleteChunks(sha);
  assert.equal(s.releases.chunkCount(sha), 0);
});
