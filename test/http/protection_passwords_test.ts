/**
 * Protection passwords through the admin API: plain text in, only an scrypt
 * hash stored and shipped; a malformed hash in a policy PUT is refused with a
 * code and a sentence and leaves the policy as it was.
 */
import assert from "node:assert/strict";
import { hashPassword, verifyPassword } from "../../src/identity/password.ts";
import { fixture, TEST_SCRYPT } from "./helpers.ts";
import { createEnrollmentKey } from "../../src/edge/enrollment_keys.ts";
import { randomToken, sha256Hex } from "../../src/identity/secrets.ts";

const GOOD = await hashPassword("good-password", TEST_SCRYPT);
const [, , , , salt, hash] = GOOD.split("$");

Deno.test("policy PUT: a malformed password hash is refused with a code, nothing stored", async () => {
  const f = await fixture();
  try {
    const profile = (passwords: unknown) => ({
      items: [{ name: "default", forwarding: { name: "default" }, passwords }],
    });
    // [passwords, what the sentence names]
    const table: [unknown, RegExp][] = [
      [{ logout: "letmein" }, /items\[0\]\.passwords\.logout: not an scrypt hash/],
      [{ disable: `bcrypt$1024$8$1$${salt}$${hash}` }, /scrypt\$N\$r\$p\$salt\$hash/],
      [{ exit: `scrypt$1000$8$1$${salt}$${hash}` }, /power of two/],
      [{ uninstall: `scrypt$1024$64$1$${salt}$${hash}` }, /r must be 1 to 32/],
      [{ logout: `scrypt$1024$8$1$${salt}$${hash.slice(0, 10)}` }, /must be 32 bytes/],
      [{ logout: `scrypt$1024$8$1$${salt}$${hash}!` }, /base64url/],
      [{ logout: `scrypt$1024$8$1$AA$${hash}` }, /salt must be at least 8 bytes/],
      [{ logout: "" }, /not an scrypt hash/],
      [{ logout: 42 }, /passwords\.logout/],
      [{ reboot: GOOD }, /reboot/],
    ];
    const before = f.policy.revision();
    for (const [passwords, why] of table) {
      const r = await f.adminReq("PUT", "/api/v1/admin/policy/app-profiles", profile(passwords));
      const what = JSON.stringify(passwords);
      assert.equal(r.status, 400, what);
      const e = (await r.json()).error;
      assert.equal(e.code, "invalid_request", what);
      assert.match(e.message, why, what);
    }
    assert.equal(f.policy.revision(), before, "nothing was written");
    const ok = await f.adminReq(
      "PUT",
      "/api/v1/admin/policy/app-profiles",
      profile({ logout: GOOD, uninstall: GOOD }),
    );
    assert.equal(ok.status, 200);
  } finally {
    f.store.close();
  }
});

