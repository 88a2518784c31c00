/**
 * Every edge of a fleet serves every release: two real edges (their own
 * processes) on one real PostgreSQL; a signed bundle of a 3 MiB program (four
 * chunks) is uploaded at edge A and a rule made there; a device enrolled at
 * edge B is offered the release by B, downloads it from B over the HTTPS
 * API the connector uses, and the bytes verify against the release key and
 * the manifest. Neither edge keeps the program in its data directory: the
 * bytes are the chunks in the shared database.
 */
import assert from "node:assert/strict";
import { fingerprintHash } from "../../src/connector/identity.ts";
import {
  bundleBytes,
  checkProgram,
  generateReleaseKey,
  manifestOf,
  parseSignedManifest,
  signRelease,
  verifyManifest,
} from "../../src/fleet/release.ts";
import { sha256Hex } from "../../src/identity/secrets.ts";
import { EdgeClient } from "../../src/http/edge_client.ts";
import { setLogSinks } from "../../src/log.ts";
import { openStore } from "../../src/store/mod.ts";
import { pgBinDir } from "../../src/store/pg/cluster.ts";
import { type EdgeProcess, withTwoEdgeFleet } from "./edge_process.ts";

const key32 = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

Deno.test({
  name: "[postgres] fleet: a release uploaded at edge A is offered and served by edge B",
  ignore: pgBinDir() === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    setLogSinks([]);
    await withTwoEdgeFleet("pcl-relfleet-", async ({ url, root, a, b }) => {
      const admin = (e: EdgeProcess, method: string, path: string, body?: BodyInit, ct?: string) =>
        fetch(`http://127.0.0.1:${e.info.console}/api/v1/admin/updates${path}`, {
          method,
          headers: {
            authorization: `Bearer ${e.info.token}`,
            ...(ct ? { "content-type": ct } : {}),
          },
          body,
        });

      // The operator signs a 3 MiB program; the admin uploads it at A and makes a rule there.
      const key = await generateReleaseKey();
      const program = new Uint8Array(3 * 1024 * 1024 + 12345);
      for (let i = 0; i < program.length; i += 65536) {
        crypto.getRandomValues(program.subarray(i, i + 65536));
      }
      const signed = await signRelease(key, "9.1.0", program);
      const up = await admin(
        a,
        "POST",
        "/releases",
        bundleBytes(signed, program),
        "application/octet-stream",
      );
      assert.equal(up.status, 201, await up.clone().text());
      const rule = await admin(
        a,
        "POST",
        "/rules",
        JSON.stringify({ name: "everyone", percent: 100, targetVersion: "9.1.0" }),
        "application/json",
      );
      assert.equal(rule.status, 201, await rule.clone().text());
      // B lists it as available: it can serve it.
      const listed = await (await admin(b, "GET", "/releases")).json();
      assert.equal(listed.releases[0].version, "9.1.0");
      assert.equal(listed.releases[0].available, true, JSON.stringify(listed));

      // A device enrolled at B, as the connector does it.
      const fp = { machineId: crypto.randomUUID().replaceAll("-", ""), macs: [] };
      const c = new EdgeClient({
        apiUrl: `https://127.0.0.1:${b.info.api}`,
        caPem: b.info.caPem,
        credential: null,
        fingerprintHash: null,
        timeoutMs: 60_000,
      });
      try {
        const res = await c.enroll({
          key: b.info.key,
          hostname: "dev-b",
          os: "linux",
          osVersion: "Debian 13",
          connectorVersion: "9.0.0",
          fingerprint: fp,
          wgPublicKey: key32(),
          signingPublicKey: key32(),
        });
        c.setCredentials(res.credential, await fingerprintHash(fp));
        const offer = await c.checkUpdate();
        assert.ok(offer, "edge B offers the release uploaded at A");
        assert.equal(offer.version, "9.1.0");
        assert.equal(offer.size, program.length);
        const t0 = performance.now();
        const bytes = await c.downloadRelease(offer.version, offer.size);
        const ms = performance.now() - t0;
        // What the connector checks: the signature by the release key, the program's digest.
        const sm = parseSignedManifest(offer.signedManifest);
        assert.equal(await verifyManifest(sm, key.publicKey), true);
        checkProgram(manifestOf(sm), bytes);
        assert.equal(sha256Hex(bytes), sha256Hex(program));
        console.log(`release from edge B: ${program.length} bytes in ${ms.toFixed(0)} ms`);
      } finally {
        c.close();
      }

      // The bytes are the chunks in the shared database, not files on either edge.
      for (const dir of [`${root}/a`, `${root}/b`]) {
        await assert.rejects(() => Deno.stat(`${dir}/releases`), Deno.errors.NotFound, dir);
      }
      const s = openStore(url);
      try {
        assert.equal(s.releases.chunkCount(sha256Hex(program)), 4);
      } finally {
        s.close();
      }
    });
  },
});
