/** Login and admin API: sessions, CSRF, rate limiting, users, keys, devices, policy, feeds. */
import assert from "node:assert/strict";
import { decodeEnrollmentKey } from "../../src/edge/enrollment_keys.ts";
import { totpAt } from "../../src/identity/totp.ts";
import { fixture, signedPosture } from "./helpers.ts";

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const j = await res.json();
  return { status: res.status, code: j.error?.code, message: j.error?.message };
}

async function login(
  f: Awaited<ReturnType<typeof fixture>>,
  username = "root",
  password = "correct horse battery",
) {
  const code = totpAt(f.admin.totpSecret, f.clock.now());
  const res = await f.req("POST", "/api/v1/auth/login", { username, password, totp: code });
  return res;
}

/** Reads a stream until it ends; false if it is still open after `ms`. */
async function endsWithin(body: ReadableStream<Uint8Array>, ms: number): Promise<boolean> {
  const reader = body.getReader();
  const deadline = Date.now() + ms;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    while (Date.now() < deadline) {
      const r = await Promise.race([
        reader.read(),
        new Promise<"timeout">((res) =>
          timer = setTimeout(() => res("timeout"), deadline - Date.now())
        ),
      ]);
      clearTimeout(timer);
      if (r === "timeout") return false;
      if (r.done) return true;
    }
    return false;
  } finally {
    clearTimeout(timer);
    void reader.cancel().catch(() => {});
  }
}

function cookieOf(res: Response): string {
  const sc = res.headers.get("set-cookie") ?? "";
  return sc.split(";")[0];
}

Deno.test("login: password + TOTP gives a session cookie; CSRF guards unsafe requests", async () => {
  const f = await fixture();
  const res = await login(f);
  assert.equal(res.status, 200);
  const sc = res.headers.get("set-cookie")!;
  assert.match(sc, /pc_session=/);
  assert.match(sc, /HttpOnly/);
  assert.match(sc, /SameSite=Strict/);
  const { csrfToken } = await res.json();
  const cookie = cookieOf(res);
  assert.equal(f.store.sessions.count(), 1);
  assert.ok(!f.store.sessions.byHash(cookie.split("=")[1]), "session id stored only hashed");

  const list = await f.req("GET", "/api/v1/admin/devices", undefined, { cookie });
  assert.equal(list.status, 200);
  const before = f.store.tableCounts();
  const noCsrf = await f.req("POST", "/api/v1/admin/enrollment-keys", {}, { cookie });
  assert.equal((await errorOf(noCsrf)).code, "csrf_failed");
  const wrongCsrf = await f.req("POST", "/api/v1/admin/enrollment-keys", {}, {
    cookie,
    "x-csrf-token": "nope",
  });
  assert.equal((await errorOf(wrongCsrf)).code, "csrf_failed");
  assert.deepEqual(f.store.tableCounts(), before);
  const ok = await f.req("POST", "/api/v1/admin/enrollment-keys", {}, {
    cookie,
    "x-csrf-token": csrfToken,
  });
  assert.equal(ok.status, 201);

  const sess = await (await f.req("GET", "/api/v1/auth/session", undefined, { cookie })).json();
  assert.equal(sess.csrfToken, csrfToken);
  // Idle timeout.
  f.clock.advance(31 * 60_000);
  const idle = await f.req("GET", "/api/v1/admin/devices", undefined, { cookie });
  assert.equal((await errorOf(idle)).code, "unauthorized");
});

Deno.test("login: logout ends the session", async () => {
  const f = await fixture();
  const res = await login(f);
  const { csrfToken } = await res.json();
  const cookie = cookieOf(res);
  const out = await f.req("POST", "/api/v1/auth/logout", undefined, {
    cookie,
    "x-csrf-token": csrfToken,
  });
  assert.equal(out.status, 200);
  assert.equal(f.store.sessions.count(), 0);
  const after = await f.req("GET", "/api/v1/admin/devices", undefined, { cookie });
  assert.equal(after.status, 401);
});

