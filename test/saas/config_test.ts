/**
 * The edge settings of the SaaS side: saasAuthorityUrl and saasGraphUrl
 * must be https URLs, saasCaFile must be a readable PEM file — and the CA
 * file is what lets the edge trust a TLS-inspecting proxy (here: the test
 * issuer): without it, adding a tenant fails as unreachable (502), with it
 * the same request succeeds.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../src/config.ts";
import { startEdgeControlPlane } from "../../src/edge/control_plane.ts";
import { createEdgeApp } from "../../src/http/app_edge.ts";
import { setLogSinks } from "../../src/log.ts";
import { register, saasWorld, startEdge, TENANT } from "./harness.ts";

setLogSinks([]);

Deno.test("saas settings: https URLs only, a readable CA file", async () => {
  await assert.rejects(
    loadConfig("edge", { flags: { "saas-graph-url": "http://graph.example/v1.0" } }),
    /edge\.saasGraphUrl: expected an https:\/\/ URL/,
  );
  await assert.rejects(
    loadConfig("edge", { flags: { "saas-authority-url": "login.microsoftonline.com" } }),
    /edge\.saasAuthorityUrl: expected an https:\/\/ URL/,
  );
  const dir = await Deno.makeTempDir();
  try {
    const missing = await loadConfig("edge", {
      flags: { "data-dir": dir, "saas-ca-file": `${dir}/nope.pem` },
    });
    await assert.rejects(
      startEdgeControlPlane(missing, { localPrefixes: () => [] }),
      /Cannot read saasCaFile ".*nope\.pem"/,
    );
    await Deno.writeTextFile(`${dir}/junk.pem`, "hello");
    const junk = await loadConfig("edge", {
      flags: { "data-dir": dir, "saas-ca-file": `${dir}/junk.pem` },
    });
    await assert.rejects(
      startEdgeControlPlane(junk, { localPrefixes: () => [] }),
      /edge\.saasCaFile: ".*junk\.pem" holds no PEM certificate/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "saas settings: the CA file decides whether the issuer is trusted",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const world = await saasWorld();
    const clientId = "0c0c0c0c-aaaa-4bbb-8ccc-dddddddddddd";
    const secret = "ca~test.secret_0123456789abcdefghijklmnop";
    register(world, clientId, secret, { graph: ["Mail.ReadWrite"] });
    const body = { app: "exchange", name: "Ex", tenantId: TENANT, clientId, clientSecret: secret };
    // Without saasCaFile: the issuer's certificate is not trusted.
    const config = await loadConfig("edge", {
      flags: {
        "data-dir": `${world.dir}/plain`,
        "saas-authority-url": world.issuer.url,
        "saas-graph-url": world.graph.graphUrl,
      },
    });
    const cp = await startEdgeControlPlane(config, {
      localPrefixes: () => [],
      scrypt: { N: 1024, r: 8, p: 1 },
    });
    try {
      const admin = cp.store.users.list()[0];
      const { sha256Hex } = await import("../../src/identity/secrets.ts");
      cp.store.apiTokens.insert({
        id: "tok_ca",
        tokenHash: sha256Hex("pca_" + "c".repeat(40)),
        name: "ca",
        userId: admin.id,
        createdAt: Date.now(),
        lastUsedAt: null,
      });
      const app = createEdgeApp({ ctx: cp.ctx });
      const r = await app.request("/api/v1/admin/saas/tenants", {
        method: "POST",
        headers: {
          authorization: `Bearer pca_${"c".repeat(40)}`,
          "content-type": "application/json",
        },
        body: JSON.stringify(body),
      });
      const j = await r.json();
      assert.equal(r.status, 502, JSON.stringify(j));
      assert.equal(j.error.code, "issuer_unreachable");
      assert.equal(world.issuer.seen.length, 0, "no token request got through");
    } finally {
      await cp.close();
    }
    // With it: the same request is answered by the issuer.
    const edge = await startEdge(world, `${world.dir}/trusting`);
    try {
      const r = await edge.api("POST", "/api/v1/admin/saas/tenants", body);
      const j = await r.json();
      assert.equal(r.status, 422, JSON.stringify(j)); // saved; most Exchange permissions missing
      assert.equal(world.issuer.seen.length, 1);
    } finally {
      await edge.close();
      await world.close();
    }
  },
});
