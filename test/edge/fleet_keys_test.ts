/**
 * A second edge joins a fleet with the database URL and the fleet join key
 * alone, on a real PostgreSQL: the first edge stores the fleet's CA and
 * sealing key in the database; the second unwraps them, pins the same CA and
 * reads what the first sealed (the admin's TOTP seed). A missing, wrong or
 * malformed join key, or a data directory from another fleet, stops the
 * start with an error naming the problem and writes nothing — through the
 * CLI too. The repository runs on SQLite and PostgreSQL.
 */
import assert from "node:assert/strict";
import { keyCreate } from "./edge_cli.ts";
import { ManualClock } from "../../src/clock.ts";
import { loadConfig } from "../../src/config.ts";
import { startEdgeControlPlane } from "../../src/edge/control_plane.ts";
import { createJoinKeyFile } from "../../src/fleet/join_key.ts";
import { RingSink, setLogSinks, stderrSink } from "../../src/log.ts";
import { openStore } from "../../src/store/mod.ts";
import { pgBinDir, startPgCluster } from "../../src/store/pg/cluster.ts";
import { storeTest } from "../store/backends.ts";

const SCRYPT = { N: 1024, r: 8, p: 1 };

async function start(dataDir: string, database: string, extra: Record<string, string> = {}) {
  const config = await loadConfig("edge", {
    flags: { "data-dir": dataDir, "public-host": "edge.test", database, ...extra },
  });
  return startEdgeControlPlane(config, {
    clock: new ManualClock(),
    localPrefixes: () => [],
    scrypt: SCRYPT,
  });
}

const entries = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test({
  name:
    "fleet keys: a second edge joins with the join key alone; bad keys stop it, nothing written",
  ignore: pgBinDir() === null,
  async fn() {
    const cluster = await startPgCluster();
    const url = await cluster.createDatabase("fleet");
    const root = await Deno.makeTempDir();
    setLogSinks([new RingSink()]);
    try {
      // Edge A on the empty database: its keys become the fleet's, the join key is written.
      const a = await start(`${root}/a`, url, { "edge-name": "edge-a" });
      const admin = await Deno.readTextFile(a.initialAdminPath!);
      const totp = /totp secret: (\S+)/.exec(admin)![1];
      await a.close();
      const keyFile = `${root}/a/fleet.key`;
      assert.equal((await Deno.stat(keyFile)).mode! & 0o777, 0o600);
      const peek = openStore(url);
      const row = peek.fleetSecrets.get()!;
      assert.equal(row.createdBy, "edge-a");
      assert.equal(row.caCertPem.trim(), (await Deno.readTextFile(`${root}/a/ca/ca.crt`)).trim());
      assert.ok(!row.caKeySealed.includes("PRIVATE KEY"), "the CA key is sealed");
      const stored = JSON.stringify(row);
      const counts = peek.tableCounts();

      // Refused starts: each leaves the data directory empty and the database as it was.
      const wrongKey = `${root}/wrong.key`;
      await createJoinKeyFile(wrongKey);
      await Deno.writeTextFile(`${root}/junk.key`, "not a key\n");
      const refused: [string, Record<string, string>, RegExp][] = [
        ["no-key", {}, /no fleet join key at ".*no-key\/fleet.key"/],
        [
          "wrong",
          { "fleet-key-file": wrongKey },
          /join key in ".*wrong.key" is not this fleet's; nothing was written/,
        ],
        [
          "junk",
          { "fleet-key-file": `${root}/junk.key` },
          /Cannot use fleet join key ".*junk.key": expected "pcfk1:"/,
        ],
      ];
      for (const [name, extra, error] of refused) {
        await assert.rejects(() => start(`${root}/${name}`, url, extra), error, name);
        assert.deepEqual(entries(`${root}/${name}`), [], `${name}: nothing written`);
      }
      assert.equal(JSON.stringify(peek.fleetSecrets.get()), stored);
      assert.deepEqual(peek.tableCounts(), counts);

      // Another fleet's sealing key in the data directory is refused too.
      await Deno.mkdir(`${root}/other`);
      await Deno.writeFile(`${root}/other/secret.key`, crypto.getRandomValues(new Uint8Array(32)));
      await assert.rejects(
        () => start(`${root}/other`, url, { "fleet-key-file": keyFile }),
        /secret.key" is another fleet's sealing key/,
      );
      assert.deepEqual(entries(`${root}/other`), ["secret.key"]);

      // Edge B with the right join key: same CA, same sealing key, reads A's sealed data.
      const copied = `${root}/copied-fleet.key`;
      await Deno.copyFile(keyFile, copied);
      const b = await start(`${root}/b`, url, { "edge-name": "edge-b", "fleet-key-file": copied });
      assert.equal(b.ca.caSha256, a.ca.caSha256);
      assert.equal(b.initialAdminPath, null);
      assert.equal(b.store.users.byUsername("admin")?.totpSecret, totp);
      assert.deepEqual(
        await Deno.readFile(`${root}/b/secret.key`),
        await Deno.readFile(`${root}/a/secret.key`),
      );
      assert.equal((await Deno.stat(`${root}/b/ca/ca.key`)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(`${root}/b/secret.key`)).mode! & 0o777, 0o600);
      await b.close();
      // Its next start needs no join key; A's restart neither.
      const b2 = await start(`${root}/b`, url, { "edge-name": "edge-b" });
      assert.equal(b2.ca.caSha256, a.ca.caSha256);
      await b2.close();
      const a2 = await start(`${root}/a`, url, { "edge-name": "edge-a" });
      await a2.close();
      assert.equal(JSON.stringify(peek.fleetSecrets.get()), stored);

      // The CLI names the problem and exits 2.
      const cli = await keyCreate(`${root}/cli`, ["--database", url, "--fleet-key-file", wrongKey]);
      const stderr = new TextDecoder().decode(cli.stderr);
      assert.equal(cli.code, 2, stderr);
      assert.match(
        stderr,
        /^Error: Cannot join the fleet in database ".*": the fleet join key in ".*wrong.key" is not this fleet's; nothing was written$/m,
      );
      assert.deepEqual(entries(`${root}/cli`), []);
      await peek.close();
    } catch (err) {
      console.error(cluster.log().slice(-4000));
      throw err;
    } finally {
      setLogSinks([stderrSink]);
      await Deno.remove(root, { recursive: true });
      await cluster.stop();
    }
  },
});

