import assert from "node:assert/strict";
import {
  AeadContext,
  aeadDecrypt,
  aeadEncrypt,
  hchacha20,
  xaeadDecrypt,
  xaeadEncrypt,
} from "../../src/wireguard/aead.ts";
import { hex, toHex } from "./hex.ts";

const sunscreen = new TextEncoder().encode(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);
const key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
const aad = hex("50515253c0c1c2c3c4c5c6c7");

Deno.test("aead: RFC 8439 2.8.2 vector, in place, both directions", () => {
  const nonce = hex("070000004041424344454647");
  const want =
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116" +
    "1ae10b594f09e26a7e902ecbd0600691";
  const buf = new Uint8Array(sunscreen.length + 16);
  buf.set(sunscreen);
  const e = new AeadContext(key, true), d = new AeadContext(key, false);
  assert.ok(e.sealWithNonce(buf, sunscreen.length, nonce, aad));
  assert.equal(toHex(buf), want);
  assert.ok(d.openWithNonce(buf, buf.length, nonce, aad));
  assert.deepEqual(buf.subarray(0, sunscreen.length), sunscreen);
  e.free();
  d.free();
  assert.ok(e.freed);
  e.free(); // idempotent
});

Deno.test("aead: counter nonces, reuse of one context, tamper detection", () => {
  const e = new AeadContext(key, true), d = new AeadContext(key, false);
  for (const counter of [0, 1, 2 ** 32 + 5, 2 ** 53 - 1]) {
    const nonce = new Uint8Array(12);
    new DataView(nonce.buffer).setBigUint64(4, BigInt(counter), true);
    const a = new Uint8Array(sunscreen.length + 16), b = new Uint8Array(sunscreen.length + 16);
    a.set(sunscreen);
    b.set(sunscreen);
    assert.ok(e.seal(a, sunscreen.length, counter));
    assert.ok(e.sealWithNonce(b, sunscreen.length, nonce, null));
    assert.deepEqual(a, b, `counter ${counter}`);
    assert.ok(!d.open(a, a.length, counter + 1), "wrong counter must fail");
    a.set(b);
    a[3] ^= 1;
    assert.ok(!d.open(a, a.length, counter), "flipped bit must fail");
    a.set(b);
    assert.ok(d.open(a, a.length, counter));
    assert.deepEqual(a.subarray(0, sunscreen.length), sunscreen);
  }
  // Empty payload (keepalive): tag only.
  const k = new Uint8Array(16);
  assert.ok(e.seal(k, 0, 9));
  assert.ok(d.open(k, 16, 9));
  assert.ok(!d.open(k, 15, 9), "shorter than a tag must fail");
  e.free();
  d.free();
});

Deno.test("aead: one-shot helpers round-trip and reject forgeries", () => {
  const ct = aeadEncrypt(key, 0, sunscreen, aad);
  assert.deepEqual(aeadDecrypt(key, 0, ct, aad), sunscreen);
  assert.equal(aeadDecrypt(key, 0, ct, new Uint8Array(1)), null);
  assert.equal(aeadDecrypt(key, 1, ct, aad), null);
});

Deno.test("aead: HChaCha20 and XChaCha20-Poly1305 draft vectors", () => {
  assert.equal(
    toHex(
      hchacha20(
        hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
        hex("000000090000004a0000000031415927"),
      ),
    ),
    "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc",
  );
  const iv = hex("404142434445464748494a4b4c4d4e4f5051525354555657");
  const ct = xaeadEncrypt(key, iv, sunscreen, aad);
  assert.equal(
    toHex(ct),
    "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e" +
      "c0875924c1c7987947deafd8780acf49",
  );
  assert.deepEqual(xaeadDecrypt(key, iv, ct, aad), sunscreen);
  ct[0] ^= 1;
  assert.equal(xaeadDecrypt(key, iv, ct, aad), null);
});
