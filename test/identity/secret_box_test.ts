import assert from "node:assert/strict";
import { loadOrCreateSecretKey, SecretBox } from "../../src/identity/secret_box.ts";
import { openStore } from "../../src/store/mod.ts";

Deno.test("secret box: seals with a fresh IV, opens, refuses a wrong key and tampering", () => {
  const box = new SecretBox(crypto.getRandomValues(new Uint8Array(32)));
  const a = box.seal("JBSWY3DPEHPK3PXP"), b = box.seal("JBSWY3DPEHPK3PXP");
  assert.match(a, /^sb1:/);
  assert.notEqual(a, b, "a fresh IV every time");
  assert.equal(box.open(a), "JBSWY3DPEHPK3PXP");
  assert.equal(box.open("PLAINOLDROW"), "PLAINOLDROW", "rows from before sealing still read");
  const other = new SecretBox(crypto.getRandomValues(new Uint8Array(32)));
  assert.throws(() => other.open(a), /key file does not match/);
  const raw = atob(a.slice(4));
  const flipped = "sb1:" +
    btoa(raw.slice(0, 14) + String.fromCharCode(raw.charCodeAt(14) ^ 1) + raw.slice(15));
  assert.throws(() => box.open(flipped), /Cannot open a sealed secret/);
  assert.throws(() => new SecretBox(new Uint8Array(16)), /32 bytes/);
});

Deno.test("secret box: TOTP seeds are sealed in the database, clear through the repository", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const key = await loadOrCreateSecretKey(`${dir}/secret.key`);
    assert.equal((await Deno.stat(`${dir}/secret.key`)).mode! & 0o777, 0o600);
    assert.deepEqual(await loadOrCreateSecretKey(`${dir}/secret.key`), key, "loaded, not remade");
    const store = openStore(`${dir}/edge.db`, { sealer: new SecretBox(key) });
    store.users.insert({
      id: "u1",
      username: "ana",
      passwordHash: "scrypt$x",
      totpSecret: "JBSWY3DPEHPK3PXP",
      totpLastStep: 0,
      role: "admin",
      groups: [],
      createdAt: 0,
    });
    const row = store.db.get<{ totp_secret: string }>("SELECT totp_secret FROM users");
    assert.match(row!.totp_secret, /^sb1:/);
    assert.ok(!row!.totp_secret.includes("JBSWY3DPEHPK3PXP"));
    assert.equal(store.users.byUsername("ana")!.totpSecret, "JBSWY3DPEHPK3PXP");
    store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
