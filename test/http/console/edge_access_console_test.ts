/**
 * The edge console's Private access pages through the console app (forms in,
 * HTML out) against the real admin API and store: segments, ordered rules,
 * posture profiles, the decision log filters and the "why?" view, and bad
 * input answered with a 4xx and the API's sentence, leaving the store as it was.
 */
import assert from "node:assert/strict";
import { consoleFixture } from "./edge_fixture.ts";
import { CHECK_FIELDS, checkFromForm } from "../../../src/http/console/edge_access_views.tsx";

async function setup() {
  const f = await consoleFixture();
  await f.login();
  const csrf = await f.csrf();
  const policy = async (col: string) =>
    (await (await f.adminReq("GET", `/api/v1/admin/policy/${col}`)).json()).items;
  return { f, csrf, policy };
}

Deno.test("access console: segments are added, edited and deleted; bad input is a 400 with the sentence", async () => {
  const { f, csrf, policy } = await setup();
  let res = await f.post("/access/segments", {
    _csrf: csrf,
    name: "lab",
    domains: "Wiki.Corp.Internal",
    cidrs: "10.20.0.0/24\n10.30.0.5/32",
    ports: "80, 8000-8100",
    "proto.tcp": "on",
  });
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "/access/segments?msg=segment_saved");
  assert.deepEqual(await policy("segments"), [{
    name: "lab",
    domains: ["wiki.corp.internal"],
    cidrs: ["10.20.0.0/24", "10.30.0.5/32"],
    ports: ["80", "8000-8100"],
    protocols: ["tcp"],
  }]);
  let html = await (await f.get("/access/segments?msg=segment_saved")).text();
  assert.match(html, /id="segment-lab"/);
  assert.match(html, /10\.20\.0\.0\/24, 10\.30\.0\.5\/32/);
  // Edit: the form comes back filled in.
  html = await (await f.get("/access/segments?edit=lab")).text();
  assert.match(html, /name="original" value="lab"/);
  assert.match(html, /value="80, 8000-8100"/);
  res = await f.post("/access/segments", {
    _csrf: csrf,
    original: "lab",
    name: "lab",
    cidrs: "10.20.0.0/24",
    "proto.tcp": "on",
    "proto.udp": "on",
  });
  assert.equal(res.status, 303);
  assert.deepEqual((await policy("segments"))[0].protocols, ["tcp", "udp"]);

  // Bad input: a 400 naming the value, nothing stored.
  const bad: [Record<string, string>, number, RegExp][] = [
    [{ name: "x", cidrs: "10.0.0.0/33" }, 400, /10\.0\.0\.0\/33/],
    [{ name: "x", ports: "http" }, 400, /items\[1\]\.ports\[0\]/],
    [{ name: "" }, 400, /items\[1\]\.name/],
    [{ name: "lab" }, 409, /already exists/],
  ];
  for (const [form, status, re] of bad) {
    const r = await f.post("/access/segments", { _csrf: csrf, "proto.tcp": "on", ...form });
    assert.equal(r.status, status, JSON.stringify(form));
    const text = await r.text();
    const at = text.indexOf('id="access-error"');
    assert.ok(at > 0, "the error is shown");
    assert.match(text.slice(at, at + 300), re, JSON.stringify(form));
    // The form comes back with what was typed, as a new segment.
    if (form.cidrs) assert.match(text, />10\.0\.0\.0\/33<\/textarea>/);
    assert.match(text, /name="original" value=""/);
  }
  assert.equal((await policy("segments")).length, 1, "nothing half-written");
  // A wrong CSRF token changes nothing.
  res = await f.post("/access/segments", { _csrf: "nope", name: "y", "proto.tcp": "on" });
  assert.equal(res.status, 403);
  assert.equal((await policy("segments")).length, 1);

  // A segment a rule uses cannot be deleted; once unused it can.
  await f.adminReq("PUT", "/api/v1/admin/policy/access-rules", {
    items: [{ name: "r1", segments: ["lab"] }],
  });
  res = await f.post("/access/segments/lab/delete", { _csrf: csrf });
  assert.equal(res.status, 409);
  assert.match(await res.text(), /rules r1 use it/);
  await f.adminReq("PUT", "/api/v1/admin/policy/access-rules", { items: [] });
  res = await f.post("/access/segments/lab/delete", { _csrf: csrf });
  assert.equal(res.status, 303);
  assert.deepEqual(await policy("segments"), []);
});

