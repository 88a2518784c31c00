/**
 * One SSL inspection CA for the whole fleet, on a real PostgreSQL: two edges
 * with web proxies hand out the same root in their bundles, and a leaf edge B
 * issues verifies (openssl verify) against the root edge A's bundle carries.
 * An edge whose data directory holds another inspection CA refuses to start,
 * naming both (exit code 2 through the CLI), and changes neither; an
 * upgraded edge (its own CA, none in the database) makes its CA the fleet's.
 * SQLite keeps its per-edge CA.
 */
import assert from "node:assert/strict";
import { keyCreate } from "./edge_cli.ts";
import { ManualClock } from "../../src/clock.ts";
import { loadConfig } from "../../src/config.ts";
import { startEdgeControlPlane } from "../../src/edge/control_plane.ts";
import { SecretBox } from "../../src/identity/secret_box.ts";
import { RingSink, setLogSinks, stderrSink } from "../../src/log.ts";
import {
  certSha256,
  InspectionCa,
  newInspectionCaPem,
  writeInspectionCaFiles,
} from "../../src/proxy/inspection_ca.ts";
import { openStore } from "../../src/store/mod.ts";
import { pgBinDir, startPgCluster } from "../../src/store/pg/cluster.ts";
import { storeTest } from "../store/backends.ts";

const SCRYPT = { N: 1024, r: 8, p: 1 };

async function start(dataDir: string, database: string | null, extra: Record<string, string>) {
  const config = await loadConfig("edge", {
    flags: {
      "data-dir": dataDir,
      "public-host": "edge.test",
      "web-proxy-port": "3128",
      ...(database ? { database } : {}),
      ...extra,
    },
  });
  return startEdgeControlPlane(config, {
    clock: new ManualClock(),
    localPrefixes: () => [],
    scrypt: SCRYPT,
  });
}

type Edge = Awaited<ReturnType<typeof start>>;

/** The root the edge's bundles carry once the app profile consents to installing it. */
function bundleRoot(edge: Edge): { pem: string; sha256: string } {
  edge.policy.replace("app-profiles", [
    { name: "default", forwarding: { name: "default" }, installInspectionCa: true },
  ], "test");
  const root = edge.policy.bundleFor(null).inspectionCa;
  assert.ok(root, "the bundle carries the inspection CA");
  return root;
}

