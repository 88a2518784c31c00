/** TOTP against the RFC 6238 test vectors, window and replay rules. */
import assert from "node:assert/strict";
import {
  base32Decode,
  base32Encode,
  otpauthUri,
  totpAt,
  verifyTotp,
} from "../../src/identity/totp.ts";

const SEED = base32Encode(new TextEncoder().encode("12345678901234567890"));

Deno.test("totp: RFC 6238 appendix B vectors (SHA-1, 8 digits)", () => {
  const table: [number, string][] = [
    [59, "94287082"],
    [1111111109, "07081804"],
    [1111111111, "14050471"],
    [1234567890, "89005924"],
    [2000000000, "69279037"],
    [20000000000, "65353130"],
  ];
  for (const [t, want] of table) {
    assert.equal(totpAt(SEED, t * 1000, { digits: 8 }), want, `t=${t}`);
  }
  assert.equal(totpAt(SEED, 59_000), "287082");
});

Deno.test("totp: base32 round trip and RFC 4648 vectors", () => {
  assert.equal(base32Encode(new TextEncoder().encode("foobar")), "MZXW6YTBOI");
  assert.equal(new TextDecoder().decode(base32Decode("mzxw6ytboi======")), "foobar");
  assert.throws(() => base32Decode("MZ1"), /invalid character/);
});

Deno.test("totp: ±1 step window, replay of the same or older step refused", () => {
  const now = 1_700_000_000_000;
  const code = totpAt(SEED, now);
  const step = verifyTotp(SEED, code, now, 0);
  assert.equal(step, Math.floor(now / 30000));
  assert.equal(verifyTotp(SEED, code, now + 30_000, 0), step, "one step late is fine");
  assert.equal(verifyTotp(SEED, code, now + 61_000, 0), null, "two steps late is not");
  assert.equal(verifyTotp(SEED, code, now, step!), null, "replay refused");
  assert.equal(verifyTotp(SEED, "12345", now, 0), null);
  assert.equal(verifyTotp(SEED, "abcdef", now, 0), null);
});

Deno.test("totp: otpauth URI carries issuer, account and secret", () => {
  const uri = otpauthUri("Portcullis", "alice@example", "ABC");
  assert.equal(
    uri,
    "otpauth://totp/Portcullis:alice%40example?secret=ABC&issuer=Portcullis&algorithm=SHA1&digits=6&period=30",
  );
});
