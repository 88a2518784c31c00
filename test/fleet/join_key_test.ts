/** The fleet join key: its text form, wrapping (HKDF + AES-GCM) and key ids. */
import assert from "node:assert/strict";
import {
  createJoinKeyFile,
  formatJoinKey,
  keyId,
  newJoinKey,
  parseJoinKey,
  readJoinKeyFile,
  unwrap,
  wrap,
} from "../../src/fleet/join_key.ts";

Deno.test("join key: wrapped values open only with the same key, purpose and bytes", async () => {
  const k = newJoinKey();
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const w = await wrap(k, secret, "sealing_key");
  assert.match(w, /^fw1:[A-Za-z0-9_-]+$/);
  assert.notEqual(w, await wrap(k, secret, "sealing_key"), "a fresh salt and IV every time");
  assert.deepEqual(await unwrap(k, w, "sealing_key"), secret);
  assert.equal(await unwrap(newJoinKey(), w, "sealing_key"), null, "another key");
  assert.equal(await unwrap(k, w, "ca_key"), null, "another purpose");
  const flipped = w.slice(0, -2) + (w.at(-2) === "A" ? "B" : "A") + w.at(-1);
  assert.equal(await unwrap(k, flipped, "sealing_key"), null, "altered");
  for (const junk of ["", "fw1:", "fw1:!!", "sb1:abcd", `fw1:${"A".repeat(40)}`]) {
    assert.equal(await unwrap(k, junk, "sealing_key"), null, junk);
  }
});

Deno.test("join key: ids name a key per purpose without being the key", async () => {
  const k = newJoinKey();
  assert.equal(await keyId(k, "join_key"), await keyId(k, "join_key"));
  assert.notEqual(await keyId(k, "join_key"), await keyId(k, "sealing_key"));
  assert.notEqual(await keyId(k, "join_key"), await keyId(newJoinKey(), "join_key"));
  assert.match(await keyId(k, "join_key"), /^[0-9a-f]{32}$/);
});

Deno.test("join key: the file round-trips, is 0600, never overwritten; bad text is named", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/fleet.key`;
    assert.equal(await readJoinKeyFile(path), null);
    const k = await createJoinKeyFile(path);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.deepEqual(await readJoinKeyFile(path), k);
    await assert.rejects(() => createJoinKeyFile(path), /Cannot write fleet join key/);
    assert.deepEqual(parseJoinKey(`  ${formatJoinKey(k)}\n`, "x"), k);
    for (
      const bad of ["", "pcfk1:", "pcfk1:abc", formatJoinKey(k).slice(1), "pcfk1:" + "+".repeat(43)]
    ) {
      assert.throws(
        () => parseJoinKey(bad, "/x/fleet.key"),
        /fleet join key "\/x\/fleet.key": expected "pcfk1:"/,
      );
    }
    await assert.rejects(() => createJoinKeyFile(`${dir}/missing/fleet.key`), /missing\/fleet.key/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