Deno.test("login: wrong password, wrong code, replayed code, bad input, rate limit", async () => {
  const f = await fixture();
  const code = totpAt(f.admin.totpSecret, f.clock.now());
  const before = f.store.tableCounts();
  const cases: [string, unknown, number, string][] = [
    [
      "wrong password",
      { username: "root", password: "nope", totp: code },
      401,
      "invalid_credentials",
    ],
    [
      "wrong code",
      {
        username: "root",
        password: "correct horse battery",
        totp: code === "000000" ? "111111" : "000000",
      },
      401,
      "invalid_credentials",
    ],
    [
      "unknown user",
      { username: "ghost' OR '1'='1", password: "x", totp: code },
      401,
      "invalid_credentials",
    ],
    [
      "code not digits",
      { username: "root", password: "x", totp: "abcdef" },
      400,
      "invalid_request",
    ],
    [
      "unknown field",
      { username: "root", password: "x", totp: code, role: "admin" },
      400,
      "invalid_request",
    ],
  ];
  for (const [name, body, status, c] of cases) {
    const err = await errorOf(await f.req("POST", "/api/v1/auth/login", body));
    assert.equal(err.status, status, name);
    assert.equal(err.code, c, name);
  }
  assert.deepEqual(f.store.tableCounts(), before);
  const ok = await f.req("POST", "/api/v1/auth/login", {
    username: "root",
    password: "correct horse battery",
    totp: code,
  });
  assert.equal(ok.status, 200);
  const replay = await f.req("POST", "/api/v1/auth/login", {
    username: "root",
    password: "correct horse battery",
    totp: code,
  });
  assert.equal((await errorOf(replay)).code, "invalid_credentials");
  // Rate limit: five failures per user lock the sixth attempt out, even with right credentials.
  for (let i = 0; i < 5; i++) {
    await f.req("POST", "/api/v1/auth/login", {
      username: "root",
      password: "bad",
      totp: "123456",
    });
  }
  f.clock.advance(30_000);
  const locked = await f.req("POST", "/api/v1/auth/login", {
    username: "root",
    password: "correct horse battery",
    totp: totpAt(f.admin.totpSecret, f.clock.now()),
  });
  assert.equal((await errorOf(locked)).code, "too_many_attempts");
  assert.ok(Number(locked.headers.get("retry-after")) > 0);
  f.clock.advance(15 * 60_000);
  const after = await f.req("POST", "/api/v1/auth/login", {
    username: "root",
    password: "correct horse battery",
    totp: totpAt(f.admin.totpSecret, f.clock.now()),
  });
  assert.equal(after.status, 200);
});

Deno.test("login: concurrent wrong logins cannot outrun the rate limiter", async () => {
  const f = await fixture();
  // Same user, same address: the in-flight cap and the reserved budget hold.
  const same = await Promise.all(
    Array.from(
      { length: 40 },
      () =>
        f.req("POST", "/api/v1/auth/login", { username: "root", password: "bad", totp: "123456" }),
    ),
  );
  const statuses = same.map((r) => r.status);
  for (const r of same) await r.body?.cancel();
  assert.ok(statuses.filter((s) => s === 401).length <= 2, statuses.join(","));
  assert.equal(
    statuses.filter((s) => s === 429).length + statuses.filter((s) => s === 401).length,
    40,
  );
  // A spray of usernames from one address is capped per address too.
  const spray = await Promise.all(
    Array.from(
      { length: 40 },
      (_, i) =>
        f.req("POST", "/api/v1/auth/login", { username: `u${i}`, password: "bad", totp: "123456" }),
    ),
  );
  const evaluated = spray.filter((r) => r.status === 401).length;
  for (const r of spray) await r.body?.cancel();
  assert.ok(evaluated <= 2, String(evaluated));
  // Sequentially, no more than the per-user budget of five is ever evaluated.
  f.clock.advance(16 * 60_000);
  let checked = 0;
  for (let i = 0; i < 10; i++) {
    const r = await f.req("POST", "/api/v1/auth/login", {
      username: "root",
      password: "bad",
      totp: "123456",
    });
    if (r.status === 401) checked++;
    await r.body?.cancel();
  }
  assert.equal(checked, 5);
});

