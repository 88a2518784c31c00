/**
 * DLP over the REST API: dictionaries (bad input named by field, RE2
 * refusals), EDM uploads that keep no cell of the CSV, rules that must name
 * existing dictionaries (refusals leave nothing changed), the device's DLP
 * bundle with ETag and subject filtering, signed incident reports (bad
 * signature, another device, garbage, replays, raw samples withheld),
 * incident listing and export, and the inspect tool.
 */
import assert from "node:assert/strict";
import { incidentSigningMessage } from "../../src/dlp/report.ts";
import { fixture } from "./helpers.ts";

type Fx = Awaited<ReturnType<typeof fixture>>;

async function setup(fx: Fx) {
  for (
    const [name, body] of [
      ["cards", { kind: "credit_card", threshold: 2 }],
      ["ssn", { kind: "us_ssn" }],
      ["customers", { kind: "edm", minColumns: 2 }],
    ] as const
  ) {
    const r = await fx.adminReq("PUT", `/api/v1/admin/dlp/dictionaries/${name}`, body);
    assert.equal(r.status, 200, await r.clone().text());
  }
  const csv = "name,account\nAlice Martin,AC-11112222\nBruno Schmidt,AC-33334444\n";
  const up = await fx.app.request("/api/v1/admin/dlp/dictionaries/customers/edm", {
    method: "POST",
    headers: { authorization: `Bearer ${fx.token}`, "content-type": "text/csv" },
    body: csv,
  });
  assert.equal(up.status, 200, await up.clone().text());
  const rules = await fx.adminReq("PUT", "/api/v1/admin/dlp/rules", {
    items: [
      {
        name: "Cards on USB",
        channels: ["removable_media"],
        dictionaries: ["cards"],
        action: "block",
      },
      {
        name: "Sales SSN",
        groups: ["sales"],
        channels: ["removable_media", "network_share"],
        dictionaries: ["ssn", "customers"],
        action: "notify",
      },
    ],
  });
  assert.equal(rules.status, 200, await rules.clone().text());
}

