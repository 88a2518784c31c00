/**
 * The sign-in lifetime is per app profile: two devices of the same user,
 * enrolled with keys of two groups whose profiles re-authenticate every 1 h
 * and every 3 h, lapse at different times (the API refuses them, the edge's
 * sweep and its start-up peer load leave them out of the tunnel), while a
 * machine device never lapses. A profile change applies to sign-ins made
 * before it.
 */
import assert from "node:assert/strict";
import { createEnrollmentKey } from "../../src/edge/enrollment_keys.ts";
import { loadPeers } from "../../src/edge/devices.ts";
import { sweepLapsedSignIns } from "../../src/edge/signin_lapse.ts";
import { randomToken, sha256Hex } from "../../src/identity/secrets.ts";
import { setLogSinks } from "../../src/log.ts";
import { fixture } from "../http/helpers.ts";
import { userRecord } from "../store/backends.ts";

setLogSinks([]);

const H = 3600_000;

Deno.test("sign-in lifetime: read from each device's own group profile, so they lapse apart", async () => {
  const edge = await fixture();
  const { store, clock } = edge;
  store.users.insert(userRecord("usr_ana", "ana@corp.example", { createdAt: clock.now() }));
  const signIn = () => {
    const token = `pcs_${randomToken(32)}`;
    store.userSignIns.insert({
      tokenHash: sha256Hex(token),
      userId: "usr_ana",
      providerId: null,
      method: "oidc_code",
      deviceId: null,
      createdAt: clock.now(),
      expiresAt: clock.now() + 12 * H,
    });
    return token;
  };
  const profiles = (shortHours: number) =>
    edge.adminReq("PUT", "/api/v1/admin/policy/app-profiles", {
      items: [
        {
          name: "kiosks",
          ruleOrder: 0,
          groups: ["kiosks"],
          forwarding: { name: "f" },
          signInLifetimeHours: shortHours,
        },
        {
          name: "laptops",
          ruleOrder: 1,
          groups: ["laptops"],
          forwarding: { name: "f" },
          signInLifetimeHours: 3,
        },
        { name: "default", ruleOrder: 2, forwarding: { name: "f" }, signInLifetimeHours: 12 },
      ],
    });
  const put = await profiles(1);
  assert.equal(put.status, 200, await put.text());
  const keyFor = (group: string) =>
    createEnrollmentKey(store, clock, {
      reusable: true,
      expiresInMs: null,
      group,
      machine: false,
      createdBy: "test",
      apiUrl: edge.ctx.apiUrl,
      caSha256: edge.ctx.caSha256,
    }).key;
  const enrol = async (group: string, hostname: string) => {
    const r = await edge.req(
      "POST",
      "/api/v1/enroll",
      edge.enrollBody(keyFor(group), { signIn: signIn(), hostname }),
    );
    const j = await r.json();
    assert.equal(r.status, 200, JSON.stringify(j));
    const d = store.devices.byId(j.deviceId)!;
    return {
      id: d.id,
      key: d.wgPublicKey,
      headers: { authorization: `Bearer ${j.credential}`, "x-device-fingerprint": d.fingerprint },
    };
  };
  const kiosk = await enrol("kiosks", "ana-kiosk");
  const laptop = await enrol("laptops", "ana-laptop");
  const gw = await edge.enroll({ hostname: "branch-gw" }, edge.newKey({ group: "kiosks" }).key);
  assert.equal(gw.json.user, null);
  const beat = async (d: { headers: Record<string, string> }) => {
    const r = await edge.req("POST", "/api/v1/heartbeat", {
      state: "connected",
      transport: "udp",
    }, d.headers);
    return r.status === 200 ? "ok" : (await r.json()).error.code as string;
  };
  const inTunnel = (k: string) => edge.tunnel.peers.has(k);

  // [hours after sign-in, kiosk, laptop]
  const rows: [number, string, string][] = [
    [0.5, "ok", "ok"],
    [1 + 1 / 3600, "signin_expired", "ok"],
    [2.5, "signin_expired", "ok"],
    [3 + 1 / 3600, "signin_expired", "signin_expired"],
  ];
  const t0 = clock.now();
  for (const [hours, k, l] of rows) {
    clock.setWall(t0 + hours * H);
    // The sweep takes a lapsed device out even when it makes no call.
    sweepLapsedSignIns(edge.ctx);
    assert.equal(inTunnel(kiosk.key), k === "ok", `kiosk in the tunnel at ${hours} h`);
    assert.equal(inTunnel(laptop.key), l === "ok", `laptop in the tunnel at ${hours} h`);
    assert.equal(await beat(kiosk), k, `kiosk at ${hours} h`);
    assert.equal(await beat(laptop), l, `laptop at ${hours} h`);
    assert.equal(await beat({ headers: gw.headers }), "ok", `machine device at ${hours} h`);
    // An edge restart loads only devices whose sign-in lasts.
    edge.tunnel.peers.clear();
    loadPeers(edge.ctx);
    assert.equal(inTunnel(kiosk.key), k === "ok", `kiosk loaded at ${hours} h`);
    assert.equal(inTunnel(laptop.key), l === "ok", `laptop loaded at ${hours} h`);
    assert.ok(inTunnel(gw.body.wgPublicKey));
  }

  // The profile is read when asked: a longer kiosk lifetime applies to the sign-in made before.
  clock.setWall(t0 + 2.5 * H);
  assert.equal((await profiles(4)).status, 200);
  assert.equal(await beat(kiosk), "ok");
  assert.equal(await beat(laptop), "ok");
});