Deno.test("admin auth: no credentials 401, bad token 401, non-admin 403", async () => {
  const f = await fixture();
  assert.equal((await errorOf(await f.req("GET", "/api/v1/admin/devices"))).code, "unauthorized");
  assert.equal(
    (await errorOf(
      await f.req("GET", "/api/v1/admin/devices", undefined, {
        authorization: "Bearer pca_" + "x".repeat(40),
      }),
    )).code,
    "unauthorized",
  );
  const created = await (await f.adminReq("POST", "/api/v1/admin/users", {
    username: "bob",
    password: "a long password!",
    role: "user",
  })).json();
  assert.match(created.totp.otpauthUri, /^otpauth:\/\/totp\/Portcullis:bob\?secret=/);
  const res = await f.req("POST", "/api/v1/auth/login", {
    username: "bob",
    password: "a long password!",
    totp: totpAt(created.totp.secret, f.clock.now()),
  });
  assert.equal(res.status, 200);
  const r = await f.req("GET", "/api/v1/admin/devices", undefined, { cookie: cookieOf(res) });
  assert.equal((await errorOf(r)).code, "forbidden");
});

Deno.test("admin users and tokens: create, list, delete, bad input", async () => {
  const f = await fixture();
  const before = f.store.tableCounts();
  const bad: [unknown, string][] = [
    [{ username: "x", password: "short" }, "invalid_request"],
    [{ username: "bad name'; --", password: "long enough pw!" }, "invalid_request"],
    [{ username: "x", password: "long enough pw!", role: "god" }, "invalid_request"],
    [{ username: "root", password: "long enough pw!" }, "user_exists"],
  ];
  for (const [body, code] of bad) {
    assert.equal((await errorOf(await f.adminReq("POST", "/api/v1/admin/users", body))).code, code);
  }
  assert.deepEqual(f.store.tableCounts(), before);
  const c = await f.adminReq("POST", "/api/v1/admin/users", {
    username: "alice",
    password: "long enough pw!",
    role: "admin",
    groups: ["eng"],
  });
  assert.equal(c.status, 201);
  const { user } = await c.json();
  const list = await (await f.adminReq("GET", "/api/v1/admin/users")).json();
  assert.deepEqual(list.users.map((u: { username: string }) => u.username), ["alice", "root"]);
  assert.ok(!JSON.stringify(list).includes("scrypt$"), "no hashes in listings");
  assert.equal((await f.adminReq("DELETE", `/api/v1/admin/users/${user.id}`)).status, 200);
  assert.equal(
    (await errorOf(await f.adminReq("DELETE", `/api/v1/admin/users/${user.id}`))).code,
    "user_not_found",
  );
  assert.equal(
    (await errorOf(await f.adminReq("DELETE", `/api/v1/admin/users/${f.admin.user.id}`))).code,
    "cannot_delete_self",
  );

  const t = await (await f.adminReq("POST", "/api/v1/admin/tokens", { name: "ci" })).json();
  assert.match(t.token, /^pca_/);
  const viaToken = await f.req("GET", "/api/v1/admin/devices", undefined, {
    authorization: `Bearer ${t.token}`,
  });
  assert.equal(viaToken.status, 200);
  const tl = await (await f.adminReq("GET", "/api/v1/admin/tokens")).json();
  assert.ok(!JSON.stringify(tl).includes(t.token));
  assert.equal((await f.adminReq("DELETE", `/api/v1/admin/tokens/${t.id}`)).status, 200);
  const gone = await f.req("GET", "/api/v1/admin/devices", undefined, {
    authorization: `Bearer ${t.token}`,
  });
  assert.equal(gone.status, 401);
});

