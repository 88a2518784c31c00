/** Start-up of the edge control plane on a real data directory. */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { loadConfig } from "../../src/config.ts";
import { MemoryTunnelPort } from "../../src/edge/dataplane_port.ts";
import { startEdgeControlPlane } from "../../src/edge/control_plane.ts";
import { createEnrollmentKey } from "../../src/edge/enrollment_keys.ts";
import { createEdgeApp } from "../../src/http/app_edge.ts";
import { RingSink, setLogSinks, stderrSink } from "../../src/log.ts";
import { openStore } from "../../src/store/mod.ts";
import { pgBinDir, startPgCluster } from "../../src/store/pg/cluster.ts";

const SCRYPT = { N: 1024, r: 8, p: 1 };

Deno.test("control plane: first start makes CA, keys, admin file, network; restart keeps them and reloads peers", () =>
  firstStartAndRestart({}));

Deno.test({
  name:
    "control plane: --database postgres:// keeps the edge's state in PostgreSQL, across a restart",
  ignore: pgBinDir() === null,
  async fn() {
    const cluster = await startPgCluster();
    try {
      await firstStartAndRestart({ database: cluster.url() });
      const s = openStore(cluster.url());
      assert.equal(s.db.dialect, "postgres");
      assert.deepEqual(
        s.devices.list().map((d) => d.hostname),
        ["h1"],
        "the enrolment is in PostgreSQL",
      );
      s.close();
    } finally {
      await cluster.stop();
    }
  },
});

async function firstStartAndRestart(extra: Record<string, string>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const ring = new RingSink();
  setLogSinks([ring]);
  try {
    const config = await loadConfig("edge", {
      flags: { "data-dir": dir, "public-host": "edge.test", ...extra },
    });
    const clock = new ManualClock();
    const cp = await startEdgeControlPlane(config, {
      clock,
      localPrefixes: () => ["100.64.5.1/24"],
      scrypt: SCRYPT,
    });
    assert.equal(cp.ctx.network, "100.65.0.0/16");
    assert.equal(cp.ctx.edgeAddress, "100.65.0.1");
    assert.equal(cp.ctx.apiUrl, "https://edge.test:8443");
    assert.ok(cp.initialAdminPath);
    assert.equal((await Deno.stat(cp.initialAdminPath!)).mode! & 0o777, 0o600);
    const text = await Deno.readTextFile(cp.initialAdminPath!);
    const password = /password: (\S+)/.exec(text)![1];
    assert.ok(
      ring.records().some((r) =>
        r.msg === `initial admin credentials written to ${cp.initialAdminPath}`
      ),
    );
    assert.ok(!JSON.stringify(ring.records()).includes(password), "password never logged");
    assert.equal((await Deno.stat(`${dir}/wg.key`)).mode! & 0o777, 0o600);

    const { key } = createEnrollmentKey(cp.store, clock, {
      reusable: false,
      expiresInMs: null,
      group: null,
      createdBy: "t",
      apiUrl: cp.ctx.apiUrl,
      caSha256: cp.ca.caSha256,
    });
    const wg = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
    const app = createEdgeApp({ ctx: cp.ctx, scrypt: SCRYPT });
    const res = await app.request("/api/v1/enroll", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        key,
        hostname: "h1",
        os: "linux",
        osVersion: "1",
        connectorVersion: "1",
        fingerprint: { machineId: "m1", macs: [] },
        wgPublicKey: wg,
        signingPublicKey: btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))),
      }),
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.address, "100.65.0.2");
    assert.equal(body.edgePublicKey, cp.wgKey.publicKey);
    assert.deepEqual(body.endpoints.map((e: { transport: string }) => e.transport), ["udp", "tls"]);
    await cp.close();

    const tunnel = new MemoryTunnelPort();
    const cp2 = await startEdgeControlPlane(config, {
      clock,
      tunnel,
      localPrefixes: () => [],
      scrypt: SCRYPT,
    });
    assert.equal(cp2.ctx.network, "100.65.0.0/16", "network chosen once and persisted");
    assert.equal(cp2.initialAdminPath, null);
    assert.equal(cp2.ca.caSha256, cp.ca.caSha256);
    assert.equal(cp2.wgKey.publicKey, cp.wgKey.publicKey);
    assert.equal(tunnel.peers.get(wg)?.address, "100.65.0.2", "peers reloaded at start");
    await cp2.close();
  } finally {
    setLogSinks([stderrSink]);
    await Deno.remove(dir, { recursive: true });
  }
}
