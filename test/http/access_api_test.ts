/**
 * Access through the admin API: the decision log (filters, paging, bad
 * input), "why can't this device reach that?" (explain), and the edge's
 * diagnostics bundle with the decisions in it.
 */
import assert from "node:assert/strict";
import { unzipSync } from "fflate";
import { fixture } from "./helpers.ts";

async function errorOf(res: Response) {
  const body = await res.json();
  return { status: res.status, code: body.error?.code, message: body.error?.message };
}

async function setup() {
  const f = await fixture();
  await f.adminReq("PUT", "/api/v1/admin/policy/segments", {
    items: [
      { name: "app", cidrs: ["198.19.0.0/24"], ports: ["80"] },
      { name: "wiki", domains: ["wiki.corp.internal"] },
      { name: "peers", domains: ["*.clients.portcullis.internal"] },
    ],
  });
  await f.adminReq("PUT", "/api/v1/admin/policy/access-rules", {
    items: [
      { name: "eng", segments: ["app", "wiki", "peers"], machineGroups: ["engineering"] },
      {
        name: "HR apps",
        ruleOrder: 1,
        segments: ["wiki"],
        machineGroups: ["branch"],
        postureProfiles: ["disk-encrypted"],
      },
    ],
  });
  const eng = await f.enroll({ hostname: "workstation" }, f.newKey({ group: "engineering" }).key);
  const gw = await f.enroll({ hostname: "branch-gw" }, f.newKey({ group: "branch" }).key);
  return { f, eng, gw };
}

Deno.test("access API: explain says which rule decides and why", async () => {
  const { f, eng, gw } = await setup();
  const explain = async (body: unknown) => {
    const r = await f.adminReq("POST", "/api/v1/admin/access/explain", body);
    assert.equal(r.status, 200, JSON.stringify(await r.clone().json()));
    return (await r.json()) as {
      decision: { allowed: boolean; rule: string | null; reason: string };
      subject: { deviceName: string; groups: { name: string; source: string }[] };
    };
  };
  let e = await explain({ device: eng.json.deviceId, ip: "198.19.0.10", port: 80 });
  assert.equal(e.decision.allowed, true);
  assert.equal(e.decision.rule, "eng");
  assert.deepEqual(e.subject.groups, [{ name: "engineering", source: "machine" }]);
  e = await explain({ device: gw.json.deviceId, name: "wiki.corp.internal", port: 443 });
  assert.equal(e.decision.allowed, false);
  assert.equal(
    e.decision.reason,
    'denied: rule "HR apps" needs posture "disk-encrypted", the device has not reported it',
  );
  e = await explain({ device: gw.json.deviceId, ip: "8.8.8.8", port: 443 });
  assert.match(e.decision.reason, /^internet: /);
  // A private address no segment holds is not the internet: default deny, as the data plane.
  e = await explain({ device: gw.json.deviceId, ip: "10.9.9.9", port: 22 });
  assert.equal(e.decision.allowed, false);
  assert.equal(
    e.decision.reason,
    "denied: 10.9.9.9 is a private address, not the internet, and no application segment covers it (default deny)",
  );
  // Another device: client-to-client is off, then the peer has no valid name.
  e = await explain({ device: eng.json.deviceId, ip: gw.json.address, protocol: "icmp" });
  assert.equal(e.decision.reason, "denied: client-to-client is disabled");
  await f.adminReq("PUT", "/api/v1/admin/policy/client-to-client", { enabled: true });
  e = await explain({ device: eng.json.deviceId, ip: gw.json.address, protocol: "icmp" });
  assert.equal(e.decision.reason, 'denied: device "branch-gw" has no valid registered host name');
  await f.req(
    "POST",
    "/api/v1/c2c/register",
    { fqdn: "gw.clients.portcullis.internal" },
    gw.headers,
  );
  e = await explain({ device: eng.json.deviceId, ip: gw.json.address, protocol: "icmp" });
  assert.equal(e.decision.rule, "eng");

  const bad: [unknown, number, string, RegExp][] = [
    [
      { device: "dev_nope", ip: "1.2.3.4" },
      404,
      "device_not_found",
      /Cannot find device "dev_nope"/,
    ],
    [{ device: eng.json.deviceId }, 400, "invalid_request", /give an ip or a name/],
    [
      { device: eng.json.deviceId, ip: "300.1.1.1" },
      400,
      "invalid_request",
      /ip: expected an IPv4 or IPv6 address/,
    ],
    [{ device: eng.json.deviceId, ip: "1.1.1.1", port: 0 }, 400, "invalid_request", /port/],
    [
      { device: eng.json.deviceId, ip: "1.1.1.1", protocol: "gre" },
      400,
      "invalid_request",
      /protocol/,
    ],
    [
      { device: eng.json.deviceId, ip: "1.1.1.1", extra: 1 },
      400,
      "invalid_request",
      /unknown field "extra"/,
    ],
  ];
  for (const [body, status, code, re] of bad) {
    const err = await errorOf(await f.adminReq("POST", "/api/v1/admin/access/explain", body));
    assert.equal(err.status, status, JSON.stringify(body));
    assert.equal(err.code, code);
    assert.match(err.message, re);
  }
});