Deno.test("DLP admin API: dictionaries, EDM upload and rules; bad input is refused and changes nothing", async () => {
  const fx = await fixture();
  await setup(fx);
  const list = await (await fx.adminReq("GET", "/api/v1/admin/dlp/dictionaries")).json();
  const edm = list.dictionaries.find((d: { def: { name: string } }) => d.def.name === "customers");
  assert.deepEqual(edm.edm.columns, ["name", "account"]);
  assert.equal(edm.edm.rows, 2);
  // No cell of the CSV is anywhere in the database.
  const dump = JSON.stringify(fx.store.db.all("SELECT * FROM dlp_dictionaries")) +
    JSON.stringify(fx.store.db.all("SELECT * FROM audit_log"));
  for (const cell of ["AC-11112222", "Alice Martin", "alice martin", "ac-33334444"]) {
    assert.ok(!dump.includes(cell), `${cell} is not stored`);
  }
  const rev = fx.ctx.dlp.revision();
  const refusals: [string, string, unknown, number, string, RegExp][] = [
    [
      "PUT",
      "/api/v1/admin/dlp/dictionaries/bad",
      { kind: "regex", pattern: "(a)\\1" },
      400,
      "invalid_pattern",
      /RE2|backreference|invalid/i,
    ],
    ["PUT", "/api/v1/admin/dlp/dictionaries/bad", { kind: "nope" }, 400, "invalid_request", /kind/],
    [
      "PUT",
      "/api/v1/admin/dlp/dictionaries/bad",
      { kind: "keywords" },
      400,
      "invalid_request",
      /terms: a keyword dictionary needs terms/,
    ],
    [
      "PUT",
      "/api/v1/admin/dlp/dictionaries/bad",
      { kind: "email", threshold: 0 },
      400,
      "invalid_request",
      /threshold/,
    ],
    [
      "PUT",
      "/api/v1/admin/dlp/dictionaries/bad%2F..",
      { kind: "email" },
      400,
      "invalid_request",
      /name/,
    ],
    [
      "PUT",
      "/api/v1/admin/dlp/rules",
      {
        items: [{ name: "x", channels: ["printing"], dictionaries: ["missing"], action: "block" }],
      },
      400,
      "unknown_dictionary",
      /"missing"/,
    ],
    [
      "PUT",
      "/api/v1/admin/dlp/rules",
      { items: [{ name: "x", channels: ["fax"], dictionaries: ["cards"], action: "block" }] },
      400,
      "invalid_request",
      /items\[0\]\.channels\[0\]/,
    ],
    [
      "DELETE",
      "/api/v1/admin/dlp/dictionaries/cards",
      undefined,
      409,
      "dictionary_in_use",
      /rule "Cards on USB" uses it/,
    ],
    [
      "DELETE",
      "/api/v1/admin/dlp/dictionaries/none",
      undefined,
      404,
      "dictionary_not_found",
      /"none"/,
    ],
    [
      "GET",
      "/api/v1/admin/dlp/incidents?channel=fax",
      undefined,
      400,
      "invalid_request",
      /channel/,
    ],
    [
      "GET",
      "/api/v1/admin/dlp/incidents/dlp_nope",
      undefined,
      404,
      "incident_not_found",
      /dlp_nope/,
    ],
  ];
  for (const [method, path, body, status, code, msg] of refusals) {
    const r = await fx.adminReq(method, path, body);
    const j = await r.json();
    assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(j)}`);
    assert.equal(j.error.code, code, path);
    assert.match(j.error.message, msg, path);
  }
  for (
    const [ct, body, status, code] of [
      ["application/json", "{}", 415, "unsupported_media_type"],
      ["text/csv", 'a,b\n"x,1\n', 400, "invalid_csv"],
      ["text/csv", new Uint8Array([0xff, 0xfe, 0x00]), 400, "invalid_csv"],
    ] as const
  ) {
    const r = await fx.app.request("/api/v1/admin/dlp/dictionaries/customers/edm", {
      method: "POST",
      headers: { authorization: `Bearer ${fx.token}`, "content-type": ct },
      body,
    });
    assert.equal(r.status, status);
    assert.equal((await r.json()).error.code, code);
  }
  assert.equal(fx.ctx.dlp.revision(), rev, "no refusal changed the policy");
  assert.equal((await fx.req("GET", "/api/v1/admin/dlp/rules")).status, 401);
});

Deno.test("DLP device API: bundle by subject with ETag; signed incidents, refusals and replays", async () => {
  const fx = await fixture();
  await setup(fx);
  const signer = fx.signer();
  const key = fx.newKey({ group: "sales" }).key;
  const dev = await fx.enroll({ signingPublicKey: signer.publicKey }, key);
  const other = await fx.enroll();

  const res = await fx.req("GET", "/api/v1/dlp/policy", undefined, dev.headers);
  assert.equal(res.status, 200);
  const { dlp } = await res.json();
  assert.deepEqual(dlp.rules.map((r: { name: string }) => r.name), ["Cards on USB", "Sales SSN"]);
  const edm = dlp.dictionaries.find((d: { def: { name: string } }) => d.def.name === "customers");
  assert.ok(edm.edm.key && edm.edm.cells.length === 4, "endpoint EDM needs the index and key");
  const etag = res.headers.get("etag")!;
  assert.equal(
    (await fx.req("GET", "/api/v1/dlp/policy", undefined, {
      ...dev.headers,
      "if-none-match": etag,
    })).status,
    304,
  );
  // A device without the group gets only the rule for everyone.
  const o = await (await fx.req("GET", "/api/v1/dlp/policy", undefined, other.headers)).json();
  assert.deepEqual(o.dlp.rules.map((r: { name: string }) => r.name), ["Cards on USB"]);
  assert.deepEqual(o.dlp.dictionaries.map((d: { def: { name: string } }) => d.def.name), ["cards"]);
  assert.equal((await fx.req("GET", "/api/v1/dlp/policy")).status, 401);

  const report = (over: Record<string, unknown> = {}) => ({
    reportId: "evt-0001-abcd",
    deviceId: dev.json.deviceId,
    occurredAt: new Date(fx.clock.now()).toISOString(),
    channel: "removable_media",
    fileName: "/media/usb/refunds.docx",
    fileSha256: "ab".repeat(32),
    fileSize: 12345,
    fileType: "docx",
    rule: "Cards on USB",
    action: "block",
    outcome: "quarantined",
    matches: [{
      dictionary: "cards",
      kind: "credit_card",
      count: 5,
      samples: ["4111 **** **** 1111"],
      triggered: true,
    }],
    ...over,
  });
  const send = (
    payload: string,
    signature = signer.sign("portcullis-dlp-incident-v1\n" + payload),
    h: Record<string, string> = dev.headers,
  ) => fx.req("POST", "/api/v1/dlp/incidents", { payload, signature }, h);
  assert.deepEqual(
    incidentSigningMessage("x"),
    new TextEncoder().encode("portcullis-dlp-incident-v1\nx"),
  );

  const p1 = JSON.stringify(report());
  const first = await send(p1);
  assert.equal(first.status, 201, await first.clone().text());
  const { id } = await first.json();
  const again = await send(p1);
  assert.equal(again.status, 200);
  assert.deepEqual(await again.json().then((j) => [j.id, j.duplicate]), [id, true]);

  const before = fx.store.tableCounts();
  const bad: [string, string | undefined, Record<string, string>, number, string][] = [
    [
      JSON.stringify(report({ reportId: "evt-0002-abcd" })),
      "A".repeat(86) + "==",
      dev.headers,
      400,
      "incident_signature_invalid",
    ],
    [
      JSON.stringify(report({ reportId: "evt-0003-abcd" })),
      undefined,
      other.headers,
      400,
      "incident_signature_invalid",
    ],
    [
      JSON.stringify(report({ reportId: "evt-0004-abcd", deviceId: other.json.deviceId })),
      undefined,
      dev.headers,
      403,
      "incident_device_mismatch",
    ],
    ["not json", undefined, dev.headers, 400, "invalid_request"],
    [
      JSON.stringify(report({ reportId: "evt-0005-abcd", channel: "fax" })),
      undefined,
      dev.headers,
      400,
      "invalid_request",
    ],
    [JSON.stringify(report({ reportId: "x" })), undefined, dev.headers, 400, "invalid_request"],
    // SaaS data at rest is the edge's own channel: a device cannot claim findings there.
    [
      JSON.stringify(report({ reportId: "evt-0007-abcd", channel: "saas_at_rest" })),
      undefined,
      dev.headers,
      400,
      "invalid_request",
    ],
  ];
  for (const [payload, sig, headers, status, code] of bad) {
    const r = await send(payload, sig, headers);
    assert.equal(r.status, status, payload);
    assert.equal((await r.json()).error.code, code, payload);
  }
  const garbage = await fx.req("POST", "/api/v1/dlp/incidents", '{"payload": 1', dev.headers);
  assert.equal(garbage.status, 400);
  assert.deepEqual(fx.store.tableCounts(), before, "refused reports store nothing");

  // A raw value in a sample (a buggy or hostile connector) is withheld by the edge.
  const raw = JSON.stringify(report({
    reportId: "evt-0006-abcd",
    matches: [{
      dictionary: "cards",
      kind: "credit_card",
      count: 1,
      samples: ["4111111111111111"],
      triggered: true,
    }],
  }));
  const r6 = await send(raw);
  assert.equal(r6.status, 201);
  const stored = fx.ctx.dlp.incident((await r6.json()).id);
  assert.deepEqual(stored.matches[0].samples, ["[withheld]"]);

  const list =
    await (await fx.adminReq("GET", "/api/v1/admin/dlp/incidents?channel=removable_media")).json();
  assert.equal(list.incidents.length, 2);
  assert.equal(list.incidents[1].hostname, dev.body.hostname);
  assert.equal(list.incidents[1].outcome, "quarantined");
  const exp = await fx.adminReq("GET", "/api/v1/admin/dlp/incidents/export");
  assert.match(exp.headers.get("content-disposition")!, /dlp-incidents\.json/);
  const text = await exp.text();
  assert.equal(JSON.parse(text).incidents.length, 2);
  assert.ok(!text.includes("4111111111111111"));
  const notes = fx.store.notifications.list({ afterId: 0, limit: 100 }).filter((n) =>
    n.kind === "dlp_incident"
  );
  assert.equal(notes.length, 2);
  assert.match(
    notes[0].message,
    /DLP blocked "\/media\/usb\/refunds.docx" on removable media .*rule "Cards on USB" found 5 credit card numbers \(cards\)/,
  );
});

Deno.test("DLP inspect tool: what the policy would do with a file, for a user and channel", async () => {
  const fx = await fixture();
  await setup(fx);
  const post = (text: string, fields: Record<string, string>) => {
    const form = new FormData();
    form.append("file", new File([text], "list.txt"));
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    return fx.app.request("/api/v1/admin/dlp/inspect", {
      method: "POST",
      headers: { authorization: `Bearer ${fx.token}` },
      body: form,
    });
  };
  const cards = "4111111111111111 and 5555555555554444";
  const j = await (await post(cards, { channel: "removable_media" })).json();
  assert.equal(j.action, "block");
  assert.equal(j.rule, "Cards on USB");
  assert.deepEqual(j.matches[0].samples, ["4111 **** **** 1111", "5555 **** **** 4444"]);
  assert.equal(
    (await (await post("4111111111111111", { channel: "removable_media" })).json()).action,
    "allow",
    "threshold 2",
  );
  assert.equal((await (await post(cards, { channel: "web_upload" })).json()).action, "allow");
  const edm =
    await (await post("Alice Martin AC-11112222", { channel: "network_share", groups: "sales" }))
      .json();
  assert.deepEqual([edm.action, edm.rule], ["notify", "Sales SSN"]);
  const bad = await post(cards, { channel: "fax" });
  assert.equal(bad.status, 400);
  assert.equal(fx.store.dlpIncidents.count(), 0, "the tool records nothing");
});