Deno.test("access console: rules are ordered, moved up and down, edited and deleted", async () => {
  const { f, csrf, policy } = await setup();
  const dev = await f.enroll({ hostname: "workstation" }, f.newKey({ group: "engineering" }).key);
  await f.adminReq("PUT", "/api/v1/admin/policy/segments", {
    items: [{ name: "app", cidrs: ["198.19.0.0/24"] }, { name: "wiki", domains: ["wiki.x"] }],
  });
  await f.adminReq("PUT", "/api/v1/admin/policy/posture-profiles", {
    items: [{ name: "disk", checks: [{ type: "disk_encryption" }] }],
  });
  const add = (name: string, extra: Record<string, string>) =>
    f.post("/access/rules", { _csrf: csrf, name, action: "allow", ...extra });
  assert.equal(
    (await add("eng", {
      "seg.app": "on",
      machineGroups: "engineering",
      [`dev.${dev.json.deviceId}`]: "on",
      "pp.disk": "on",
    })).status,
    303,
  );
  assert.equal((await add("hr", { "seg.wiki": "on", groups: "hr, people" })).status, 303);
  assert.equal(
    (await add("block", { "seg.app": "on", "seg.wiki": "on", action: "deny" })).status,
    303,
  );
  const names = async () =>
    (await policy("access-rules")).map((r: { name: string; ruleOrder: number }) =>
      `${r.ruleOrder}:${r.name}`
    );
  assert.deepEqual(await names(), ["1:eng", "2:hr", "3:block"]);
  const eng = (await policy("access-rules"))[0];
  assert.deepEqual(eng.devices, [dev.json.deviceId]);
  assert.deepEqual(eng.postureProfiles, ["disk"]);
  assert.deepEqual((await policy("access-rules"))[1].groups, ["hr", "people"]);

  assert.equal((await f.post("/access/rules/block/up", { _csrf: csrf })).status, 303);
  assert.deepEqual(await names(), ["1:eng", "2:block", "3:hr"]);
  assert.equal((await f.post("/access/rules/eng/down", { _csrf: csrf })).status, 303);
  assert.deepEqual(await names(), ["1:block", "2:eng", "3:hr"]);
  // The page lists them in that order, with the device by name and move buttons where they apply.
  const html = await (await f.get("/access/rules")).text();
  assert.ok(html.indexOf('id="rule-block"') < html.indexOf('id="rule-eng"'));
  assert.match(html, /workstation/);
  assert.match(html, /The group of the enrolment key · known: engineering/, "key groups offered");
  assert.doesNotMatch(html, /action="\/access\/rules\/block\/up"/);
  assert.doesNotMatch(html, /action="\/access\/rules\/hr\/down"/);

  // Edit keeps the place in the order.
  const r = await f.post("/access/rules", {
    _csrf: csrf,
    original: "hr",
    name: "hr",
    action: "deny",
    "seg.wiki": "on",
  });
  assert.equal(r.status, 303);
  assert.equal((await policy("access-rules"))[2].action, "deny");
  // A rule with no segment: the API's sentence, a 400, nothing changed.
  const bad = await add("empty", {});
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /items\[3\]\.segments/);
  assert.equal((await policy("access-rules")).length, 3);
  assert.equal((await f.post("/access/rules/nope/up", { _csrf: csrf })).status, 409);
  assert.equal((await f.post("/access/rules/eng/delete", { _csrf: csrf })).status, 303);
  assert.deepEqual(await names(), ["1:block", "2:hr"]);
});