Deno.test("admin enrolment keys: create shows the key once, list has no secrets, revoke works", async () => {
  const f = await fixture();
  const res = await f.adminReq("POST", "/api/v1/admin/enrollment-keys", {
    reusable: true,
    expires: "7d",
    group: "eng",
  });
  assert.equal(res.status, 201);
  const k = await res.json();
  const payload = decodeEnrollmentKey(k.key);
  assert.equal(payload.u, "https://edge.test:8443");
  assert.equal(payload.c, "a".repeat(64));
  assert.equal(k.status, "active");
  assert.equal(k.group, "eng");
  const list = await (await f.adminReq("GET", "/api/v1/admin/enrollment-keys")).json();
  assert.equal(list.keys.length, 1);
  assert.ok(!JSON.stringify(list).includes(payload.s));
  assert.ok(!JSON.stringify(list).includes("secretHash"));
  const before = f.store.tableCounts();
  for (
    const body of [
      { expires: "forever" },
      { expires: "0h" },
      { group: "a b" },
      { reusable: "yes" },
      { extra: 1 },
    ]
  ) {
    const err = await errorOf(await f.adminReq("POST", "/api/v1/admin/enrollment-keys", body));
    assert.equal(err.status, 400, JSON.stringify(body));
  }
  assert.deepEqual(f.store.tableCounts(), before);
  const d = await f.enroll({}, k.key);
  assert.equal(d.json.group, "eng");
  const rv = await f.adminReq("POST", `/api/v1/admin/enrollment-keys/${k.id}/revoke`);
  assert.equal((await rv.json()).status, "revoked");
  const after = await f.req("POST", "/api/v1/enroll", f.enrollBody(k.key));
  assert.equal((await errorOf(after)).code, "enrollment_key_revoked");
  assert.equal(
    (await errorOf(await f.adminReq("POST", "/api/v1/admin/enrollment-keys/key_nope/revoke"))).code,
    "key_not_found",
  );
});

Deno.test("admin devices: detail with tunnel counters, disable removes the peer, enable restores, delete frees the address", async () => {
  const f = await fixture();
  const sig = f.signer();
  const a = await f.enroll({ signingPublicKey: sig.publicKey });
  const b = await f.enroll();
  f.tunnel.stats.set(a.body.wgPublicKey, {
    rxBytes: 1234,
    txBytes: 5678,
    lastHandshake: f.clock.now() - 10_000,
    transport: "udp",
    endpoint: "192.0.2.7:40000",
  });
  await f.req(
    "POST",
    "/api/v1/posture",
    signedPosture(sig, a.json.deviceId, f.clock.now(), {}),
    a.headers,
  );
  const detail = await (await f.adminReq("GET", `/api/v1/admin/devices/${a.json.deviceId}`)).json();
  assert.equal(detail.address, "100.64.0.2");
  assert.equal(detail.tunnel.state, "up");
  assert.equal(detail.tunnel.rxBytes, 1234);
  assert.equal(detail.tunnel.txBytes, 5678);
  assert.equal(detail.tunnel.transport, "udp");
  assert.equal(detail.os, "linux");
  assert.equal(detail.posture.passed, true);
  assert.ok(detail.lastSeenAt);
  const list = await (await f.adminReq("GET", "/api/v1/admin/devices")).json();
  assert.equal(list.devices.length, 2);
  assert.ok(!JSON.stringify(list).includes("credentialHash"));

  const dis = await (await f.adminReq("POST", `/api/v1/admin/devices/${a.json.deviceId}/disable`))
    .json();
  assert.equal(dis.disabled, true);
  assert.equal(dis.tunnel.state, "disabled");
  assert.ok(!f.tunnel.peers.has(a.body.wgPublicKey), "tunnel torn down at once");
  assert.equal(f.store.notifications.count("device_disabled"), 1);
  await f.adminReq("POST", `/api/v1/admin/devices/${a.json.deviceId}/enable`);
  assert.equal(f.tunnel.peers.get(a.body.wgPublicKey)?.address, "100.64.0.2");
  assert.equal((await f.req("GET", "/api/v1/policy", undefined, a.headers)).status, 200);

  assert.equal(
    (await f.adminReq("DELETE", `/api/v1/admin/devices/${a.json.deviceId}`)).status,
    200,
  );
  assert.ok(!f.tunnel.peers.has(a.body.wgPublicKey));
  assert.equal(f.store.leases.count(), 1);
  assert.equal(f.store.posture.count(), 0, "posture cascades");
  assert.equal(
    (await errorOf(await f.adminReq("GET", `/api/v1/admin/devices/${a.json.deviceId}`))).code,
    "device_not_found",
  );
  assert.equal(
    (await errorOf(await f.req("GET", "/api/v1/policy", undefined, a.headers))).code,
    "device_unauthorized",
  );
  const c = await f.enroll();
  assert.equal(c.json.address, "100.64.0.2", "released address is reused");
  assert.equal(b.json.address, "100.64.0.3");
  assert.equal(
    (await errorOf(await f.adminReq("POST", "/api/v1/admin/devices/dev_x'--/disable"))).code,
    "device_not_found",
  );
});