Deno.test("access API: the decision log filters by device, user, verdict, rule and time, and pages", async () => {
  const { f, eng, gw } = await setup();
  const t0 = f.clock.now();
  f.store.transaction(() => {
    for (let i = 0; i < 12; i++) {
      const mine = i % 2 === 0;
      f.store.decisions.insert({
        at: t0 + i * 1000,
        deviceId: mine ? eng.json.deviceId : gw.json.deviceId,
        deviceName: mine ? "workstation" : "branch-gw",
        user: i === 4 ? "carol" : null,
        src: mine ? eng.json.address : gw.json.address,
        dst: i === 3 ? "10.20.0.10" : "198.19.0.10",
        port: 80,
        protocol: "tcp",
        name: i === 5 ? "wiki.corp.internal" : null,
        verdict: mine ? "allow" : "deny",
        rule: mine ? "eng" : null,
        segments: ["app"],
        reason: mine ? "allowed: x" : "denied: y",
      });
    }
  });
  const list = async (q: string) => {
    const r = await f.adminReq("GET", `/api/v1/admin/decisions${q}`);
    assert.equal(r.status, 200, q);
    return (await r.json()) as {
      decisions: { at: string; verdict: string; id: number }[];
      next: number | null;
    };
  };
  assert.equal((await list("")).decisions.length, 12);
  assert.ok(
    (await list(`?device=${eng.json.deviceId}`)).decisions.every((d) => d.verdict === "allow"),
  );
  assert.equal((await list("?verdict=deny")).decisions.length, 6);
  assert.equal((await list("?rule=eng")).decisions.length, 6);
  assert.equal((await list("?user=carol")).decisions.length, 1);
  assert.equal((await list("?dst=10.20.0.10")).decisions.length, 1);
  assert.equal((await list("?dst=198.19.0.10")).decisions.length, 11);
  assert.equal((await list("?dst=WIKI.corp.internal")).decisions.length, 1, "by name");
  assert.equal((await list("?dst=198.19.0.10&verdict=deny")).decisions.length, 5);
  const since = new Date(t0 + 5000).toISOString(), until = new Date(t0 + 8000).toISOString();
  assert.deepEqual(
    (await list(`?since=${since}&until=${until}`)).decisions.map((d) => d.at),
    [7000, 6000, 5000].map((x) => new Date(t0 + x).toISOString()),
  );
  const p1 = await list("?limit=5");
  assert.equal(p1.decisions.length, 5);
  assert.ok(p1.next);
  const p2 = await list(`?limit=5&before=${p1.next}`);
  assert.equal(p2.decisions[0].id, p1.decisions[4].id - 1);
  for (
    const [q, re] of [
      ["?verdict=maybe", /verdict/],
      ["?limit=9999", /limit/],
      ["?since=yesterday", /since/],
      ["?before=-1", /before/],
      ["?colour=red", /unknown field "colour"/],
    ] as const
  ) {
    const err = await errorOf(await f.adminReq("GET", `/api/v1/admin/decisions${q}`));
    assert.equal(err.status, 400, q);
    assert.equal(err.code, "invalid_request");
    assert.match(err.message, re);
  }
  // Admins only.
  assert.equal((await f.req("GET", "/api/v1/admin/decisions")).status, 401);

  // The diagnostics bundle carries the decisions, and no secrets.
  const zipRes = await f.adminReq("GET", "/api/v1/admin/diagnostics");
  assert.equal(zipRes.status, 200);
  assert.equal(zipRes.headers.get("content-type"), "application/zip");
  const files = unzipSync(new Uint8Array(await zipRes.arrayBuffer()));
  const lines = new TextDecoder().decode(files["decisions.jsonl"]).trim().split("\n");
  assert.equal(lines.length, 12);
  assert.equal(JSON.parse(lines[0]).reason, "denied: y");
  const manifest = JSON.parse(new TextDecoder().decode(files["manifest.json"]));
  assert.equal(manifest.role, "edge");
  assert.deepEqual(manifest.records, { "decisions.jsonl": 12 });
  const all = Object.values(files).map((b) => new TextDecoder().decode(b)).join("\n");
  assert.ok(!all.includes(eng.json.credential), "no device credential in the bundle");
  assert.equal(f.store.audit.count("diagnostics.export"), 1);
});