/** `openssl verify` of `leafPem` (the leaf first) against `rootPem` alone. */
async function opensslVerify(dir: string, rootPem: string, leafPem: string, host: string) {
  await Deno.writeTextFile(`${dir}/root.pem`, rootPem);
  const leaf = leafPem.slice(0, leafPem.indexOf("-----END CERTIFICATE-----") + 25) + "\n";
  await Deno.writeTextFile(`${dir}/leaf.pem`, leaf);
  const out = await new Deno.Command("openssl", {
    args: [
      "verify",
      "-x509_strict",
      "-purpose",
      "sslserver",
      "-verify_hostname",
      host,
      "-CAfile",
      `${dir}/root.pem`,
      `${dir}/leaf.pem`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { ok: out.code === 0, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

const readDirFiles = async (dir: string) =>
  Object.fromEntries(
    await Promise.all(
      [...Deno.readDirSync(dir)].map(async (e) =>
        [e.name, await Deno.readTextFile(`${dir}/${e.name}`)] as const
      ),
    ),
  );

Deno.test({
  name:
    "[postgres] fleet inspection CA: two edges share one root, B's leaves verify against A's; another CA is refused; an upgraded edge's CA becomes the fleet's",
  ignore: pgBinDir() === null,
  async fn() {
    const cluster = await startPgCluster("pcl-ica-");
    const url = await cluster.createDatabase("fleet");
    const root = await Deno.makeTempDir({ prefix: "pcl-ica-" });
    setLogSinks([new RingSink()]);
    try {
      // Edge A on the empty database stores its inspection CA, sealed.
      const a = await start(`${root}/a`, url, { "edge-name": "edge-a" });
      const rootA = bundleRoot(a);
      await a.close();
      const peek = openStore(url);
      const row = peek.fleetSecrets.inspectionCa()!;
      assert.equal(row.createdBy, "edge-a");
      assert.equal(row.certSha256, rootA.sha256);
      assert.equal(row.certPem.trim(), rootA.pem.trim());
      assert.ok(!row.keySealed.includes("PRIVATE KEY"), "the CA key is sealed");
      assert.equal(
        (await Deno.readTextFile(`${root}/a/inspection/inspection-ca.crt`)).trim(),
        rootA.pem.trim(),
      );
      const stored = JSON.stringify(row);

      // Edge B joins with the join key alone: same root, its leaves verify against A's.
      const b = await start(`${root}/b`, url, {
        "edge-name": "edge-b",
        "fleet-key-file": `${root}/a/fleet.key`,
      });
      const rootB = bundleRoot(b);
      assert.equal(rootB.sha256, rootA.sha256, "both bundles carry the same root");
      assert.equal(certSha256(rootB.pem), rootA.sha256);
      const leafB = await b.ctx.web.ca!.leaf("shop.example.test");
      const ok = await opensslVerify(root, rootA.pem, leafB.cert, "shop.example.test");
      assert.ok(ok.ok, ok.text);
      // The check can fail: another CA's root does not verify B's leaf.
      const stranger = await InspectionCa.ephemeral();
      const bad = await opensslVerify(root, stranger.certPem, leafB.cert, "shop.example.test");
      assert.ok(!bad.ok, "a leaf of B must not verify against an unrelated root");
      assert.match(bad.text, /unable to get local issuer certificate/);
      assert.equal(
        (await Deno.stat(`${root}/b/inspection/inspection-ca.key.sealed`)).mode! & 0o777,
        0o600,
      );
      await b.close();
      // Its restart loads the same CA from its copy and the database.
      const b2 = await start(`${root}/b`, url, { "edge-name": "edge-b" });
      assert.equal(b2.ctx.web.ca!.sha256, rootA.sha256);
      await b2.close();
      assert.equal(JSON.stringify(peek.fleetSecrets.inspectionCa()), stored);

      // Edge C with an inspection CA of its own: refused, naming both; nothing changed.
      const fleetKey = await Deno.readFile(`${root}/a/secret.key`);
      await Deno.mkdir(`${root}/c`);
      await Deno.copyFile(`${root}/a/secret.key`, `${root}/c/secret.key`);
      const own = await newInspectionCaPem("Edge C Inspection CA");
      await writeInspectionCaFiles(`${root}/c/inspection`, new SecretBox(fleetKey), own);
      const before = await readDirFiles(`${root}/c/inspection`);
      const ownSha = certSha256(own.certPem);
      await assert.rejects(
        () => start(`${root}/c`, url, { "edge-name": "edge-c" }),
        new RegExp(
          `"${root}/c/inspection/inspection-ca.crt" is another CA \\(sha256 ${ownSha}\\) than the fleet's \\(sha256 ${rootA.sha256}, stored by edge "edge-a"\\); move "${root}/c/inspection" away`,
        ),
      );
      // Through the CLI: exit code 2 and the same sentence.
      const cli = await keyCreate(`${root}/c`, ["--database", url]);
      const stderr = new TextDecoder().decode(cli.stderr);
      assert.equal(cli.code, 2, stderr);
      assert.match(
        stderr,
        new RegExp(
          `^Error: Cannot use the fleet's SSL inspection CA in database ".*": ".*" is another CA \\(sha256 ${ownSha}\\) than the fleet's`,
          "m",
        ),
      );
      assert.deepEqual(await readDirFiles(`${root}/c/inspection`), before);
      assert.equal(JSON.stringify(peek.fleetSecrets.inspectionCa()), stored);
      // Moved away, C takes the fleet's.
      await Deno.rename(`${root}/c/inspection`, `${root}/c/inspection.old`);
      const c = await start(`${root}/c`, url, { "edge-name": "edge-c" });
      assert.equal(c.ctx.web.ca!.sha256, rootA.sha256);
      await c.close();

      // Upgrade: a fleet from before migration 18 (no CA stored) whose edge
      // has its own CA, which its devices trust: that CA becomes the fleet's.
      peek.db.run("DELETE FROM fleet_inspection_ca");
      await Deno.remove(`${root}/c/inspection`, { recursive: true });
      await Deno.rename(`${root}/c/inspection.old`, `${root}/c/inspection`);
      const up = await start(`${root}/c`, url, { "edge-name": "edge-c" });
      assert.equal(up.ctx.web.ca!.sha256, ownSha);
      await up.close();
      const upgraded = peek.fleetSecrets.inspectionCa()!;
      assert.equal(upgraded.certSha256, ownSha);
      assert.equal(upgraded.createdBy, "edge-c");
      assert.deepEqual(await readDirFiles(`${root}/c/inspection`), before);
      // …and A, whose copy is the old root, is now refused until its copy is moved.
      await assert.rejects(
        () => start(`${root}/a`, url, { "edge-name": "edge-a" }),
        new RegExp(`than the fleet's \\(sha256 ${ownSha}, stored by edge "edge-c"\\)`),
      );
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

Deno.test("inspection CA on SQLite: per edge, kept across restarts, nothing in the table", async () => {
  const root = await Deno.makeTempDir({ prefix: "pcl-ica-" });
  setLogSinks([new RingSink()]);
  try {
    const first = await start(`${root}/a`, null, {});
    const sha = first.ctx.web.ca!.sha256;
    assert.equal(first.store.fleetSecrets.inspectionCa(), undefined);
    await first.close();
    const again = await start(`${root}/a`, null, {});
    assert.equal(again.ctx.web.ca!.sha256, sha);
    assert.equal(again.store.fleetSecrets.inspectionCa(), undefined);
    await again.close();
    const other = await start(`${root}/b`, null, {});
    assert.notEqual(other.ctx.web.ca!.sha256, sha, "another edge's own CA");
    await other.close();
  } finally {
    setLogSinks([stderrSink]);
    await Deno.remove(root, { recursive: true });
  }
});

storeTest("fleet inspection CA: stored once, read back", (open) => {
  const s = open();
  assert.equal(s.fleetSecrets.inspectionCa(), undefined);
  const rec = {
    certPem: "-----BEGIN CERTIFICATE-----",
    certSha256: "ab".repeat(32),
    keySealed: "sb1:y",
    createdAt: 7,
    createdBy: "edge-a",
  };
  assert.equal(s.fleetSecrets.insertInspectionCa(rec), true);
  assert.equal(s.fleetSecrets.insertInspectionCa({ ...rec, createdBy: "edge-b" }), false);
  assert.deepEqual(s.fleetSecrets.inspectionCa(), rec);
});
