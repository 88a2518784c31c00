/**
 * The connector's updater on real files, against the fake edge API:
 * refusals (bad signature, downgrade without rollback, a manifest naming
 * another version, a program that is not the manifest's) leave the program
 * alone and are reported; a good release is swapped in with the old one
 * kept, and the new process confirms it once healthy; a new version that
 * never gets healthy is rolled back at its deadline (or on its fourth
 * start), the old version reports the rollback and never retries it; the
 * pinned key cannot be replaced by another.
 */
import assert from "node:assert/strict";
import type { UpdateOffer } from "../../src/control/mod.ts";
import { FakeEdgeApi } from "../../src/connector/fake_edge_api.ts";
import { NotificationHub } from "../../src/connector/notifications.ts";
import { pinReleaseKey } from "../../src/connector/release_pin.ts";
import { Updater, type UpdaterDeps } from "../../src/connector/updater.ts";
import {
  generateReleaseKey,
  publicKeyFileText,
  type ReleaseKeyPair,
  signRelease,
} from "../../src/fleet/release.ts";
import { signRollback } from "../../src/fleet/rollback_auth.ts";
import { ConnectorState } from "../../src/store/connector_state.ts";
import { setLogSinks } from "../../src/log.ts";

setLogSinks([]);

const prog = (v: string) => new TextEncoder().encode(`#!/bin/sh\necho ${v}\n`);

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "pcupdater" });
  const key = await generateReleaseKey();
  await Deno.writeTextFile(`${dir}/release.pub`, publicKeyFileText(key.publicKey));
  const pinned = (await pinReleaseKey(dir, `${dir}/release.pub`))!;
  const program = `${dir}/portcullis`;
  await Deno.writeFile(program, prog("0.1.0"), { mode: 0o755 });
  const store = ConnectorState.open(`${dir}/connector.db`);
  const hub = new NotificationHub(store);
  const edge = new FakeEdgeApi();
  let restarts = 0;
  const updaters: Updater[] = [];
  const make = (over: Partial<UpdaterDeps> = {}) => {
    const u = new Updater({
      dataDir: dir,
      program,
      key: pinned,
      client: () => edge,
      hub,
      restart: () => restarts++,
      healthy: () => true,
      checkMs: 3600_000,
      healthMs: 60_000,
      firstCheckMs: 3600_000,
      version: "0.1.0",
      ...over,
    });
    updaters.push(u);
    return u;
  };
  const offer = async (
    version: string,
    o: {
      signer?: ReleaseKeyPair;
      manifestVersion?: string;
      rollback?: boolean;
      rollbackAuthorisation?: string;
    } = {},
  ): Promise<UpdateOffer> => {
    const bytes = prog(version);
    edge.programs.set(version, bytes);
    const signed = await signRelease(o.signer ?? key, o.manifestVersion ?? version, bytes);
    const m = JSON.parse(signed.manifest);
    return {
      ruleId: "upd_1",
      ruleName: "all",
      version,
      rollback: o.rollback ?? false,
      sha256: m.sha256,
      size: m.size,
      signedManifest: JSON.stringify(signed),
      ...(o.rollbackAuthorisation ? { rollbackAuthorisation: o.rollbackAuthorisation } : {}),
    };
  };
  /** A rollback authorisation's text (by the release key unless `signer`). */
  const authorise = async (
    from: string[],
    to: string,
    o: { signer?: ReleaseKeyPair; validMs?: number; at?: number } = {},
  ) =>
    JSON.stringify(
      await signRollback(
        o.signer ?? key,
        from,
        to,
        o.validMs ?? 3600_000,
        () => o.at ?? Date.now(),
      ),
    );
  return {
    dir,
    key,
    program,
    store,
    hub,
    edge,
    make,
    offer,
    authorise,
    restarts: () => restarts,
    async close() {
      for (const u of updaters) u.stop();
      store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("updater: refusals leave the program alone and are reported (table)", async () => {
  const s = await setup();
  try {
    const stranger = await generateReleaseKey();
    const table: [what: string, offer: () => Promise<UpdateOffer>, reason: RegExp][] = [
      ["signed by another key", () => s.offer("0.2.0", { signer: stranger }), /bad signature/],
      ["older, no rollback", () => s.offer("0.0.9"), /older than 0\.1\.0.*does not allow rollback/],
      [
        "manifest names another version",
        () => s.offer("0.3.0", { manifestVersion: "0.4.0" }),
        /names version 0\.4\.0, not 0\.3\.0/,
      ],
      [
        "older, rollback rule without an authorisation",
        () => s.offer("0.0.8", { rollback: true }),
        /older than 0\.1\.0 and no rollback authorisation/,
      ],
      [
        "older, authorisation by another key",
        async () =>
          s.offer("0.0.7", {
            rollback: true,
            rollbackAuthorisation: await s.authorise(["0.1.0"], "0.0.7", { signer: stranger }),
          }),
        /rollback authorisation is not signed by the pinned release key/,
      ],
      [
        "older, authorisation from another version",
        async () =>
          s.offer("0.0.6", {
            rollback: true,
            rollbackAuthorisation: await s.authorise(["0.2.0"], "0.0.6"),
          }),
        /allows leaving 0\.2\.0, not 0\.1\.0/,
      ],
      [
        "older, authorisation to another version",
        async () =>
          s.offer("0.0.5", {
            rollback: true,
            rollbackAuthorisation: await s.authorise(["0.1.0"], "0.0.4"),
          }),
        /is for version 0\.0\.4, not 0\.0\.5/,
      ],
      [
        "older, authorisation expired",
        async () =>
          s.offer("0.0.3", {
            rollback: true,
            rollbackAuthorisation: await s.authorise(["0.1.0"], "0.0.3", {
              validMs: 1000,
              at: Date.now() - 2000,
            }),
          }),
        /rollback authorisation expired at/,
      ],
      ["program is not the manifest's", async () => {
        const o = await s.offer("0.5.0");
        s.edge.programs.set("0.5.0", prog("0.5.1"));
        return o;
      }, /SHA-256/],
    ];
    for (const [what, make, reason] of table) {
      s.edge.updateOffer = await make();
      const st = await s.make().check();
      assert.equal(st.state, "refused", what);
      assert.match(st.message, reason, what);
      const rep = s.edge.updateReports.at(-1)!;
      assert.equal(rep.outcome, "refused", what);
      assert.equal(rep.version, s.edge.updateOffer.version, what);
      assert.deepEqual(await Deno.readFile(s.program), prog("0.1.0"), what);
    }
    assert.equal(s.restarts(), 0);
    assert.ok(s.store.listNotifications({ limit: 10 }).some((n) => n.type === "update_refused"));
    // The same refusal is told to the edge once per run.
    const u = s.make();
    s.edge.updateOffer = await s.offer("0.2.0", { signer: stranger });
    const before = s.edge.updateReports.length;
    await u.check();
    await u.check();
    assert.equal(s.edge.updateReports.length, before + 1);
    // Nothing offered, or the version running: up to date.
    s.edge.updateOffer = null;
    assert.equal((await s.make().check()).state, "up_to_date");
    s.edge.updateOffer = await s.offer("0.1.0");
    assert.equal((await s.make().check()).state, "up_to_date");
  } finally {
    await s.close();
  }
});

Deno.test("updater: install, restart, confirm once healthy; a rollback rule goes back", async () => {
  const s = await setup();
  try {
    s.edge.updateOffer = await s.offer("0.2.0");
    const st = await s.make().check();
    assert.equal(st.state, "restarting");
    assert.equal(s.restarts(), 1);
    assert.deepEqual(await Deno.readFile(s.program), prog("0.2.0"));
    assert.deepEqual(await Deno.readFile(`${s.program}.previous`), prog("0.1.0"));
    assert.equal((await Deno.stat(s.program)).mode! & 0o777, 0o755);

    // The new process: not healthy yet, then healthy — it reports and is done.
    let healthy = false;
    const v2 = s.make({ version: "0.2.0", healthy: () => healthy });
    await v2.start();
    assert.equal(v2.status().state, "confirming");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(s.edge.updateReports.length, 0, "no report before the engine is healthy");
    healthy = true;
    await until("the confirmation", () => v2.status().state === "updated");
    assert.deepEqual(s.edge.updateReports, [{
      version: "0.2.0",
      outcome: "installed",
      reason: "Updated from 0.1.0",
    }]);
    const file = JSON.parse(await Deno.readTextFile(`${s.dir}/updates.json`));
    assert.equal(file.pending, null);
    v2.stop();

    // A rollback rule to 0.1.0: accepted with the release key's authorisation from 0.2.0.
    s.edge.updateOffer = await s.offer("0.1.0", {
      rollback: true,
      rollbackAuthorisation: await s.authorise(["0.2.0"], "0.1.0"),
    });
    assert.equal((await s.make({ version: "0.2.0" }).check()).state, "restarting");
    assert.deepEqual(await Deno.readFile(s.program), prog("0.1.0"));
    assert.deepEqual(await Deno.readFile(`${s.program}.previous`), prog("0.2.0"));
  } finally {
    await s.close();
  }
});

Deno.test("updater: a new version that never gets healthy is rolled back and not retried", async () => {
  const s = await setup();
  try {
    s.edge.updateOffer = await s.offer("0.2.0");
    await s.make({ healthMs: 300 }).check();
    assert.equal(s.restarts(), 1);
    // The new version starts but its engine never gets healthy.
    const v2 = s.make({ version: "0.2.0", healthy: () => false });
    await v2.start();
    await until("the rollback", () => s.restarts() === 2, 5000);
    assert.deepEqual(await Deno.readFile(s.program), prog("0.1.0"), "the previous program is back");
    v2.stop();
    // The previous version starts again, tells the edge (once it answers), never retries 0.2.0.
    s.edge.updateReportsFail = true;
    const v1 = s.make();
    await v1.start();
    assert.equal(v1.status().state, "rolled_back");
    assert.match(v1.status().message, /did not report to the edge within 0\.3 s/);
    s.edge.updateReportsFail = false;
    await until("the rollback report", () => s.edge.updateReports.length === 1);
    assert.equal(s.edge.updateReports[0].outcome, "rolled_back");
    assert.equal(s.edge.updateReports[0].version, "0.2.0");
    const st = await v1.check();
    assert.equal(st.state, "rolled_back");
    assert.equal(s.edge.calls.filter((c) => c === "downloadRelease:0.2.0").length, 1);
    assert.ok(
      s.store.listNotifications({ limit: 20 }).some((n) => n.type === "update_rolled_back"),
    );
  } finally {
    await s.close();
  }
});

Deno.test("updater: a new version that keeps restarting is rolled back on its fourth start", async () => {
  const s = await setup();
  try {
    s.edge.updateOffer = await s.offer("0.2.0");
    await s.make().check();
    for (let boot = 1; boot <= 3; boot++) {
      const v2 = s.make({ version: "0.2.0", healthy: () => false });
      await v2.start();
      assert.equal(v2.status().state, "confirming", `boot ${boot}`);
      v2.stop();
    }
    await s.make({ version: "0.2.0", healthy: () => false }).start();
    assert.equal(s.restarts(), 2);
    assert.deepEqual(await Deno.readFile(s.program), prog("0.1.0"));
  } finally {
    await s.close();
  }
});

Deno.test("updater: the pinned key stays; no key or no program means updates are off", async () => {
  const s = await setup();
  try {
    const other = await generateReleaseKey();
    await Deno.writeTextFile(`${s.dir}/other.pub`, publicKeyFileText(other.publicKey));
    await assert.rejects(
      () => pinReleaseKey(s.dir, `${s.dir}/other.pub`),
      /this connector pinned key .* remove that file to pin another key/,
    );
    // Without a flag the pinned key is used.
    assert.equal((await pinReleaseKey(s.dir, undefined))?.publicKey, s.key.publicKey);
    await Deno.writeTextFile(`${s.dir}/junk.pub`, "hello");
    await assert.rejects(() => pinReleaseKey(s.dir, `${s.dir}/junk.pub`), /not a file made by/);
    const fresh = await Deno.makeTempDir();
    assert.equal(await pinReleaseKey(fresh, undefined), null);
    await Deno.remove(fresh, { recursive: true });
    assert.equal(s.make({ key: null }).status().state, "disabled");
    assert.equal(s.make({ program: null }).status().state, "disabled");
    s.edge.updateOffer = await s.offer("0.2.0");
    assert.equal((await s.make({ key: null }).check()).state, "disabled");
    assert.equal(s.edge.calls.length, 0, "a disabled updater asks nothing");
  } finally {
    await s.close();
  }
});

Deno.test("updater: checks on its own, first after firstCheckMs, then every checkMs", async () => {
  const s = await setup();
  try {
    const u = s.make({ firstCheckMs: 10, checkMs: 60 });
    await u.start();
    await until("three checks", () => s.edge.calls.filter((c) => c === "checkUpdate").length >= 3);
    assert.equal(u.status().state, "up_to_date");
    u.stop();
    const n = s.edge.calls.length;
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(s.edge.calls.length, n, "no check after stop");
    // A long interval: only the first check comes.
    const v = s.make({ firstCheckMs: 10, checkMs: 3600_000 });
    await v.start();
    await until("the first check", () => s.edge.calls.length === n + 1);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(s.edge.calls.length, n + 1);
  } finally {
    await s.close();
  }
});
