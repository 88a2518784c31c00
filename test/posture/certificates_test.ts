/**
 * Certificate collector: real certificates made with openssl (a device CA
 * and a client certificate it issued), read with node:crypto, judged by the
 * evaluator: the store must hold the certificate AND its private key.
 */
import assert from "node:assert/strict";
import { collectCertificates, collectFacts } from "../../src/posture/mod.ts";
import { pemBlocks } from "../../src/posture/certificates.ts";
import { evaluateCheck } from "../../src/policy/posture.ts";
import { PostureCheck } from "../../src/policy/types.ts";
import { sh } from "../e2e/netns.ts";

async function makeCerts(dir: string): Promise<void> {
  const o = (args: string[]) => sh(["openssl", ...args]);
  const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await o([
    "req",
    "-x509",
    ...ecKey,
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    `${dir}/ca.crt`,
    "-days",
    "30",
    "-subj",
    "/O=Example Corp/CN=Corp Device CA",
  ]);
  await o([
    "req",
    ...ecKey,
    "-keyout",
    `${dir}/client.key`,
    "-out",
    `${dir}/client.csr`,
    "-subj",
    "/O=Example Corp/CN=laptop-17",
  ]);
  await o([
    "x509",
    "-req",
    "-in",
    `${dir}/client.csr`,
    "-CA",
    `${dir}/ca.crt`,
    "-CAkey",
    `${dir}/ca.key`,
    "-CAcreateserial",
    "-out",
    `${dir}/client.crt`,
    "-days",
    "7",
  ]);
}

Deno.test("certificates: issuer matches and the private key is in the store, or the check fails", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await makeCerts(dir);
    const withKey = `${dir}/with-key`, certOnly = `${dir}/cert-only`, empty = `${dir}/empty`;
    for (const d of [withKey, certOnly, empty]) await Deno.mkdir(d);
    await Deno.copyFile(`${dir}/client.crt`, `${withKey}/client.pem`);
    await Deno.copyFile(`${dir}/client.key`, `${withKey}/client.key`);
    await Deno.writeTextFile(
      `${withKey}/junk.pem`,
      "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
    );
    await Deno.copyFile(`${dir}/client.crt`, `${certOnly}/client.pem`);
    // Someone else's key beside the certificate is not its key.
    await Deno.copyFile(`${dir}/ca.key`, `${certOnly}/other.key`);

    const found = await collectCertificates(withKey);
    assert.equal(found.length, 1);
    assert.equal(found[0].subject, "O=Example Corp, CN=laptop-17");
    assert.equal(found[0].issuer, "O=Example Corp, CN=Corp Device CA");
    assert.equal(found[0].hasKey, true);
    assert.ok(found[0].notAfter! > Date.now());

    const table: [string, Record<string, unknown>, boolean, RegExp][] = [
      ["issuer and key", { issuer: "CN=Corp Device CA", store: withKey }, true, /with its key/],
      [
        "issuer and subject",
        { issuer: "CN=Corp Device CA", subject: "CN=laptop-17", store: withKey },
        true,
        /laptop-17/,
      ],
      [
        "wrong issuer",
        { issuer: "CN=Other CA", store: withKey },
        false,
        /no matching certificate among 1/,
      ],
      ["key missing", { issuer: "CN=Corp Device CA", store: certOnly }, false, /without its key/],
      ["empty store", { issuer: "CN=Corp Device CA", store: empty }, false, /among 0/],
      [
        "no such store",
        { issuer: "CN=Corp Device CA", store: `${dir}/nope` },
        false,
        /not collected/,
      ],
    ];
    for (const [name, c, passed, actual] of table) {
      const check = PostureCheck.parse({ type: "certificate", ...c });
      const facts = await collectFacts([check], {});
      const o = evaluateCheck(check, facts);
      assert.equal(o.passed, passed, `${name}: ${o.actual}`);
      assert.match(o.actual, actual, name);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("certificates: PEM blocks are found by string search, garbage included", () => {
  const text = "x-----BEGIN A-----\n1\n-----END A-----y-----BEGIN B-----\n2\n-----END B-----" +
    "-----BEGIN C-----no end" + "-----BEGIN ".repeat(10_000);
  assert.deepEqual(pemBlocks(text).map((b) => b.label), ["A", "B"]);
});
