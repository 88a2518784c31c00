/**
 * SIGKILL in the middle of a stream of enrolments: after restart every
 * enrolment that was acknowledged (200) is present and complete, and nothing
 * is half-written (devices, leases, key uses and audit entries all agree).
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { loadConfig } from "../../src/config.ts";
import { startEdgeControlPlane } from "../../src/edge/control_plane.ts";
import { createEdgeApp } from "../../src/http/app_edge.ts";
import { fingerprintHash, sha256Hex } from "../../src/identity/secrets.ts";
import { setLogSinks, stderrSink } from "../../src/log.ts";
import { openStore } from "../../src/store/mod.ts";

const key32 = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

/** Starts serve_edge.ts on `dir`; returns the child and its first stdout line. */
export async function spawnEdge(dir: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./serve_edge.ts", import.meta.url).pathname, dir],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("edge exited before it was ready");
    buf += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return { child, info: JSON.parse(buf.split("\n")[0]) as { port: number; key: string } };
}

Deno.test("crash: SIGKILL during concurrent enrolments loses no acknowledged enrolment", async () => {
  const dir = await Deno.makeTempDir();
  const { child, info } = await spawnEdge(dir);
  type Acked = { deviceId: string; credential: string; address: string; wg: string; fp: string };
  const acked: Acked[] = [];
  let stop = false;
  let failures = 0;
  const worker = async () => {
    while (!stop) {
      const fingerprint = { machineId: crypto.randomUUID(), macs: [] as string[] };
      const wg = key32();
      try {
        const res = await fetch(`http://127.0.0.1:${info.port}/api/v1/enroll`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            key: info.key,
            hostname: "crash-host",
            os: "linux",
            osVersion: "1",
            connectorVersion: "1",
            fingerprint,
            wgPublicKey: wg,
            signingPublicKey: key32(),
          }),
        });
        if (res.status === 200) {
          const j = await res.json();
          acked.push({
            deviceId: j.deviceId,
            credential: j.credential,
            address: j.address,
            wg,
            fp: fingerprintHash(fingerprint),
          });
        } else await res.body?.cancel();
      } catch {
        failures++;
        if (stop) return;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };
  const workers = Array.from({ length: 16 }, worker);
  const t0 = performance.now();
  while (acked.length < 300 && performance.now() - t0 < 10_000) {
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill("SIGKILL");
  const status = await child.status;
  stop = true;
  await Promise.all(workers);
  assert.equal(status.signal, "SIGKILL");
  assert.ok(acked.length >= 50, `only ${acked.length} enrolments before the kill`);

  const store = openStore(`${dir}/edge.db`);
  try {
    assert.equal(
      store.db.get<{ integrity_check: string }>("PRAGMA integrity_check")!.integrity_check,
      "ok",
    );
    for (const a of acked) {
      const d = store.devices.byId(a.deviceId);
      assert.ok(d, `acknowledged device ${a.deviceId} is present`);
      assert.equal(d.credentialHash, sha256Hex(a.credential));
      assert.equal(d.wgPublicKey, a.wg);
      assert.equal(d.fingerprint, a.fp);
      const host = store.leases.hostOf(a.deviceId);
      assert.ok(host !== null);
      assert.equal(a.address, `100.64.${host >> 8}.${host & 255}`);
    }
    const devices = store.devices.count();
    const key = store.enrollmentKeys.list()[0];
    assert.ok(devices >= acked.length);
    assert.equal(store.leases.count(), devices, "every device has exactly one lease");
    assert.equal(key.useCount, devices, "every key use produced a device");
    assert.equal(store.audit.count("device.enroll"), devices, "every device has its audit entry");
    const orphans = store.db.get<{ n: number }>(
      "SELECT COUNT(*) AS n FROM devices d LEFT JOIN address_leases l ON l.device_id = d.id WHERE l.host IS NULL",
    )!.n;
    assert.equal(orphans, 0);
  } finally {
    store.close();
  }

  // The restarted edge serves the acknowledged devices.
  setLogSinks([]);
  try {
    const config = await loadConfig("edge", {
      flags: { "data-dir": dir, "public-host": "127.0.0.1" },
    });
    const cp = await startEdgeControlPlane(config, {
      clock: new ManualClock(),
      localPrefixes: () => [],
    });
    const a = acked[acked.length - 1];
    const res = await createEdgeApp({ ctx: cp.ctx }).request("/api/v1/policy", {
      headers: { authorization: `Bearer ${a.credential}`, "x-device-fingerprint": a.fp },
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
    await cp.close();
  } finally {
    setLogSinks([stderrSink]);
    await Deno.remove(dir, { recursive: true });
  }
  console.log(
    `acknowledged ${acked.length} enrolments before SIGKILL (${failures} requests cut off)`,
  );
});