Deno.test("access console: posture profiles keep the checks the form does not edit", async () => {
  const { f, csrf, policy } = await setup();
  let res = await f.post("/access/posture", {
    _csrf: csrf,
    name: "managed",
    "chk.file_exists": "on",
    "file_exists.path": "/etc/managed",
    "chk.disk_encryption": "on",
    "process_running.name": "ignored: not ticked",
  });
  assert.equal(res.status, 303);
  assert.deepEqual(await policy("posture-profiles"), [{
    name: "managed",
    checks: [{ type: "file_exists", path: "/etc/managed" }, { type: "disk_encryption" }],
    validityMinutes: 15,
    reevaluateMinutes: 5,
  }]);
  // A second file check set through the API survives an edit in the form.
  await f.adminReq("PUT", "/api/v1/admin/policy/posture-profiles", {
    items: [{
      name: "managed",
      checks: [{ type: "file_exists", path: "/a" }, { type: "file_exists", path: "/b" }],
    }],
  });
  const html = await (await f.get("/access/posture?edit=managed")).text();
  assert.match(html, /value="\/a"/);
  const extra = /name="extra" value="([^"]*)"/.exec(html)![1].replaceAll("&quot;", '"');
  res = await f.post("/access/posture", {
    _csrf: csrf,
    original: "managed",
    name: "managed",
    extra,
    "chk.file_exists": "on",
    "file_exists.path": "/a2",
    "chk.firewall_enabled": "on",
  });
  assert.equal(res.status, 303);
  assert.deepEqual((await policy("posture-profiles"))[0].checks, [
    { type: "file_exists", path: "/a2" },
    { type: "firewall_enabled" },
    { type: "file_exists", path: "/b" },
  ]);
  // No check at all, or garbage in the hidden field: 400, nothing changed.
  res = await f.post("/access/posture", { _csrf: csrf, name: "none" });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /items\[1\]\.checks/);
  res = await f.post("/access/posture", {
    _csrf: csrf,
    name: "g",
    extra: "{",
    "chk.disk_encryption": "on",
  });
  assert.equal(res.status, 400);
  assert.equal((await policy("posture-profiles")).length, 1);
  // In use by a rule: not deleted.
  await f.adminReq("PUT", "/api/v1/admin/policy/segments", {
    items: [{ name: "s", cidrs: ["10.0.0.0/8"] }],
  });
  await f.adminReq("PUT", "/api/v1/admin/policy/access-rules", {
    items: [{ name: "needs", segments: ["s"], postureProfiles: ["managed"] }],
  });
  assert.equal((await f.post("/access/posture/managed/delete", { _csrf: csrf })).status, 409);
});

Deno.test("access console: the decision log filters and the why view shows the deciding rule", async () => {
  const { f } = await setup();
  await f.adminReq("PUT", "/api/v1/admin/policy/segments", {
    items: [{ name: "app", cidrs: ["198.19.0.0/24"], ports: ["80"] }],
  });
  await f.adminReq("PUT", "/api/v1/admin/policy/access-rules", {
    items: [{ name: "eng app", segments: ["app"], machineGroups: ["engineering"] }],
  });
  const eng = await f.enroll({ hostname: "workstation" }, f.newKey({ group: "engineering" }).key);
  const gw = await f.enroll({ hostname: "branch-gw" }, f.newKey({ group: "branch" }).key);
  const t0 = f.clock.now();
  f.store.transaction(() => {
    for (const [i, [d, verdict]] of ([[eng, "allow"], [gw, "deny"]] as const).entries()) {
      f.store.decisions.insert({
        at: t0 + i,
        deviceId: d.json.deviceId,
        deviceName: i === 0 ? "workstation" : "branch-gw",
        user: null,
        src: d.json.address,
        dst: "198.19.0.10",
        port: 80,
        protocol: "tcp",
        name: null,
        verdict,
        rule: verdict === "allow" ? "eng app" : null,
        segments: ["app"],
        reason: verdict === "allow" ? 'allowed: rule "eng app"' : "denied: no rule allows it",
      });
    }
  });
  let html = await (await f.get("/access/decisions")).text();
  assert.equal(html.match(/data-verdict=/g)?.length, 2);
  html = await (await f.get("/access/decisions?verdict=deny&dst=198.19.0.10")).text();
  assert.equal(html.match(/data-verdict="deny"/g)?.length, 1);
  assert.doesNotMatch(html, /data-verdict="allow"/);
  html = await (await f.get(`/access/decisions?device=${eng.json.deviceId}`)).text();
  assert.match(html, /allowed: rule &quot;eng app&quot;|allowed: rule "eng app"/);
  assert.doesNotMatch(html, /id="decisions-older"/, "one page only");
  // Past 200 rows: an "older" link under the same filters.
  f.store.transaction(() => {
    for (let i = 0; i < 205; i++) {
      f.store.decisions.insert({
        at: t0 + 10 + i,
        deviceId: gw.json.deviceId,
        deviceName: "branch-gw",
        user: null,
        src: gw.json.address,
        dst: "198.19.0.11",
        port: 80,
        protocol: "tcp",
        name: null,
        verdict: "deny",
        rule: null,
        segments: ["app"],
        reason: "denied: no rule allows it",
      });
    }
  });
  html = await (await f.get("/access/decisions?dst=198.19.0.11")).text();
  assert.equal(html.match(/data-verdict=/g)?.length, 200);
  const older = /href="([^"]+)" class="btn btn-secondary btn-small" id="decisions-older"/
    .exec(html)?.[1];
  assert.ok(older, "an older link");
  html = await (await f.get(older.replaceAll("&amp;", "&"))).text();
  assert.equal(html.match(/data-verdict=/g)?.length, 5);
  const bad = await f.get("/access/decisions?verdict=maybe");
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /verdict/);

  // Why: the evaluator's answer for each device.
  const why = async (q: Record<string, string>) => {
    const r = await f.get(`/access/why?${new URLSearchParams(q)}`);
    return { status: r.status, html: await r.text() };
  };
  let w = await why({
    device: eng.json.deviceId,
    dest: "198.19.0.10",
    port: "80",
    protocol: "tcp",
  });
  assert.equal(w.status, 200);
  assert.match(w.html, /id="why-rule">eng app</);
  w = await why({ device: gw.json.deviceId, dest: "198.19.0.10", port: "80", protocol: "tcp" });
  assert.match(w.html, /id="why-verdict"><span class="dot" aria-hidden="true"><\/span>Denied/);
  assert.match(w.html, /id="why-reason">denied: /);
  w = await why({ device: gw.json.deviceId, dest: "198.19.0.10", port: "99999", protocol: "tcp" });
  assert.equal(w.status, 400);
  assert.match(w.html, /port/);
  w = await why({ device: "dev_nope", dest: "198.19.0.10", protocol: "tcp" });
  assert.equal(w.status, 404);
  // Without a query: only the form.
  w = await why({});
  assert.equal(w.status, 200);
  assert.doesNotMatch(w.html, /id="why-result"/);
});