Deno.test("admin policy: validated with the policy schemas; bad PUT writes nothing", async () => {
  const f = await fixture();
  const rev0 = f.policy.revision();
  const before = f.store.tableCounts();
  const bad: [string, unknown, string, RegExp?][] = [
    ["app-profiles", { items: [{ name: "x" }] }, "invalid_request", /items\[0\]\.forwarding/],
    [
      "app-profiles",
      { items: [{ name: "x", forwarding: { name: "f", udpTimeoutSec: 99 } }] },
      "invalid_request",
      /udpTimeoutSec/,
    ],
    [
      "segments",
      { items: [{ name: "s", cidrs: ["not a cidr"] }] },
      "invalid_request",
      /cidrs\[0\]/,
    ],
    ["segments", { items: [{ name: "s" }, { name: "s" }] }, "invalid_request", /duplicate/],
    ["access-rules", { items: [{ name: "r", segments: [] }] }, "invalid_request"],
    [
      "posture-profiles",
      { items: [{ name: "p", checks: [{ type: "telepathy" }] }] },
      "invalid_request",
    ],
    // Without the web proxy: refused, rather than silently acting as a full tunnel.
    [
      "app-profiles",
      {
        items: [{ name: "x", forwarding: { name: "f", actions: { off_trusted: "enforce_pac" } } }],
      },
      "unsupported_forwarding_action",
      /items\[0\]\.forwarding\.actions\.off_trusted: forwarding action "enforce_pac" needs the edge's web proxy/,
    ],
    [
      "forwarding-profiles",
      { items: [{ name: "f" }, { name: "g", actions: { on_trusted: "tunnel_local_proxy" } }] },
      "unsupported_forwarding_action",
      /items\[1\]\.actions\.on_trusted: forwarding action "tunnel_local_proxy" needs the edge's web proxy/,
    ],
    ["forwarding-profiles", { items: "nope" }, "invalid_request"],
    ["forwarding-profiles", { things: [] }, "invalid_request"],
    ["nonsense", { items: [] }, "not_found"],
  ];
  for (const [col, body, code, re] of bad) {
    const err = await errorOf(await f.adminReq("PUT", `/api/v1/admin/policy/${col}`, body));
    assert.equal(err.code, code, `${col} ${JSON.stringify(body)}: ${err.message}`);
    if (re) assert.match(err.message, re);
  }
  assert.deepEqual(f.store.tableCounts(), before);
  assert.equal(f.policy.revision(), rev0);
  const ok = await f.adminReq("PUT", "/api/v1/admin/policy/access-rules", {
    items: [{ name: "eng-intranet", segments: ["intranet"], groups: ["eng"] }],
  });
  assert.equal(ok.status, 200);
  assert.equal(f.policy.revision(), rev0 + 1);
  const got = await (await f.adminReq("GET", "/api/v1/admin/policy/access-rules")).json();
  assert.equal(got.items[0].action, "allow");
  assert.equal(f.store.notifications.count("policy_updated"), 1);
});

Deno.test("admin feeds: notifications, read marks, live stream, audit log", async () => {
  const f = await fixture({ sseKeepaliveMs: 1000 });
  const res = await f.adminReq("GET", "/api/v1/admin/notifications/stream");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  await f.enroll();
  let buf = "";
  while (!buf.includes("device_enrolled")) buf += (await reader.read()).value ?? "";
  await reader.cancel();
  const list = await (await f.adminReq("GET", "/api/v1/admin/notifications")).json();
  assert.equal(list.notifications.at(-1).kind, "device_enrolled");
  const id = list.notifications.at(-1).id;
  assert.equal((await f.adminReq("POST", `/api/v1/admin/notifications/${id}/read`)).status, 200);
  assert.equal(
    (await errorOf(await f.adminReq("POST", "/api/v1/admin/notifications/abc/read"))).code,
    "notification_not_found",
  );
  assert.equal(
    (await errorOf(await f.adminReq("GET", "/api/v1/admin/notifications?limit=-1"))).code,
    "invalid_request",
  );
  const audit = await (await f.adminReq("GET", "/api/v1/admin/audit?limit=10")).json();
  assert.ok(audit.entries.some((e: { action: string }) => e.action === "device.enroll"));
});

