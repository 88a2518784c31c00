/**
 * The stored sign-in state (migration 10): bodies sealed at rest with the
 * store's key (a PKCE verifier never lies in the database in clear, and a
 * database without its key file cannot read it), one-use takes, lapsing,
 * purging, the per-kind bound, and the replay record that refuses a second
 * use until it lapses — across a reopen of the database file.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { SecretBox } from "../../src/identity/secret_box.ts";
import { openStore } from "../../src/store/mod.ts";

Deno.test("signin_state: sealed bodies, one use, lapse, purge, bound, replay record across a reopen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc-signin-state-" });
  const path = `${dir}/edge.db`;
  const box = new SecretBox(new Uint8Array(randomBytes(32)));
  const T = 1_000_000;
  try {
    let store = openStore(path, { sealer: box });
    const s = store.signInState;
    const body = JSON.stringify({ codeVerifier: "verifier-0123456789-secret", nonce: "n-42" });
    s.put("oidc", "state-1", body, T + 600_000, T, 10);
    const raw = store.db.get<{ body: string }>(
      "SELECT body FROM signin_state WHERE kind = 'oidc' AND key = 'state-1'",
    )!.body;
    assert.match(raw, /^sb1:/, "sealed");
    assert.ok(!raw.includes("verifier-0123456789"), "no verifier in clear");
    assert.equal(s.get("oidc", "state-1", T), body);

    // Replay records: recorded once, refused until they lapse, then recorded again.
    assert.equal(s.putOnce("saml_assertion", "idp a1", T + 1000, T, 10), true);
    assert.equal(s.putOnce("saml_assertion", "idp a1", T + 5000, T + 10, 10), false);
    store.close();

    // A restart: the same file, the same key.
    store = openStore(path, { sealer: box });
    const r = store.signInState;
    assert.equal(r.get("oidc", "state-1", T + 1), body, "a flow in progress survives");
    assert.equal(r.putOnce("saml_assertion", "idp a1", T + 5000, T + 20, 10), false, "replay");
    assert.equal(r.putOnce("saml_assertion", "idp a1", T + 9000, T + 1000, 10), true, "lapsed");
    assert.equal(r.take("oidc", "state-1", T + 2), body);
    assert.equal(r.take("oidc", "state-1", T + 3), undefined, "used once");

    // Lapsed rows are not returned and are purged.
    r.put("grant", "g1", "{}", T + 100, T, 10);
    assert.equal(r.get("grant", "g1", T + 100), undefined);
    assert.ok(r.purge(T + 100_000) >= 1);
    assert.equal(r.count("grant"), 0);

    // Bounded per kind: past the limit the oldest go first, other kinds untouched.
    r.put("oidc", "keep", "{}", T + 600_000, T, 3);
    for (let i = 0; i < 5; i++) r.put("saml", `h${i}`, "{}", T + 600_000, T + i, 3);
    assert.equal(r.count("saml"), 3);
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((i) => r.get("saml", `h${i}`, T + 10) !== undefined),
      [false, false, true, true, true],
    );
    assert.equal(r.count("oidc"), 1);
    store.close();

    // Without its key file the database cannot be read back as a flow.
    const other = openStore(path, { sealer: new SecretBox(new Uint8Array(randomBytes(32))) });
    other.signInState.put("oidc", "state-2", body, T + 600_000, T, 10);
    other.close();
    const wrong = openStore(path, { sealer: box });
    assert.throws(() => wrong.signInState.get("oidc", "state-2", T), /key file does not match/);
    wrong.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
