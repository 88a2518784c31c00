/**
 * Device ↔ user binding on the edge: a user key enrols only with a live
 * sign-in, a machine key without one; the device record names the user; a
 * user has several devices; the access subject carries the IdP's and the
 * local groups with their sources; disabling the user takes every one of
 * their devices out of the tunnel and refuses their calls, enabling puts
 * them back. Sign-ins here are made through the store (the IdP round trips
 * are in test/identity/oidc_signin_test.ts).
 */
import assert from "node:assert/strict";
import { subjectFor } from "../../src/edge/subjects.ts";
import { createEnrollmentKey } from "../../src/edge/enrollment_keys.ts";
import { randomToken, sha256Hex } from "../../src/identity/secrets.ts";
import { setLogSinks } from "../../src/log.ts";
import { fixture } from "../http/helpers.ts";
import { userRecord } from "../store/backends.ts";

setLogSinks([]);

Deno.test("user binding: sign-in required by user keys, several devices, groups, disable cuts tunnels", async () => {
  const edge = await fixture();
  const { store, clock } = edge;
  store.users.insert({
    id: "usr_ana",
    username: "ana@corp.example",
    passwordHash: "!",
    totpSecret: "",
    totpLastStep: 0,
    role: "user",
    groups: ["vpn-users"],
    createdAt: clock.now(),
    email: "ana@corp.example",
    idpGroups: ["engineering"],
  });
  const signIn = (expiresIn = 3600_000) => {
    const token = `pcs_${randomToken(32)}`;
    store.userSignIns.insert({
      tokenHash: sha256Hex(token),
      userId: "usr_ana",
      providerId: null,
      method: "oidc_code",
      deviceId: null,
      createdAt: clock.now(),
      expiresAt: clock.now() + expiresIn,
    });
    return token;
  };
  const userKey = createEnrollmentKey(store, clock, {
    reusable: true,
    expiresInMs: null,
    group: null,
    machine: false,
    createdBy: "test",
    apiUrl: edge.ctx.apiUrl,
    caSha256: edge.ctx.caSha256,
  }).key;
  const enrol = (over: Record<string, unknown>, key = userKey) =>
    edge.req("POST", "/api/v1/enroll", edge.enrollBody(key, over));

  // A user key without a sign-in, with a forged or an expired one: refused, nothing made.
  for (
    const [what, over, code] of [
      ["no sign-in", {}, "signin_required"],
      ["unknown token", { signIn: `pcs_${randomToken(32)}` }, "signin_invalid"],
      ["expired token", { signIn: signIn(-1) }, "signin_invalid"],
      ["malformed token", { signIn: "nope" }, "invalid_request"],
    ] as const
  ) {
    const before = store.devices.count();
    const r = await enrol(over);
    const j = await r.json();
    assert.equal(r.status, what === "malformed token" ? 400 : 401, `${what}: ${JSON.stringify(j)}`);
    assert.equal(j.error.code, code, what);
    assert.equal(store.devices.count(), before, `${what}: no device`);
  }

  // Two devices of the same user.
  const a = await enrol({ signIn: signIn(), hostname: "ana-laptop" });
  const aj = await a.json();
  assert.equal(a.status, 200, JSON.stringify(aj));
  assert.equal(aj.user, "ana@corp.example");
  const b = await enrol({ signIn: signIn(), hostname: "ana-desktop" });
  const bj = await b.json();
  assert.equal(b.status, 200);
  assert.deepEqual(store.devices.byUser("ana@corp.example").map((d) => d.hostname), [
    "ana-desktop",
    "ana-laptop",
  ]);
  // A machine key needs no user: a machine device in the key's group.
  const gw = await edge.enroll({ hostname: "branch-gw" }, edge.newKey({ group: "gateways" }).key);
  assert.equal(gw.json.user, null);

  // The access subject: the user and their groups with sources.
  assert.deepEqual(subjectFor(store, aj.deviceId), {
    deviceId: aj.deviceId,
    deviceName: "ana-laptop",
    user: "ana@corp.example",
    groups: [{ name: "engineering", source: "idp" }, { name: "vpn-users", source: "local" }],
    machine: false,
  });
  assert.equal(subjectFor(store, gw.json.deviceId)?.machine, true);

  // Access rules by user and by IdP group decide on the signed-in user's devices.
  await edge.adminReq("PUT", "/api/v1/admin/policy/segments", {
    items: [{ name: "app", cidrs: ["198.19.0.0/24"], ports: ["80"] }, {
      name: "hr",
      cidrs: ["198.19.1.0/24"],
      ports: ["80"],
    }],
  });
  const rules = await edge.adminReq("PUT", "/api/v1/admin/policy/access-rules", {
    items: [
      { name: "engineers", segments: ["app"], groups: ["engineering"] },
      { name: "ana only", ruleOrder: 1, segments: ["hr"], users: ["ana@corp.example"] },
    ],
  });
  assert.equal(rules.status, 200, await rules.text());
  const explain = async (device: string, ip: string) => {
    const r = await edge.adminReq("POST", "/api/v1/admin/access/explain", { device, ip, port: 80 });
    assert.equal(r.status, 200);
    return (await r.json()).decision as { allowed: boolean; rule: string | null };
  };
  assert.deepEqual(await explain(aj.deviceId, "198.19.0.10"), {
    ...(await explain(aj.deviceId, "198.19.0.10")),
    allowed: true,
    rule: "engineers",
  });
  assert.equal((await explain(aj.deviceId, "198.19.1.10")).rule, "ana only");
  assert.equal((await explain(gw.json.deviceId, "198.19.0.10")).allowed, false, "not an engineer");

  // The admin API shows the user with their groups, sources and devices.
  const users = (await (await edge.adminReq("GET", "/api/v1/admin/users")).json()).users;
  const ana = users.find((u: { username: string }) => u.username === "ana@corp.example");
  assert.deepEqual(ana.groupSources, [
    { name: "engineering", source: "idp" },
    { name: "vpn-users", source: "local" },
  ]);
  assert.equal(ana.devices.length, 2);

  // Disable: both of ana's devices leave the tunnel at once, the gateway stays.
  const changed: string[] = [];
  edge.ctx.subjectChanged.on((id) => changed.push(id));
  const keys = [aj, bj].map((j) => store.devices.byId(j.deviceId)!.wgPublicKey);
  assert.ok(keys.every((k) => edge.tunnel.peers.has(k)));
  const d = await edge.adminReq("POST", "/api/v1/admin/users/usr_ana/disable");
  assert.equal(d.status, 200, await d.text());
  assert.ok(keys.every((k) => !edge.tunnel.peers.has(k)), "ana's peers removed");
  assert.ok(edge.tunnel.peers.has(gw.body.wgPublicKey), "the machine device keeps its tunnel");
  assert.deepEqual(changed.sort(), [aj.deviceId, bj.deviceId].sort());
  assert.equal(store.userSignIns.forUser("usr_ana").length, 0, "sign-ins ended");
  const hb = await edge.req("POST", "/api/v1/heartbeat", { state: "connected", transport: "udp" }, {
    authorization: `Bearer ${aj.credential}`,
    "x-device-fingerprint": store.devices.byId(aj.deviceId)!.fingerprint,
  });
  assert.equal(hb.status, 403);
  assert.equal((await hb.json()).error.code, "user_disabled");
  assert.equal(store.audit.count("user.disable"), 1);

  // Enable: back in the tunnel.
  const e = await edge.adminReq("POST", "/api/v1/admin/users/usr_ana/enable");
  assert.equal(e.status, 200);
  assert.ok(keys.every((k) => edge.tunnel.peers.has(k)), "ana's peers back");

  // Re-authentication: past its sign-in's lifetime, a device is refused and leaves the tunnel.
  const short = await enrol({ signIn: signIn(60_000), hostname: "ana-tablet" });
  const sj = await short.json();
  assert.equal(short.status, 200, JSON.stringify(sj));
  const tabletKey = store.devices.byId(sj.deviceId)!.wgPublicKey;
  const beat = () =>
    edge.req("POST", "/api/v1/heartbeat", { state: "connected", transport: "udp" }, {
      authorization: `Bearer ${sj.credential}`,
      "x-device-fingerprint": store.devices.byId(sj.deviceId)!.fingerprint,
    });
  assert.equal((await beat()).status, 200);
  assert.ok(edge.tunnel.peers.has(tabletKey));
  // The token's own 1-minute wait to be used does not matter once bound: the
  // device's profile (the default, 12 h) decides how long the sign-in lasts.
  clock.advance(61_000);
  assert.equal((await beat()).status, 200);
  clock.advance(12 * 3600_000 - 61_000 + 1000);
  const late = await beat();
  assert.equal(late.status, 401);
  const lj = await late.json();
  assert.equal(lj.error.code, "signin_expired");
  assert.match(lj.error.message, /sign in again/);
  assert.ok(!edge.tunnel.peers.has(tabletKey), "out of the tunnel");
  assert.ok(edge.tunnel.peers.has(gw.body.wgPublicKey), "machine devices have no sign-in to lapse");

  // Signing in again: the same device hands the new sign-in over, no new enrolment.
  const tablet = {
    authorization: `Bearer ${sj.credential}`,
    "x-device-fingerprint": store.devices.byId(sj.deviceId)!.fingerprint,
  };
  const reauth = (body: unknown, h: Record<string, string> = tablet) =>
    edge.req("POST", "/api/v1/reauth", body, h);
  store.users.insert(userRecord("usr_bo", "bo@corp.example", { createdAt: clock.now() }));
  const boToken = `pcs_${randomToken(32)}`;
  store.userSignIns.insert({
    tokenHash: sha256Hex(boToken),
    userId: "usr_bo",
    providerId: null,
    method: "oidc_code",
    deviceId: null,
    createdAt: clock.now(),
    expiresAt: clock.now() + 3600_000,
  });
  const stale = signIn(1000);
  clock.advance(2000);
  const refused: [string, unknown, Record<string, string> | undefined, number, string][] = [
    ["no body", undefined, undefined, 415, "unsupported_media_type"],
    ["garbage", { signIn: 42 }, undefined, 400, "invalid_request"],
    ["unknown token", { signIn: `pcs_${randomToken(32)}` }, undefined, 401, "signin_invalid"],
    ["expired token", { signIn: stale }, undefined, 401, "signin_invalid"],
    ["another user's sign-in", { signIn: boToken }, undefined, 403, "signin_user_mismatch"],
    ["no device credential", { signIn: signIn() }, {}, 401, "device_unauthorized"],
    [
      "a machine device",
      { signIn: signIn() },
      {
        authorization: `Bearer ${gw.json.credential}`,
        "x-device-fingerprint": store.devices.byId(gw.json.deviceId)!.fingerprint,
      },
      409,
      "signin_not_needed",
    ],
  ];
  for (const [what, body, h, status, code] of refused) {
    const r = await reauth(body, h);
    const j = await r.json();
    assert.equal(r.status, status, `${what}: ${JSON.stringify(j)}`);
    assert.equal(j.error.code, code, what);
    assert.ok(j.error.message.length > 10, what);
    assert.ok(!edge.tunnel.peers.has(tabletKey), `${what}: still out of the tunnel`);
  }
  // A sign-in another device used already cannot renew this one.
  const used = signIn();
  store.userSignIns.bind(sha256Hex(used), aj.deviceId);
  const ur = await reauth({ signIn: used });
  assert.equal(ur.status, 409);
  assert.equal((await ur.json()).error.code, "signin_in_use");

  const devicesBefore = store.devices.count();
  const ok = await reauth({ signIn: signIn() });
  const okj = await ok.json();
  assert.equal(ok.status, 200, JSON.stringify(okj));
  assert.equal(okj.user, "ana@corp.example");
  assert.equal(Date.parse(okj.signInEndsAt), clock.now() + 12 * 3600_000);
  assert.ok(edge.tunnel.peers.has(tabletKey), "back in the tunnel");
  assert.equal((await beat()).status, 200);
  assert.equal(store.devices.count(), devicesBefore, "no new device");
  assert.equal(store.audit.count("device.signin_renew"), 1);
});
