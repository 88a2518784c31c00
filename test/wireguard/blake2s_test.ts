import assert from "node:assert/strict";
import { Blake2s, hash, hmac, kdf, mac } from "../../src/wireguard/blake2s.ts";
import { hex, toHex } from "./hex.ts";

const enc = new TextEncoder();
const key32 = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");

Deno.test("blake2s: RFC 7693 and reference vectors", () => {
  const cases: Array<[string, Uint8Array, Uint8Array | undefined, number, string]> = [
    [
      "abc (RFC 7693 B)",
      enc.encode("abc"),
      undefined,
      32,
      "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982",
    ],
    [
      "empty",
      new Uint8Array(0),
      undefined,
      32,
      "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9",
    ],
    [
      "keyed kat 0",
      new Uint8Array(0),
      key32,
      32,
      "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49",
    ],
    [
      "keyed kat 1",
      new Uint8Array([0]),
      key32,
      32,
      "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1",
    ],
    [
      "keyed 16-byte out",
      enc.encode("hello"),
      key32.subarray(0, 16),
      16,
      "6a25fa5a331f36d9bda9c0aeca70bc0b",
    ],
  ];
  for (const [name, input, key, outLen, want] of cases) {
    assert.equal(toHex(new Blake2s(outLen, key).update(input).digest()), want, name);
  }
});

Deno.test("blake2s: incremental updates across block boundaries match one-shot", () => {
  const data = new Uint8Array(300).map((_, i) => i * 7);
  const one = hash(data);
  for (const split of [0, 1, 63, 64, 65, 128, 299]) {
    assert.deepEqual(hash(data.subarray(0, split), data.subarray(split)), one, `split ${split}`);
  }
});

Deno.test("blake2s: mac is keyed 16-byte BLAKE2s, hmac matches openssl", () => {
  assert.equal(mac(key32.subarray(0, 16), enc.encode("hello")).length, 16);
  assert.equal(
    toHex(mac(key32.subarray(0, 16), enc.encode("hello"))),
    "6a25fa5a331f36d9bda9c0aeca70bc0b",
  );
  // openssl dgst -blake2s256 -hmac key <<< "hello" (without newline)
  assert.equal(
    toHex(hmac(enc.encode("key"), enc.encode("hello"))),
    "51a76461a2cc3ebfecaef4ddc7f14bd29d5e49f4806a2452e05551b7d769812a",
  );
});

Deno.test("blake2s: kdf outputs chain as the Noise HKDF", () => {
  const ck = hash(enc.encode("ck")), input = enc.encode("input");
  const [t1, t2, t3] = kdf(3, ck, input);
  const prk = hmac(ck, input);
  assert.deepEqual(t1, hmac(prk, new Uint8Array([1])));
  assert.deepEqual(t2, hmac(prk, t1, new Uint8Array([2])));
  assert.deepEqual(t3, hmac(prk, t2, new Uint8Array([3])));
  assert.deepEqual(kdf(1, ck, input), [t1]);
});