Deno.test("access console: posture form fields follow the policy model's schema (table)", () => {
  assert.deepEqual(CHECK_FIELDS.file_exists, [
    { name: "path", kind: "string", optional: false },
    { name: "sha256", kind: "string", optional: true },
  ]);
  assert.deepEqual(CHECK_FIELDS.disk_encryption, []);
  const fields = [
    { name: "name", kind: "string", optional: false },
    { name: "minutes", kind: "number", optional: true },
    { name: "strict", kind: "boolean", optional: true },
    { name: "issuers", kind: "list", optional: true },
  ] as const;
  const table: [Record<string, string>, unknown][] = [
    [{}, null],
    [{ "chk.x": "on" }, { type: "x", strict: false }],
    [
      {
        "chk.x": "on",
        "x.name": " edr ",
        "x.minutes": "15",
        "x.strict": "on",
        "x.issuers": "A, B\nC",
      },
      { type: "x", name: "edr", minutes: 15, strict: true, issuers: ["A", "B", "C"] },
    ],
    [{ "chk.x": "on", "x.minutes": "soon" }, { type: "x", minutes: "soon", strict: false }],
  ];
  for (const [form, want] of table) {
    assert.deepEqual(checkFromForm(form, "x", fields), want, JSON.stringify(form));
  }
});

Deno.test("access console: a posture profile's validity and re-evaluation minutes are edited in the form", async () => {
  const { f, csrf, policy } = await setup();
  let res = await f.post("/access/posture", {
    _csrf: csrf,
    name: "timed",
    validityMinutes: "30",
    reevaluateMinutes: "2",
    "chk.edr": "on",
    "edr.service": "falcon-sensor",
  });
  assert.equal(res.status, 303);
  const [p] = await policy("posture-profiles");
  assert.equal(p.validityMinutes, 30);
  assert.equal(p.reevaluateMinutes, 2);
  assert.deepEqual(p.checks, [{ type: "edr", service: "falcon-sensor" }]);
  const html = await (await f.get("/access/posture?edit=timed")).text();
  assert.match(html, /id="p-validity"[^>]*value="30"/);
  assert.match(html, /valid 30 min, evaluated every 2 min/);
  // Out of range: 400 naming the field, nothing changed.
  res = await f.post("/access/posture", {
    _csrf: csrf,
    original: "timed",
    name: "timed",
    validityMinutes: "0",
    "chk.disk_encryption": "on",
  });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /validityMinutes/);
  assert.equal((await policy("posture-profiles"))[0].validityMinutes, 30);
});
