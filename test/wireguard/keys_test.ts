import assert from "node:assert/strict";
import {
  constantTimeEqual,
  decodeKey,
  encodeKey,
  generatePresharedKey,
  generatePrivateKey,
  parseKey,
  publicKeyOf,
} from "../../src/wireguard/keys.ts";

Deno.test("keys: generated private keys are clamped and round-trip through base64", () => {
  for (let i = 0; i < 20; i++) {
    const k = generatePrivateKey();
    assert.equal(k[0] & 7, 0);
    assert.equal(k[31] & 0x80, 0);
    assert.equal(k[31] & 0x40, 0x40);
    const text = encodeKey(k);
    assert.equal(text.length, 44);
    assert.deepEqual(decodeKey(text), k);
  }
  assert.equal(generatePresharedKey().length, 32);
});

Deno.test("keys: public key matches wg pubkey", async () => {
  const priv = "YNxh3Jz3RzVzwnvwXbSzTg4l7ZuoVoPgS09Qg6PdJ1M=";
  let want = "";
  try {
    const p = new Deno.Command("wg", { args: ["pubkey"], stdin: "piped", stdout: "piped" }).spawn();
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(priv + "\n"));
    await w.close();
    want = new TextDecoder().decode((await p.output()).stdout).trim();
  } catch {
    // wg not installed: compare against the value it printed when this test was written.
  }
  assert.equal(
    encodeKey(publicKeyOf(parseKey(priv))),
    want || "Ng07N2BAHthI0HcoQBquVzNyFpoOyHS0jY2jJNxq/ng=",
  );
});

Deno.test("keys: decoding rejects anything but a canonical 32-byte key", () => {
  const bad = [
    "",
    "abc",
    "YNxh3Jz3RzVzwnvwXbSzTg4l7ZuoVoPgS09Qg6PdJ1M", // no padding
    "YNxh3Jz3RzVzwnvwXbSzTg4l7ZuoVoPgS09Qg6PdJ1N=", // non-zero spare bits
    "YNxh3Jz3RzVzwnvwXbSzTg4l7ZuoVoPgS09Qg6PdJ1M==",
    "YNxh3Jz3RzVzwnvwXbSzTg4l7ZuoVoPgS09Qg6Pd_1M=",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", // 33 bytes
  ];
  for (const b of bad) assert.equal(decodeKey(b), null, b);
  assert.throws(() => parseKey("nope", "PublicKey"), /PublicKey is not a valid base64 32-byte key/);
  assert.ok(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
  assert.ok(!constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])));
  assert.ok(!constantTimeEqual(new Uint8Array([1]), new Uint8Array([1, 0])));
});