Deno.test({
  name:
    "fleet keys: two edges starting together on an empty database end up with one CA and one inspection CA",
  ignore: pgBinDir() === null,
  async fn() {
    const cluster = await startPgCluster();
    const url = await cluster.createDatabase("fleet");
    const root = await Deno.makeTempDir();
    try {
      // Both are told the same join key file, which neither finds: the one
      // that takes the lock first makes it and the CA, the other joins.
      const args = ["--database", url, "--fleet-key-file", `${root}/fleet.key`];
      const outs = await Promise.all([keyCreate(`${root}/a`, args), keyCreate(`${root}/b`, args)]);
      for (const o of outs) assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
      const certA = await Deno.readTextFile(`${root}/a/ca/ca.crt`);
      assert.equal(await Deno.readTextFile(`${root}/b/ca/ca.crt`), certA);
      assert.deepEqual(
        await Deno.readFile(`${root}/a/secret.key`),
        await Deno.readFile(`${root}/b/secret.key`),
      );
      // …and one SSL inspection CA (src/edge/fleet_inspection_ca.ts).
      const inspA = await Deno.readTextFile(`${root}/a/inspection/inspection-ca.crt`);
      assert.equal(await Deno.readTextFile(`${root}/b/inspection/inspection-ca.crt`), inspA);
      const s = openStore(url);
      assert.equal(s.fleetSecrets.get()?.caCertPem.trim(), certA.trim());
      assert.equal(s.fleetSecrets.inspectionCa()?.certPem.trim(), inspA.trim());
      assert.equal(s.enrollmentKeys.list().length, 2, "both made their enrolment key");
      await s.close();
    } catch (err) {
      console.error(cluster.log().slice(-4000));
      throw err;
    } finally {
      await Deno.remove(root, { recursive: true });
      await cluster.stop();
    }
  },
});

storeTest("fleet secrets: stored once, read back; exclusive runs its function", async (open) => {
  const s = open();
  assert.equal(s.fleetSecrets.get(), undefined);
  const rec = {
    joinKeyId: "j1",
    sealingKeyId: "s1",
    sealingKey: "fw1:x",
    caCertPem: "-----BEGIN CERTIFICATE-----",
    caKeySealed: "sb1:y",
    createdAt: 5,
    createdBy: "edge-a",
  };
  assert.equal(
    await s.fleetSecrets.exclusive(() => Promise.resolve(s.fleetSecrets.insert(rec))),
    true,
  );
  assert.equal(
    s.fleetSecrets.insert({ ...rec, createdBy: "edge-b" }),
    false,
    "the first one stays",
  );
  assert.deepEqual(s.fleetSecrets.get(), rec);
  await assert.rejects(() => s.fleetSecrets.exclusive(() => Promise.reject(new Error("x"))), /x/);
  // The lock was released: taking it again does not block.
  assert.equal(await s.fleetSecrets.exclusive(() => Promise.resolve(1)), 1);
});
