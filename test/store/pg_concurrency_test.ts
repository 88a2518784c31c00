/**
 * Two edges sharing one PostgreSQL: separate processes enrolling at the same
 * time never hand out one address twice, and a single-use key is claimed
 * exactly once across both (the writer lock in pg/database.ts).
 */
import assert from "node:assert/strict";
import { openStore } from "../../src/store/mod.ts";
import { pgBinDir, startPgCluster } from "../../src/store/pg/cluster.ts";
import { singleUseKey } from "./backends.ts";

Deno.test({
  name: "[postgres] store: 2 edges × 100 concurrent enrolments: distinct addresses, one key claim",
  ignore: pgBinDir() === null,
  async fn() {
    const cluster = await startPgCluster();
    try {
      const url = cluster.url();
      const s = openStore(url);
      s.enrollmentKeys.insert(singleUseKey("single"));
      const tool = new URL("./tools/pg_enrol_worker.ts", import.meta.url).pathname;
      const runs = await Promise.all(["a", "b"].map(async (edge) => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", tool, url, edge, "100"],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const err = new TextDecoder().decode(out.stderr);
        assert.ok(out.success, `edge ${edge} failed: ${err}`);
        return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!) as {
          claimed: number;
          hosts: number[];
        };
      }));
      const hosts = runs.flatMap((r) => r.hosts);
      assert.equal(hosts.length, 200);
      assert.equal(new Set(hosts).size, 200, "no address handed out twice");
      assert.equal(runs[0].claimed + runs[1].claimed, 1, "single-use key claimed exactly once");
      assert.equal(s.leases.count(), 200);
      assert.equal(s.enrollmentKeys.byId("single")!.useCount, 1);
      s.close();
    } catch (err) {
      console.error(cluster.log().slice(-4000));
      throw err;
    } finally {
      await cluster.stop();
    }
  },
});
