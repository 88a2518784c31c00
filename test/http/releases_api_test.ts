/**
 * Releases and update rules over HTTP: upload (bytes checked against the
 * manifest, stored on disk), the device's update check (a 50 % rule offers
 * exactly half of 10 enrolled devices, the same half every time), pause,
 * rollback (only with a rollback authorisation for its target), the program
 * (in the store in 1 MiB chunks, streamed and checked against its SHA-256) download, reports (audit, notification) and the
 * dashboard's versions by rule; bad input is a 4xx with a code.
 */
import assert from "node:assert/strict";
import { bundleBytes, generateReleaseKey, signRelease } from "../../src/fleet/release.ts";
import { signRollback } from "../../src/fleet/rollback_auth.ts";
import { RELEASE_CHUNK } from "../../src/edge/releases.ts";
import { UpdateCheckResponse } from "../../src/http/api/schemas.ts";
import { fixture } from "./helpers.ts";

const prog = (v: string) => new TextEncoder().encode(`#!/bin/sh\necho ${v}\n`);

async function setup() {
  const dataDir = await Deno.makeTempDir({ prefix: "pcrel" });
  const f = await fixture({ dataDir });
  const key = await generateReleaseKey();
  const upload = async (version: string, bytes?: Uint8Array<ArrayBuffer>) => {
    const body = bytes ??
      bundleBytes(await signRelease(key, version, prog(version)), prog(version));
    return await f.app.request("/api/v1/admin/updates/releases", {
      method: "POST",
      headers: { authorization: `Bearer ${f.token}`, "content-type": "application/octet-stream" },
      body,
    });
  };
  return { f, key, upload, dataDir };
}