Deno.test("protection passwords: plain text in, scrypt hash stored and shipped, never the text", async () => {
  const f = await fixture();
  try {
    const put = (name: string, body: unknown) =>
      f.adminReq("PUT", `/api/v1/admin/policy/app-profiles/${name}/passwords`, body);
    let r = await f.adminReq("GET", "/api/v1/admin/policy/passwords");
    assert.deepEqual((await r.json()).profiles, [{
      profile: "default",
      guarded: { logout: false, disable: false, exit: false, uninstall: false },
      clockSkewToleranceSec: 120,
      signInLifetimeHours: 12,
    }]);
    r = await put("default", { disable: "disable-pw-1", uninstall: "uninstall-pw-1" });
    assert.equal(r.status, 200);
    const view = await r.json();
    assert.deepEqual(view.guarded, { logout: false, disable: true, exit: false, uninstall: true });
    // Only hashes are stored: the profile holds scrypt strings that verify, and
    // no stored row contains the plain text.
    const [stored] = f.policy.list("app-profiles") as { passwords: Record<string, string> }[];
    assert.match(stored.passwords.disable, /^scrypt\$/);
    assert.ok(await verifyPassword("disable-pw-1", stored.passwords.disable));
    assert.ok(await verifyPassword("uninstall-pw-1", stored.passwords.uninstall));
    assert.ok(!(await verifyPassword("disable-pw-1", stored.passwords.uninstall)));
    const dump = JSON.stringify(f.store.policy.list("app_profile")) +
      JSON.stringify(f.store.audit.list({ limit: 100 }));
    assert.ok(!dump.includes("disable-pw-1") && !dump.includes("uninstall-pw-1"));
    // The device's bundle carries the hashes.
    const d = await f.enroll();
    const b = await f.req("GET", "/api/v1/policy", undefined, d.headers);
    const bundle = await b.json();
    assert.equal(bundle.policy.appProfile.passwords.disable, stored.passwords.disable);
    assert.ok(!JSON.stringify(bundle).includes("disable-pw-1"));

    // Changing one keeps the other; null removes.
    r = await put("default", { disable: null, logout: "logout-pw-1" });
    assert.deepEqual((await r.json()).guarded, {
      logout: true,
      disable: false,
      exit: false,
      uninstall: true,
    });
    const [after] = f.policy.list("app-profiles") as { passwords: Record<string, string> }[];
    assert.equal(after.passwords.uninstall, stored.passwords.uninstall);

    // Bad input: a code and a sentence, nothing changed.
    const rev = f.policy.revision();
    const bad: [string, unknown, number, string][] = [
      ["default", { exit: "abc" }, 400, "invalid_password"],
      ["default", { exit: "x".repeat(1025) }, 400, "invalid_request"],
      ["default", { shutdown: "abcdef" }, 400, "invalid_request"],
      ["default", { exit: 12345 }, 400, "invalid_request"],
      ["nope", { exit: "abcdef" }, 404, "not_found"],
    ];
    for (const [name, body, status, code] of bad) {
      const res = await put(name, body);
      const what = `${name} ${JSON.stringify(body).slice(0, 40)}`;
      assert.equal(res.status, status, what);
      const e = (await res.json()).error;
      assert.equal(e.code, code, what);
      assert.match(e.message, /^[A-Z]/, what);
    }
    const garbage = await f.adminReq(
      "PUT",
      "/api/v1/admin/policy/app-profiles/default/passwords",
      "{not json",
    );
    assert.equal(garbage.status, 400);
    assert.equal(f.policy.revision(), rev);
  } finally {
    f.store.close();
  }
});

Deno.test("protection passwords: concurrent changes to two actions both land", async () => {
  const f = await fixture();
  try {
    const put = (body: unknown) =>
      f.adminReq("PUT", "/api/v1/admin/policy/app-profiles/default/passwords", body);
    const rs = await Promise.all([put({ logout: "logout-pw-9" }), put({ exit: "exit-pw-9" })]);
    assert.deepEqual(rs.map((r) => r.status), [200, 200]);
    const [p] = f.policy.list("app-profiles") as { passwords: Record<string, string> }[];
    assert.ok(await verifyPassword("logout-pw-9", p.passwords.logout));
    assert.ok(await verifyPassword("exit-pw-9", p.passwords.exit));
  } finally {
    f.store.close();
  }
});

