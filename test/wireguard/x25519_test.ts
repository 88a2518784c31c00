import assert from "node:assert/strict";
import { x25519, x25519PublicKey } from "../../src/wireguard/x25519.ts";
import { hex, toHex } from "./hex.ts";

Deno.test("x25519: RFC 7748 6.1 Diffie-Hellman vector", () => {
  const a = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const b = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  const A = x25519PublicKey(a), B = x25519PublicKey(b);
  assert.equal(toHex(A), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  assert.equal(toHex(B), "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  const want = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
  assert.equal(toHex(x25519(a, B)!), want);
  assert.equal(toHex(x25519(b, A)!), want);
});

Deno.test("x25519: RFC 7748 5.2 scalar multiplication vector", () => {
  const k = hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
  const u = hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
  assert.equal(
    toHex(x25519(k, u)!),
    "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
  );
});

Deno.test("x25519: low-order public keys give null, bad lengths throw", () => {
  const k = hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
  assert.equal(x25519(k, new Uint8Array(32)), null);
  const one = new Uint8Array(32);
  one[0] = 1;
  assert.equal(x25519(k, one), null);
  assert.throws(() => x25519(k, new Uint8Array(31)), /length 31 is not 32/);
});