Deno.test("updates API: upload, list, 50 % of 10 devices (stable), pause, rollback, reports", async () => {
  const { f, key: releaseKey, upload, dataDir } = await setup();
  try {
    const up = await upload("0.2.0");
    assert.equal(up.status, 201, await up.clone().text());
    const rel = (await up.json()).release;
    assert.equal(rel.version, "0.2.0");
    assert.equal(rel.available, true);
    // The bytes are in the (shared) store under their digest, not in the data directory.
    assert.deepEqual(f.store.releases.chunk(rel.sha256, 0), prog("0.2.0"));
    assert.equal(f.store.releases.chunkCount(rel.sha256), 1);
    await assert.rejects(() => Deno.stat(`${dataDir}/releases/${rel.sha256}`));
    assert.equal((await upload("0.2.0")).status, 409);
    assert.equal((await upload("0.1.0")).status, 201);

    const key = f.newKey({ reusable: true });
    const devices: Awaited<ReturnType<typeof f.enroll>>[] = [];
    for (let i = 0; i < 10; i++) devices.push(await f.enroll({}, key.key));
    const check = async (h: Record<string, string>) => {
      const r = await f.req("GET", "/api/v1/update", undefined, h);
      assert.equal(r.status, 200);
      return UpdateCheckResponse.parse(await r.json()).update;
    };
    const offered = async () => {
      const out = new Set<string>();
      for (const d of devices) if (await check(d.headers)) out.add(d.json.deviceId);
      return out;
    };
    assert.equal((await offered()).size, 0, "no rule, no offer");

    const created = await f.adminReq("POST", "/api/v1/admin/updates/rules", {
      name: "half",
      percent: 50,
      targetVersion: "0.2.0",
    });
    assert.equal(created.status, 201);
    const ruleId = (await created.json()).rule.id;
    const half = await offered();
    assert.equal(half.size, 5);
    assert.deepEqual(await offered(), half, "the same devices on re-evaluation");
    const one = devices.find((d) => half.has(d.json.deviceId))!;
    const offer = (await check(one.headers))!;
    assert.equal(offer.version, "0.2.0");
    assert.equal(offer.rollback, false);
    assert.equal(offer.sha256, rel.sha256);
    assert.equal(JSON.parse(offer.signedManifest).format, "portcullis-release-1");
    const dl = await f.req("GET", "/api/v1/update/program/0.2.0", undefined, one.headers);
    assert.deepEqual(new Uint8Array(await dl.arrayBuffer()), prog("0.2.0"));
    assert.equal((await f.req("GET", "/api/v1/update/program/0.2.0")).status, 401);

    // Pause holds everyone; a rollback rule to 0.1.0 needs the release key's authorisation.
    await f.adminReq("PATCH", `/api/v1/admin/updates/rules/${ruleId}`, { paused: true });
    assert.equal((await offered()).size, 0);
    const toOld = { paused: false, percent: 100, targetVersion: "0.1.0", rollback: true };
    const auth = (
      from: string[],
      to: string,
      validMs = 3600_000,
      k = releaseKey,
      at = f.clock.now(),
    ) => signRollback(k, from, to, validMs, () => at).then((x) => JSON.stringify(x));
    const stranger = await generateReleaseKey();
    const refusedRules: [what: string, body: unknown, code: string][] = [
      ["no authorisation", toOld, "rollback_authorisation_required"],
      ["not one", { ...toOld, rollbackAuthorisation: "{}" }, "invalid_rollback_authorisation"],
      [
        "for another version",
        { ...toOld, rollbackAuthorisation: await auth(["0.2.0"], "0.0.1") },
        "rollback_authorisation_mismatch",
      ],
      [
        "by another key than the target release's",
        { ...toOld, rollbackAuthorisation: await auth(["0.2.0"], "0.1.0", 3600_000, stranger) },
        "rollback_authorisation_mismatch",
      ],
      [
        "expired",
        {
          ...toOld,
          rollbackAuthorisation: await auth(
            ["0.2.0"],
            "0.1.0",
            1000,
            releaseKey,
            f.clock.now() - 5000,
          ),
        },
        "rollback_authorisation_expired",
      ],
      [
        "on a rule that is no rollback",
        { rollback: false, rollbackAuthorisation: await auth(["0.2.0"], "0.1.0") },
        "rollback_authorisation_unused",
      ],
    ];
    for (const [what, body, code] of refusedRules) {
      const r = await f.adminReq("PATCH", `/api/v1/admin/updates/rules/${ruleId}`, body);
      const j = await r.json();
      assert.equal(r.status, 400, `${what}: ${JSON.stringify(j)}`);
      assert.equal(j.error.code, code, what);
      assert.ok(j.error.message.length > 20, what);
    }
    assert.equal((await check(one.headers))?.version, undefined, "nothing changed (still paused)");
    const authText = await auth(["0.2.0"], "0.1.0");
    const patched = await f.adminReq("PATCH", `/api/v1/admin/updates/rules/${ruleId}`, {
      ...toOld,
      rollbackAuthorisation: authText,
    });
    assert.equal(patched.status, 200, await patched.clone().text());
    const back = (await check(one.headers))!;
    assert.equal(back.version, "0.1.0");
    assert.equal(back.rollback, true);
    assert.equal(back.rollbackAuthorisation, authText, "sent with the offer as uploaded");
    // Pausing and resuming keep it; a new target needs a new one.
    await f.adminReq("PATCH", `/api/v1/admin/updates/rules/${ruleId}`, { paused: true });
    await f.adminReq("PATCH", `/api/v1/admin/updates/rules/${ruleId}`, { paused: false });
    assert.equal((await check(one.headers))!.rollbackAuthorisation, authText);
    const retarget = await f.adminReq("PATCH", `/api/v1/admin/updates/rules/${ruleId}`, {
      targetVersion: "0.2.0",
    });
    assert.equal((await retarget.json()).error.code, "rollback_authorisation_mismatch");
    // A create takes one too.
    const created2 = await f.adminReq("POST", "/api/v1/admin/updates/rules", {
      name: "back",
      group: "nobody",
      percent: 100,
      targetVersion: "0.1.0",
      rollback: true,
      rollbackAuthorisation: authText,
    });
    assert.equal(created2.status, 201, await created2.clone().text());
    const noAuth = await f.adminReq("POST", "/api/v1/admin/updates/rules", {
      name: "back2",
      percent: 100,
      targetVersion: "0.1.0",
      rollback: true,
    });
    assert.equal((await noAuth.json()).error.code, "rollback_authorisation_required");
    await f.adminReq("DELETE", `/api/v1/admin/updates/rules/${(await created2.json()).rule.id}`);

    // Reports: the dashboard counts the version, refusals are notified and audited.
    const rep = await f.req("POST", "/api/v1/update/report", {
      version: "0.2.0",
      outcome: "installed",
      reason: "Updated from 0.1.0",
    }, one.headers);
    assert.equal(rep.status, 200);
    await f.req("POST", "/api/v1/update/report", {
      version: "0.3.0",
      outcome: "refused",
      reason: "bad signature",
    }, devices[0].headers);
    const n = f.store.notifications.list({ afterId: 0, limit: 50 })
      .filter((x) => x.kind === "connector_update");
    assert.ok(n.some((x) => x.severity === "critical" && x.message.includes("bad signature")));
    assert.ok(f.store.audit.list({ limit: 50 }).some((a) => a.action === "update.refused"));
    const ov = await (await f.adminReq("GET", "/api/v1/admin/updates/overview")).json();
    const row = ov.rules.find((r: { rule: { id: string } | null }) => r.rule?.id === ruleId);
    assert.equal(row.devices, 10);
    assert.equal(row.selected, 10);
    assert.deepEqual(row.byVersion, [
      { version: "0.2.0", devices: 1 },
      { version: "0.1.0", devices: 9 },
    ]);

    // Bad input: codes and sentences.
    const bad: [string, string, unknown, number, string][] = [
      [
        "POST",
        "/api/v1/admin/updates/rules",
        { name: "x", percent: 101, targetVersion: "0.2.0" },
        400,
        "invalid_request",
      ],
      [
        "POST",
        "/api/v1/admin/updates/rules",
        { name: "x", percent: 5, targetVersion: "7.0.0" },
        400,
        "unknown_release",
      ],
      [
        "POST",
        "/api/v1/admin/updates/rules",
        { name: "half", percent: 5, targetVersion: "0.2.0" },
        409,
        "rule_exists",
      ],
      ["PATCH", "/api/v1/admin/updates/rules/upd_nope", { paused: true }, 404, "rule_not_found"],
      ["DELETE", "/api/v1/admin/updates/releases/0.1.0", undefined, 409, "release_in_use"],
      ["DELETE", "/api/v1/admin/updates/releases/9.9.9", undefined, 404, "release_not_found"],
    ];
    for (const [method, path, body, status, code] of bad) {
      const r = await f.adminReq(method, path, body);
      const j = await r.json();
      assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(j)}`);
      assert.equal(j.error.code, code, `${method} ${path}`);
      assert.ok(j.error.message.length > 10);
    }
    const garbage = await upload("x", new TextEncoder().encode("not a bundle"));
    assert.equal(garbage.status, 400);
    assert.equal((await garbage.json()).error.code, "invalid_release");
    const r = await f.req(
      "POST",
      "/api/v1/update/report",
      { version: "1", outcome: "great" },
      one.headers,
    );
    assert.equal(r.status, 400);

    // Delete: rule first, then the release and its bytes.
    assert.equal((await f.adminReq("DELETE", `/api/v1/admin/updates/rules/${ruleId}`)).status, 204);
    assert.equal((await f.adminReq("DELETE", "/api/v1/admin/updates/releases/0.2.0")).status, 204);
    assert.equal(f.store.releases.chunkCount(rel.sha256), 0, "its chunks went with it");
    const list = await (await f.adminReq("GET", "/api/v1/admin/updates/releases")).json();
    assert.deepEqual(list.releases.map((x: { version: string }) => x.version), ["0.1.0"]);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("updates API: a program of several chunks is streamed and checked; a corrupt one is cut off", async () => {
  const { f, key, upload, dataDir } = await setup();
  try {
    // 2.5 MiB: three chunks of at most 1 MiB.
    const big = new Uint8Array(RELEASE_CHUNK * 2 + RELEASE_CHUNK / 2);
    for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
    const signed = await signRelease(key, "0.3.0", big);
    const up = await upload("0.3.0", bundleBytes(signed, big));
    assert.equal(up.status, 201, await up.clone().text());
    const sha = (await up.json()).release.sha256;
    assert.equal(f.store.releases.chunkCount(sha), 3);
    assert.equal(f.store.releases.chunk(sha, 2)?.length, RELEASE_CHUNK / 2);
    const d = await f.enroll();
    const get = () => f.req("GET", "/api/v1/update/program/0.3.0", undefined, d.headers);
    const ok = await get();
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get("content-length"), String(big.length));
    assert.deepEqual(new Uint8Array(await ok.arrayBuffer()), big);

    // One byte changed in the database: the download stops with an error instead of completing.
    const bad = f.store.releases.chunk(sha, 1)!;
    bad[7] ^= 1;
    f.store.db.run("UPDATE release_chunks SET data = ? WHERE sha256 = ? AND seq = 1", bad, sha);
    const cut = await get();
    assert.equal(cut.status, 200);
    await assert.rejects(() => cut.arrayBuffer());
    // A missing chunk: the edge no longer offers or serves it.
    f.store.db.run("DELETE FROM release_chunks WHERE sha256 = ? AND seq = 2", sha);
    assert.equal((await get()).status, 404);
    const list = await (await f.adminReq("GET", "/api/v1/admin/updates/releases")).json();
    assert.equal(list.releases[0].available, false);

    // A release uploaded before the store held bytes is served from its file in the data directory.
    f.store.releases.deleteChunks(sha);
    await Deno.mkdir(`${dataDir}/releases`, { recursive: true });
    await Deno.writeFile(`${dataDir}/releases/${sha}`, big);
    assert.deepEqual(new Uint8Array(await (await get()).arrayBuffer()), big);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("updates API: heartbeats carry the connector version to the device list", async () => {
  const { f, dataDir } = await setup();
  try {
    const d = await f.enroll();
    const hb = await f.req("POST", "/api/v1/heartbeat", {
      state: "connected",
      transport: "udp",
      connectorVersion: "0.4.1",
    }, d.headers);
    assert.equal(hb.status, 200);
    assert.equal(f.store.devices.byId(d.json.deviceId)!.connectorVersion, "0.4.1");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
