/**
 * Two real edges (their own processes, the HTTPS enrolment API the
 * connector uses) sharing one PostgreSQL: 200 devices enrolling at once,
 * half at each edge, all get distinct addresses; a single-use key tried at
 * both edges at the same moment enrols exactly one device, and every other
 * attempt gets the machine-readable refusal. Read back from the database.
 */
import assert from "node:assert/strict";
import { EdgeClient } from "../../src/http/edge_client.ts";
import { EdgeApiError } from "../../src/connector/edge_api.ts";
import { setLogSinks } from "../../src/log.ts";
import { openStore } from "../../src/store/mod.ts";
import { pgBinDir } from "../../src/store/pg/cluster.ts";
import { type EdgeProcess, withTwoEdgeFleet } from "./edge_process.ts";

const key32 = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

/** One device enrols as the connector does: its own client and TLS connection. */
async function enrol(edge: EdgeProcess, key: string, i: number) {
  const c = new EdgeClient({
    apiUrl: `https://127.0.0.1:${edge.info.api}`,
    caPem: edge.info.caPem,
    credential: null,
    fingerprintHash: null,
    timeoutMs: 120_000,
  });
  try {
    return await c.enroll({
      key,
      hostname: `dev-${edge.name}-${i}`,
      os: "linux",
      osVersion: "Debian 13",
      connectorVersion: "0.1.0",
      fingerprint: { machineId: crypto.randomUUID().replaceAll("-", ""), macs: [] },
      wgPublicKey: key32(),
      signingPublicKey: key32(),
    });
  } finally {
    c.close();
  }
}

Deno.test({
  name:
    "[postgres] fleet: 200 enrolments at once over two edges get distinct addresses; a single-use key tried at both enrols once",
  ignore: pgBinDir() === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    setLogSinks([]);
    await withTwoEdgeFleet("pcl-2edge-", async ({ url, a, b }) => {
      const edges = [a, b];
      const made = await fetch(`http://127.0.0.1:${a.info.console}/api/v1/admin/enrollment-keys`, {
        method: "POST",
        headers: { authorization: `Bearer ${a.info.token}`, "content-type": "application/json" },
        body: JSON.stringify({ reusable: false, expires: "1h" }),
      });
      assert.equal(made.status, 201, await made.clone().text());
      const single = (await made.json()).key as string;

      // 100 devices at each edge with the reusable keys, and 5 tries of the
      // single-use key at each, all started together.
      const many = edges.flatMap((e) =>
        Array.from({ length: 100 }, (_, i) => enrol(e, e.info.key, i))
      );
      const once = edges.flatMap((e) =>
        Array.from({ length: 5 }, (_, i) => enrol(e, single, 1000 + i))
      );
      const [got, tries] = await Promise.all([
        Promise.allSettled(many),
        Promise.allSettled(once),
      ]);
      const failed = got.filter((r) => r.status === "rejected");
      assert.equal(failed.length, 0, `enrolments failed: ${String(failed[0]?.reason)}`);
      const addrs = got.map((r) =>
        (r as PromiseFulfilledResult<{ address: string }>).value.address
      );
      const won = tries.filter((r) => r.status === "fulfilled") as PromiseFulfilledResult<
        { address: string }
      >[];
      assert.equal(won.length, 1, "the single-use key enrols exactly one device");
      for (const r of tries) {
        if (r.status === "fulfilled") continue;
        assert.ok(r.reason instanceof EdgeApiError, String(r.reason));
        assert.equal(r.reason.code, "enrollment_key_used", r.reason.message);
      }
      const all = [...addrs, won[0].value.address];
      assert.equal(new Set(all).size, 201, "no address handed out twice");

      // What the database holds, read by a third client.
      const s = openStore(url);
      try {
        assert.equal(s.leases.count(), 201);
        const devices = s.devices.list();
        assert.equal(devices.length, 201);
        const leases = s.leases.all();
        assert.ok(devices.every((d) => leases.has(d.id)), "every device holds a lease");
        assert.equal(new Set(leases.values()).size, 201);
        const used = s.enrollmentKeys.list().filter((k) => !k.reusable);
        assert.equal(used.length, 1);
        assert.equal(used[0].useCount, 1);
      } finally {
        s.close();
      }
    });
  },
});
