/** Release keys, signed manifests and bundles; the CLI's keygen, sign and verify on real files. */
import assert from "node:assert/strict";
import {
  bundleBytes,
  generateReleaseKey,
  parseBundle,
  signRelease,
  verifyManifest,
} from "../../src/fleet/release.ts";
import { releaseCommand } from "../../src/fleet/release_cli.ts";
import { InputError } from "../../src/errors.ts";

const program = new TextEncoder().encode("#!/bin/sh\necho new version\n");

Deno.test("release: a signed bundle verifies with its key and no other", async () => {
  const k = await generateReleaseKey();
  const other = await generateReleaseKey();
  const signed = await signRelease(k, "1.2.0", program);
  const b = parseBundle(bundleBytes(signed, program));
  assert.equal(b.manifest.version, "1.2.0");
  assert.equal(b.manifest.keyId, k.keyId);
  assert.deepEqual(b.program, program);
  assert.equal(await verifyManifest(b.signed, k.publicKey), true);
  assert.equal(await verifyManifest(b.signed, other.publicKey), false);
  // Any change to the signed text breaks the signature.
  const tampered = { ...signed, manifest: signed.manifest.replace("1.2.0", "9.9.9") };
  assert.equal(await verifyManifest(tampered, k.publicKey), false);
  const flipped = signed.signature[0] === "A" ? "B" : "A";
  assert.equal(
    await verifyManifest(
      { ...signed, signature: flipped + signed.signature.slice(1) },
      k.publicKey,
    ),
    false,
  );
});

Deno.test("release: a bundle whose program is not the manifest's is refused (table)", async () => {
  const k = await generateReleaseKey();
  const signed = await signRelease(k, "1.2.0", program);
  const good = bundleBytes(signed, program);
  const table: [what: string, bytes: Uint8Array, code: string][] = [
    ["no magic", good.subarray(3), "invalid_release"],
    [
      "program changed",
      bundleBytes(signed, program.map((x, i) => (i === 3 ? x ^ 1 : x))),
      "release_digest_mismatch",
    ],
    ["program cut", good.subarray(0, good.length - 1), "release_digest_mismatch"],
    ["not JSON", new TextEncoder().encode("PCRELEASE1\n{nope\n"), "invalid_release"],
  ];
  for (const [what, bytes, code] of table) {
    assert.throws(
      () => parseBundle(bytes),
      (e) => e instanceof InputError && e.code === code,
      what,
    );
  }
  await assert.rejects(() => signRelease(k, "next", program), /Invalid version "next"/);
});

Deno.test("release CLI: keygen (0600), sign, verify good and bad", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out: string[] = [];
    const say = (l: string) => out.push(l);
    assert.equal(await releaseCommand(["keygen", "--out", `${dir}/rel.key`], say), 0);
    assert.equal((await Deno.stat(`${dir}/rel.key`)).mode! & 0o777, 0o600);
    assert.ok(!(await Deno.readTextFile(`${dir}/rel.key.pub`)).includes("privateKey"));
    await assert.rejects(
      () => releaseCommand(["keygen", "--out", `${dir}/rel.key`], say),
      /exists already/,
    );
    await Deno.writeFile(`${dir}/prog`, program);
    const sign = ["sign", "--key", `${dir}/rel.key`, "--version", "0.2.0", "--program"];
    assert.equal(await releaseCommand([...sign, `${dir}/prog`, "--out", `${dir}/b`], say), 0);
    assert.equal(
      await releaseCommand(["verify", "--public-key", `${dir}/rel.key.pub`, `${dir}/b`], say),
      0,
    );
    await releaseCommand(["keygen", "--out", `${dir}/other.key`], say);
    assert.equal(
      await releaseCommand(["verify", "--public-key", `${dir}/other.key.pub`, `${dir}/b`], say),
      1,
    );
    assert.match(out.at(-1)!, /Bad signature/);
    await assert.rejects(
      () => releaseCommand([...sign, `${dir}/missing`, "--out", `${dir}/c`], say),
      /Cannot read program ".*missing"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
