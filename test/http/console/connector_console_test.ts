import assert from "node:assert/strict";
import { unzipSync } from "fflate";
import { readPcap } from "../../../src/packet/pcap.ts";
import { buildIcmpEcho } from "../../../src/packet/build.ts";
import { setLogSinks } from "../../../src/log.ts";
import { system, waitFor } from "./harness.ts";

setLogSinks([]);

const HOST = "http://127.0.0.1:9080";

function csrfOf(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  assert.ok(m, "the page carries the console CSRF token");
  return m[1];
}

function form(fields: Record<string, string>): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  };
}

Deno.test("connector console: tabs show the engine's status", async () => {
  const sys = await system();
  try {
    const { ui, connector } = await sys.startConnectorWithKey();
    sys.tunnel.rxBytes = 5 * 1024 * 1024;
    sys.tunnel.txBytes = 1536;
    const home = await ui.request(`${HOST}/`);
    assert.equal(home.status, 200);
    const html = await home.text();
    assert.match(html, /Service status/);
    assert.match(html, /id="service-state">.*Connected/s);
    assert.match(html, /id="transport">UDP</);
    assert.match(html, /Off trusted network/);
    assert.ok(html.includes(connector.engine.status().deviceAddress!));
    assert.match(html, /id="bytes-received">5 MiB</);
    assert.match(html, /id="bytes-sent">1\.5 KiB</);
    const priv = await (await ui.request(`${HOST}/private-access`)).text();
    assert.match(priv, /id="auth-state">.*Authenticated/s);
    assert.match(priv, /Not enabled by the policy/);
    const more = await (await ui.request(`${HOST}/more`)).text();
    assert.ok(more.includes(connector.engine.status().policyVersion!));
    assert.match(more, /id="update-policy"/);
    const pill = await (await ui.request(`${HOST}/fragments/pill`)).text();
    assert.match(pill, /pill-ok/);
    assert.doesNotMatch(more, /id="enroll-form"/, "an enrolled device is not offered enrolment");
    // An unknown page is the console's own 404, with the navigation.
    const missing = await ui.request(`${HOST}/no-such-page`);
    assert.equal(missing.status, 404);
    const body = await missing.text();
    assert.match(body, /Page not found/);
    assert.match(body, /id="tab-internet"/);
  } finally {
    await sys.close();
  }
});

Deno.test("connector console: refuses foreign hosts and actions without the token", async () => {
  const sys = await system();
  try {
    const { ui } = await sys.startConnectorWithKey();
    const rebound = await ui.request("http://evil.example/", { headers: { host: "evil.example" } });
    assert.equal(rebound.status, 421);
    const forged = await ui.request(`${HOST}/actions/restart`, form({ _csrf: "nope" }));
    assert.equal(forged.status, 403);
    assert.match(await forged.text(), /too old or came from elsewhere/);
  } finally {
    await sys.close();
  }
});

Deno.test("connector console: Update Policy fetches the new policy and segments appear", async () => {
  const sys = await system();
  try {
    const { ui, connector } = await sys.startConnectorWithKey();
    const before = connector.engine.status().policyVersion;
    // Bundles carry only segments a rule could allow for the device.
    const rule = await sys.edge.adminReq("PUT", "/api/v1/admin/policy/access-rules", {
      items: [{ name: "everyone-intranet", segments: ["intranet"] }],
    });
    assert.equal(rule.status, 200);
    const put = await sys.edge.adminReq("PUT", "/api/v1/admin/policy/segments", {
      items: [{
        name: "intranet",
        domains: ["intra.example"],
        cidrs: ["10.20.0.0/16"],
        ports: ["443"],
      }],
    });
    assert.equal(put.status, 200);
    const token = csrfOf(await (await ui.request(`${HOST}/more`)).text());
    const res = await ui.request(`${HOST}/actions/update-policy`, form({ _csrf: token }));
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/more?msg=policy_updated");
    assert.notEqual(connector.engine.status().policyVersion, before);
    const notes = await (await ui.request(`${HOST}/notifications?type=policy_updated`)).text();
    assert.match(notes, /Policy updated to version/);
    const seg = await (await ui.request(`${HOST}/fragments/segments`)).text();
    assert.match(seg, /intranet/);
    assert.match(seg, /intra\.example/);
    const again = await ui.request(`${HOST}/actions/update-policy`, form({ _csrf: token }));
    assert.equal(again.headers.get("location"), "/more?msg=policy_unchanged");
  } finally {
    await sys.close();
  }
});