Deno.test("OpenAPI document and Prometheus metrics", async () => {
  const f = await fixture();
  await f.enroll();
  await f.req("POST", "/api/v1/enroll", "{");
  const doc = await (await f.req("GET", "/api/v1/openapi.json")).json();
  assert.equal(doc.openapi, "3.1.0");
  const enroll = doc.paths["/api/v1/enroll"].post;
  assert.deepEqual(enroll.requestBody.content["application/json"].schema.required.sort(), [
    "connectorVersion",
    "fingerprint",
    "hostname",
    "key",
    "os",
    "osVersion",
    "signingPublicKey",
    "wgPublicKey",
  ]);
  assert.equal(enroll.requestBody.content["application/json"].schema.additionalProperties, false);
  assert.ok(doc.paths["/api/v1/admin/policy/app-profiles"].put);
  assert.ok(doc.paths["/api/v1/admin/policy/app-profiles/{name}/passwords"].put);
  assert.ok(doc.paths["/api/v1/admin/devices/{id}"].get.parameters[0].name === "id");
  const m = await (await f.req("GET", "/metrics")).text();
  assert.match(m, /portcullis_devices_enrolled 1/);
  assert.match(m, /portcullis_enrollments_total\{result="ok"\} 1/);
  assert.match(m, /portcullis_enrollments_total\{result="malformed_json"\} 1/);
  assert.match(
    m,
    /portcullis_http_requests_total\{method="POST",route="\/api\/v1\/enroll",status="200"\} 1/,
  );
  assert.match(m, /portcullis_tunnel_rx_bytes_total 0/);
  assert.doesNotMatch(m, /portcullis_access_/, "no data plane, no access metrics");
  f.ctx.dataPlaneState = () => ({
    enforcement: {
      flows: 7,
      allowed: 5,
      denied: 2,
      resets: 1,
      icmpErrors: 1,
      rejectsLimited: 0,
      unsolicited: 3,
    },
  });
  const m2 = await (await f.req("GET", "/metrics")).text();
  assert.match(m2, /portcullis_access_flows 7/);
  assert.match(m2, /portcullis_access_decisions_total\{verdict="deny"\} 2/);
  assert.match(m2, /portcullis_access_rejects_total\{kind="tcp_reset"\} 1/);
  assert.match(m2, /portcullis_access_unsolicited_total 3/);
});

Deno.test("admin notification stream ends when its session is logged out", async () => {
  const f = await fixture({ sseKeepaliveMs: 20 });
  const res = await login(f);
  const cookie = cookieOf(res);
  const { csrfToken } = await res.json();
  const stream = await f.req("GET", "/api/v1/admin/notifications/stream", undefined, { cookie });
  assert.equal(stream.status, 200);
  const [a, b] = stream.body!.tee();
  assert.equal(await endsWithin(a, 100), false, "open while the session lives");
  const out = await f.req("POST", "/api/v1/auth/logout", undefined, {
    cookie,
    "x-csrf-token": csrfToken,
  });
  assert.equal(out.status, 200);
  assert.equal(await endsWithin(b, 2000), true, "closed after logout");
});

Deno.test("admin notification stream: at most four per session or token, a fifth ends the oldest", async () => {
  const f = await fixture({ sseKeepaliveMs: 1000 });
  const cookie = cookieOf(await login(f));
  const s = await f.req("GET", "/api/v1/admin/notifications/stream", undefined, { cookie });
  const open: Response[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await f.adminReq("GET", "/api/v1/admin/notifications/stream");
    assert.equal(r.status, 200);
    open.push(r);
  }
  const [a, b] = open[0].body!.tee();
  assert.equal(await endsWithin(a, 100), false, "four streams may stay open");
  const fifth = await f.adminReq("GET", "/api/v1/admin/notifications/stream");
  assert.equal(fifth.status, 200);
  assert.equal(await endsWithin(b, 2000), true, "the oldest stream was closed");
  // The console session has its own pool and stays open.
  const [sa, sb] = s.body!.tee();
  assert.equal(await endsWithin(sa, 50), false);
  void sb.cancel();
  for (const r of [...open.slice(1), fifth]) await r.body!.cancel();
});