Deno.test("sign-in clock tolerance through the API: set, bounded, unknown profile", async () => {
  const f = await fixture();
  try {
    const put = (name: string, body: unknown) =>
      f.adminReq("PUT", `/api/v1/admin/policy/app-profiles/${name}/clock-skew`, body);
    const r = await put("default", { toleranceSec: 600 });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).clockSkewToleranceSec, 600);
    assert.equal(f.policy.signInClockSkewSec(), 600, "the edge's validation uses it");
    const d = await f.enroll();
    const b = await (await f.req("GET", "/api/v1/policy", undefined, d.headers)).json();
    assert.equal(b.policy.appProfile.clockSkewToleranceSec, 600, "shipped to connectors");
    const rev = f.policy.revision();
    // [profile, body, status, code]
    const bad: [string, unknown, number, string][] = [
      ["default", { toleranceSec: 3600 }, 400, "invalid_request"],
      ["default", { toleranceSec: -1 }, 400, "invalid_request"],
      ["default", { toleranceSec: 1.5 }, 400, "invalid_request"],
      ["default", { toleranceSec: "abc" }, 400, "invalid_request"],
      ["default", {}, 400, "invalid_request"],
      ["nope", { toleranceSec: 60 }, 404, "not_found"],
    ];
    for (const [name, body, status, code] of bad) {
      const res = await put(name, body);
      const what = `${name} ${JSON.stringify(body)}`;
      assert.equal(res.status, status, what);
      const e = (await res.json()).error;
      assert.equal(e.code, code, what);
      if (status === 400 && "toleranceSec" in (body as object)) {
        assert.match(e.message, /whole number of seconds from 0 to 1800/, what);
      }
    }
    assert.equal(f.policy.revision(), rev, "nothing was written");
  } finally {
    f.store.close();
  }
});

Deno.test("sign-in lifetime through the API: set, enforced on a user's device, bounded, unknown profile", async () => {
  const f = await fixture();
  try {
    const put = (name: string, body: unknown) =>
      f.adminReq("PUT", `/api/v1/admin/policy/app-profiles/${name}/signin-lifetime`, body);
    f.store.users.insert({
      id: "usr_ana",
      username: "ana@corp.example",
      passwordHash: "!",
      totpSecret: "",
      totpLastStep: 0,
      role: "user",
      groups: [],
      createdAt: f.clock.now(),
    });
    const token = `pcs_${randomToken(32)}`;
    f.store.userSignIns.insert({
      tokenHash: sha256Hex(token),
      userId: "usr_ana",
      providerId: null,
      method: "local",
      deviceId: null,
      createdAt: f.clock.now(),
      expiresAt: f.clock.now() + 3600_000,
    });
    const key = createEnrollmentKey(f.store, f.clock, {
      reusable: false,
      expiresInMs: null,
      group: null,
      machine: false,
      createdBy: "test",
      apiUrl: f.ctx.apiUrl,
      caSha256: f.ctx.caSha256,
    }).key;
    const d = await f.enroll({ signIn: token }, key);
    const beat = async () =>
      (await f.req(
        "POST",
        "/api/v1/heartbeat",
        { state: "connected", transport: "udp" },
        d.headers,
      ))
        .status;
    f.clock.advance(3 * 3600_000);
    assert.equal(await beat(), 200, "3 h into the default 12 h");
    const r = await put("default", { hours: 2 });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).signInLifetimeHours, 2);
    assert.equal(await beat(), 401, "the shorter lifetime applies to the sign-in made before");
    const rev = f.policy.revision();
    // [profile, body, status, code]
    const bad: [string, unknown, number, string][] = [
      ["default", { hours: 0 }, 400, "invalid_request"],
      ["default", { hours: 721 }, 400, "invalid_request"],
      ["default", { hours: 1.5 }, 400, "invalid_request"],
      ["default", { hours: "12" }, 400, "invalid_request"],
      ["default", {}, 400, "invalid_request"],
      ["nope", { hours: 8 }, 404, "not_found"],
    ];
    for (const [name, body, status, code] of bad) {
      const res = await put(name, body);
      const what = `${name} ${JSON.stringify(body)}`;
      assert.equal(res.status, status, what);
      const e = (await res.json()).error;
      assert.equal(e.code, code, what);
      if (status === 400 && "hours" in (body as object)) {
        assert.match(e.message, /whole number of hours from 1 to 720/, what);
      }
    }
    assert.equal(f.policy.revision(), rev, "nothing was written");
  } finally {
    f.store.close();
  }
});