Deno.test("connector console: capture, export and report an issue", async () => {
  const sys = await system();
  try {
    const { ui, key } = await sys.startConnectorWithKey();
    const token = csrfOf(await (await ui.request(`${HOST}/more`)).text());
    const start = await ui.request(`${HOST}/actions/capture/start`, form({ _csrf: token }));
    assert.equal(start.status, 303);
    for (let seq = 1; seq <= 4; seq++) {
      sys.pump.push("out", buildIcmpEcho({ src: "100.64.0.2", dst: "100.64.0.1", seq }));
    }
    const stop = await ui.request(`${HOST}/actions/capture/stop`, form({ _csrf: token }));
    assert.equal(stop.status, 303);
    const more = await (await ui.request(`${HOST}/more`)).text();
    const m = /href="\/captures\/(cap-[^"]+\.pcap)"/.exec(more);
    assert.ok(m, "the capture is listed with a download link");
    const pcap = await ui.request(`${HOST}/captures/${m[1]}`);
    assert.equal(pcap.status, 200);
    assert.equal(readPcap(new Uint8Array(await pcap.arrayBuffer())).packets.length, 4);

    const zipRes = await ui.request(`${HOST}/export.zip`);
    assert.equal(zipRes.status, 200);
    assert.match(zipRes.headers.get("content-disposition")!, /portcullis-connector-.*\.zip/);
    const files = unzipSync(new Uint8Array(await zipRes.arrayBuffer()));
    assert.ok(files["logs.jsonl"] && files["state.json"] && files["config.json"]);
    assert.ok(Object.keys(files).some((f) => f.startsWith("captures/cap-")));
    const text = Object.values(files).map((b) => new TextDecoder().decode(b)).join("\n");
    assert.ok(!text.includes(key), "the enrolment key is not in the bundle");
    assert.ok(!text.includes(key.slice(4, 30)), "no part of the enrolment key is in the bundle");

    const report = await ui.request(
      `${HOST}/actions/report`,
      form({ _csrf: token, message: "VPN drops every hour" }),
    );
    assert.equal(report.status, 303);
    const reqs = sys.edge.store.support.list();
    assert.equal(reqs.length, 1);
    assert.equal(reqs[0].message, "VPN drops every hour");
    const clear = await ui.request(`${HOST}/actions/clear-logs`, form({ _csrf: token }));
    assert.equal(clear.status, 303);
    assert.ok(sys.ring.records().length <= 1);
  } finally {
    await sys.close();
  }
});

Deno.test("connector console: disable needs the policy's password, then enable", async () => {
  const sys = await system();
  try {
    const { ui, connector } = await sys.startConnectorWithKey();
    const { hashPassword } = await import("../../../src/identity/password.ts");
    const hash = await hashPassword("letmein-please", { N: 1024, r: 8, p: 1 });
    const put = await sys.edge.adminReq("PUT", "/api/v1/admin/policy/app-profiles", {
      items: [{ name: "default", forwarding: { name: "default" }, passwords: { disable: hash } }],
    });
    assert.equal(put.status, 200, await put.clone().text());
    const token = csrfOf(await (await ui.request(`${HOST}/more`)).text());
    await ui.request(`${HOST}/actions/update-policy`, form({ _csrf: token }));
    const more = await (await ui.request(`${HOST}/more`)).text();
    assert.match(more, /id="pw-disable"/, "a password field appears");
    const wrong = await ui.request(
      `${HOST}/actions/disable`,
      form({ _csrf: token, password: "nope" }),
    );
    assert.equal(wrong.status, 403);
    assert.match(await wrong.text(), /The password is wrong/);
    assert.equal(connector.engine.state.kind, "connected");
    const ok = await ui.request(
      `${HOST}/actions/disable`,
      form({ _csrf: token, password: "letmein-please" }),
    );
    assert.equal(ok.status, 303);
    assert.equal(connector.engine.state.kind, "disabled");
    const en = await ui.request(`${HOST}/actions/enable`, form({ _csrf: token }));
    assert.equal(en.status, 303);
    await waitFor("reconnect", () => connector.engine.state.kind === "connected");
  } finally {
    await sys.close();
  }
});
