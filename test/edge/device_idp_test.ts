/**
 * The policy bundle names the identity provider of the device's user (the
 * connector's doctor probes it): a user who signed in through an OIDC
 * provider gets its issuer; editing the issuer reaches the device's next
 * fetch through the bundle cache (a new ETag); a machine device and a local
 * user get none.
 */
import assert from "node:assert/strict";
import { createEnrollmentKey } from "../../src/edge/enrollment_keys.ts";
import { randomToken, sha256Hex } from "../../src/identity/secrets.ts";
import { setLogSinks } from "../../src/log.ts";
import { fixture } from "../http/helpers.ts";
import { userRecord } from "../store/backends.ts";

setLogSinks([]);

Deno.test("device idp: the bundle names the user's provider, follows edits, none for machines and local users", async () => {
  const edge = await fixture();
  const { store, clock } = edge;
  const made = await edge.adminReq("POST", "/api/v1/admin/identity-providers", {
    name: "Corp",
    kind: "oidc",
    domains: ["corp.example"],
    oidc: {
      issuer: "https://idp.corp.example/realms/a",
      clientId: "pc",
      clientSecret: "s3cret-1234",
    },
  });
  const p = await made.json();
  assert.equal(made.status, 201, JSON.stringify(p));
  const user = (id: string, name: string, providerId: string | null) =>
    store.users.insert(userRecord(id, name, { createdAt: clock.now(), email: name, providerId }));
  user("usr_ana", "ana@corp.example", p.id);
  user("usr_lee", "lee@local.example", null);
  const userKey = createEnrollmentKey(store, clock, {
    reusable: true,
    expiresInMs: null,
    group: null,
    machine: false,
    createdBy: "test",
    apiUrl: edge.ctx.apiUrl,
    caSha256: edge.ctx.caSha256,
  }).key;
  const enrolAs = async (userId: string, hostname: string) => {
    const token = `pcs_${randomToken(32)}`;
    store.userSignIns.insert({
      tokenHash: sha256Hex(token),
      userId,
      providerId: null,
      method: "oidc_code",
      deviceId: null,
      createdAt: clock.now(),
      expiresAt: clock.now() + 3600_000,
    });
    return (await edge.enroll({ signIn: token, hostname }, userKey)).json.deviceId as string;
  };
  const ana = await enrolAs("usr_ana", "ana-laptop");
  const lee = await enrolAs("usr_lee", "lee-laptop");
  const gw = (await edge.enroll({ hostname: "branch-gw" })).json.deviceId as string;

  const rows: [string, string, { name: string; kind: string; url: string } | null][] = [
    ["user of an OIDC provider", ana, {
      name: "Corp",
      kind: "oidc",
      url: "https://idp.corp.example/realms/a",
    }],
    ["local user", lee, null],
    ["machine device", gw, null],
  ];
  for (const [what, id, want] of rows) {
    assert.deepEqual(edge.policy.bundleForDevice(id).identityProvider, want, what);
  }

  // The admin moves the provider: ana's next bundle says so (the cache does not hide it).
  const before = edge.policy.bundleForDevice(ana).version;
  clock.advance(1000);
  const patched = await edge.adminReq("PATCH", `/api/v1/admin/identity-providers/${p.id}`, {
    oidc: { issuer: "https://login.corp.example", clientId: "pc" },
  });
  assert.equal(patched.status, 200, await patched.text());
  const after = edge.policy.bundleForDevice(ana);
  assert.equal(after.identityProvider?.url, "https://login.corp.example");
  assert.notEqual(after.version, before, "a new ETag");
  // And deleting it leaves the device with none.
  assert.equal(
    (await edge.adminReq("DELETE", `/api/v1/admin/identity-providers/${p.id}`)).status,
    200,
  );
  assert.equal(edge.policy.bundleForDevice(ana).identityProvider, null);
});
