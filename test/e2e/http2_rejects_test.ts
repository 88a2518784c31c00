/**
 * Refusals reach the client intact over HTTP/2 and HTTP/1.1 (issue 9), on
 * every listener of both roles, as curl (Debian 12's 7.88) sees them: the
 * edge's HTTPS API (HTTP/2 by ALPN), its console, bootstrap and "am I
 * protected" listeners and the connector's console/local API (plain HTTP:
 * HTTP/2 with prior knowledge, h2c).
 *
 * Each refusal comes before the handler reads the body, or after reading
 * part of it (413); the uploads are larger than a flow-control window
 * (64 KiB), so the server answers while the client is still sending. Before
 * the listeners drained left-over bodies, HTTP/2 requests ended in
 * `curl: (92) Stream error in the HTTP/2 framing layer`.
 */
import assert from "node:assert/strict";
import { canUseNetns, NetnsLab } from "./netns.ts";
import { adminLogin, EDGE_IP, type Roles, startRoles } from "./roles.ts";

/** One refusal: where, what is sent, and what must come back. */
interface Case {
  name: string;
  ns: "edge" | "conn";
  method: string;
  url: string;
  status: number;
  /** The `error.code` of a JSON body, or a pattern a text/HTML body matches. */
  expect: string | RegExp;
  /** Body size in bytes (filler), or literal text. */
  body?: number | string;
  headers?: string[];
}

const KB = 1024;
const API = `https://${EDGE_IP}:8443`;
const CONSOLE = "http://127.0.0.1:8080";
const BOOT = `http://${EDGE_IP}:8081`;
const PROTECTED = "http://100.64.0.1";
const LOCAL = "http://127.0.0.1:9080";
const JSON_CT = ["-H", "Content-Type: application/json"];
const FORM_CT = ["-H", "Content-Type: application/x-www-form-urlencoded"];
const MARK = ["-H", "X-Portcullis-Request: 1"];
const EVIL = ["-H", "Host: evil.example"];
const LOGIN = '{"username":"nobody","password":"x","totp":"000000"}';
/** An app profile whose logout password is plain text instead of an scrypt hash. */
const BAD_HASH = JSON.stringify({
  items: [{ name: "default", forwarding: { name: "default" }, passwords: { logout: "letmein" } }],
});
/** A consent state of the right shape that this edge never issued. */
const FOREIGN_STATE = `add-saas-tenant%2FContoso%2F${"A".repeat(43)}`;

function cases(session: string[], admin: string[]): Case[] {
  const row = (
    name: string,
    ns: "edge" | "conn",
    method: string,
    url: string,
    status: number,
    expect: string | RegExp,
    body?: number | string,
    headers?: string[],
  ): Case => ({ name, ns, method, url, status, expect, body, headers });
  // deno-fmt-ignore
  return [
    // The edge's API over HTTPS (HTTP/2 by ALPN).
    row("401 no credential", "edge", "POST", `${API}/api/v1/posture`, 401, "device_unauthorized", "{}", JSON_CT),
    row("401 no credential, 300 KiB", "edge", "POST", `${API}/api/v1/posture`, 401, "device_unauthorized", 300 * KB, JSON_CT),
    row("413 over the 64 KiB limit", "edge", "POST", `${API}/api/v1/enroll`, 413, "body_too_large", 100 * KB, JSON_CT),
    row("413 a 4 MiB body", "edge", "POST", `${API}/api/v1/enroll`, 413, "body_too_large", 4096 * KB, JSON_CT),
    row("415 wrong content type", "edge", "POST", `${API}/api/v1/enroll`, 415, "unsupported_media_type", 200 * KB, ["-H", "Content-Type: text/plain"]),
    row("400 malformed JSON", "edge", "POST", `${API}/api/v1/enroll`, 400, "malformed_json", "{nope", JSON_CT),
    row("400 invalid request", "edge", "POST", `${API}/api/v1/enroll`, 400, "invalid_request", '{"key":1}', JSON_CT),
    row("401 wrong login", "edge", "POST", `${API}/api/v1/auth/login`, 401, "invalid_credentials", LOGIN, JSON_CT),
    row("401 admin without session, 300 KiB", "edge", "POST", `${API}/api/v1/admin/users`, 401, "unauthorized", 300 * KB, JSON_CT),
    row("403 admin without CSRF token, 300 KiB", "edge", "POST", `${API}/api/v1/admin/users`, 403, "csrf_failed", 300 * KB, [...JSON_CT, ...session]),
    row("400 a policy password that is not an scrypt hash", "edge", "PUT", `${API}/api/v1/admin/policy/app-profiles`, 400, "invalid_request", BAD_HASH, [...JSON_CT, ...admin]),
    row("400 a too short protection password", "edge", "PUT", `${API}/api/v1/admin/policy/app-profiles/default/passwords`, 400, "invalid_password", '{"exit":"abc"}', [...JSON_CT, ...admin]),
    row("400 a clock tolerance beyond 30 min", "edge", "PUT", `${API}/api/v1/admin/policy/app-profiles/default/clock-skew`, 400, "invalid_request", '{"toleranceSec":3600}', [...JSON_CT, ...admin]),
    row("400 a sign-in lifetime beyond 720 h", "edge", "PUT", `${API}/api/v1/admin/policy/app-profiles/default/signin-lifetime`, 400, "invalid_request", '{"hours":721}', [...JSON_CT, ...admin]),
    row("401 re-authentication without a device credential", "edge", "POST", `${API}/api/v1/reauth`, 401, "device_unauthorized", `{"signIn":"pcs_${"x".repeat(40)}"}`, JSON_CT),
    row("404 protection passwords of an unknown profile", "edge", "PUT", `${API}/api/v1/admin/policy/app-profiles/nope/passwords`, 404, "not_found", '{"exit":"abcdef"}', [...JSON_CT, ...admin]),
    row("400 a URL rule whose host is a regular expression", "edge", "PUT", `${API}/api/v1/admin/web/url-rules`, 400, "invalid_request", '{"items":[{"name":"x","hosts":["(a|aa)+"],"action":"block"}]}', [...JSON_CT, ...admin]),
    row("400 a URL rule naming an unknown category", "edge", "PUT", `${API}/api/v1/admin/web/url-rules`, 400, "unknown_category", '{"items":[{"name":"x","categories":["nope"],"action":"block"}]}', [...JSON_CT, ...admin]),
    row("400 a Do-Not-Inspect entry that is no host", "edge", "PUT", `${API}/api/v1/admin/web/inspection`, 400, "invalid_request", '{"enabled":true,"doNotInspect":["not a host"]}', [...JSON_CT, ...admin]),
    row("400 a web log search with an unknown action", "edge", "GET", `${API}/api/v1/admin/web/log?action=nuke`, 400, "invalid_request", undefined, admin),
    row("404 unknown route, 300 KiB", "edge", "POST", `${API}/api/v1/nothing-here`, 404, "not_found", 300 * KB),
    row("404 metrics on the public API", "edge", "GET", `${API}/metrics`, 404, "not_found"),
    row("400 admin-consent redirect with a foreign state", "edge", "GET", `${API}/api/v1/saas/consent?admin_consent=True&state=${FOREIGN_STATE}`, 400, "consent_state_mismatch"),
    // Sign-in (no IdP configured here: every attempt is refused before one is asked).
    row("400 sign-in start without a loopback return", "edge", "GET", `${API}/api/v1/signin/start?email=ana%40corp.example&return=https%3A%2F%2Fevil.example%2F&state=state-0123456789abcdef`, 400, "invalid_return"),
    row("404 sign-in start, no provider serves the domain", "edge", "GET", `${API}/api/v1/signin/start?email=ana%40corp.example&return=http%3A%2F%2F127.0.0.1%3A9%2Fdone&state=state-0123456789abcdef`, 404, "no_identity_provider"),
    row("400 OIDC callback with an unknown state", "edge", "GET", `${API}/api/v1/signin/oidc/callback?code=c&state=forged`, 400, "oidc_state_unknown"),
    row("400 redeem a grant never issued", "edge", "POST", `${API}/api/v1/signin/redeem`, 400, "grant_invalid", `{"grant":"${"g".repeat(32)}"}`, JSON_CT),
    row("400 SAML ACS with an unknown RelayState, 300 KiB", "edge", "POST", `${API}/api/v1/signin/saml/acs`, 400, "saml_relay_state_unknown", 300 * KB, FORM_CT),
    row("400 an identity provider with a bad domain", "edge", "POST", `${API}/api/v1/admin/identity-providers`, 400, "invalid_identity_provider", '{"name":"X","kind":"oidc","domains":["not a domain"],"oidc":{"issuer":"https://i.example","clientId":"c","clientSecret":"s"}}', [...JSON_CT, ...admin]),
    // The edge's console listener (plain HTTP).
    row("console: 401 API without credential, 300 KiB", "edge", "POST", `${CONSOLE}/api/v1/posture`, 401, "device_unauthorized", 300 * KB, JSON_CT),
    row("console: 421 foreign Host, 300 KiB", "edge", "POST", `${CONSOLE}/api/v1/posture`, 421, "misdirected_host", 300 * KB, EVIL),
    row("console: 413 login form over 64 KiB", "edge", "POST", `${CONSOLE}/login`, 413, /larger than the limit/, 300 * KB, FORM_CT),
    row("console: 401 action without session, 300 KiB", "edge", "POST", `${CONSOLE}/devices`, 401, /session has ended/, 300 * KB, FORM_CT),
    row("console: 404 static file", "edge", "GET", `${CONSOLE}/static/nope.js`, 404, /Not found/),
    row("console: 400 admin-consent redirect with a foreign state", "edge", "GET", `${CONSOLE}/saas/consent?admin_consent=True&state=${FOREIGN_STATE}`, 400, /its state is unknown/),
    // Bootstrap and "am I protected".
    row("bootstrap: 404 POST, 300 KiB", "edge", "POST", `${BOOT}/ca.pem`, 404, "not_found", 300 * KB),
    row("protected: 404 POST, 300 KiB", "edge", "POST", `${PROTECTED}/`, 404, "not_found", 300 * KB),
    // The connector's console and local API.
    row("connector: 403 without the request header, 300 KiB", "conn", "POST", `${LOCAL}/api/v1/actions/restart`, 403, "csrf", 300 * KB, JSON_CT),
    row("connector: 403 foreign Host", "conn", "GET", `${LOCAL}/api/v1/status`, 403, "bad_host", undefined, EVIL),
    row("connector: 413 over 4 KiB", "conn", "POST", `${LOCAL}/api/v1/actions/restart`, 413, "body_too_large", 300 * KB, [...JSON_CT, ...MARK]),
    row("connector: 400 bad JSON", "conn", "POST", `${LOCAL}/api/v1/actions/restart`, 400, "invalid_json", "{nope", [...JSON_CT, ...MARK]),
    row("connector: 400 no key", "conn", "POST", `${LOCAL}/api/v1/actions/enroll`, 400, "key_required", "{}", [...JSON_CT, ...MARK]),
    row("connector: 404 unknown action", "conn", "POST", `${LOCAL}/api/v1/actions/fly`, 404, "unknown_action", "{}", MARK),
    row("connector: 404 unknown API path, 300 KiB", "conn", "POST", `${LOCAL}/api/v1/nothing`, 404, "not_found", 300 * KB, MARK),
    row("connector console: 421 foreign Host, 300 KiB", "conn", "POST", `${LOCAL}/`, 421, "misdirected_host", 300 * KB, EVIL),
    row("connector console: 403 action without CSRF token", "conn", "POST", `${LOCAL}/actions/restart`, 403, /too old or came from elsewhere/, 30 * KB, FORM_CT),
  ];
}

/** Writes the bodies once; returns curl's data argument for a case. */
async function bodyArgs(dir: string, body: number | string | undefined): Promise<string[]> {
  if (body === undefined) return [];
  if (typeof body === "string") return ["--data-binary", body];
  const path = `${dir}/body-${body}.bin`;
  try {
    await Deno.stat(path);
  } catch {
    // Printable filler, so a form or JSON parser that gets this far fails on syntax, not bytes.
    await Deno.writeFile(path, new Uint8Array(body).fill(0x61));
  }
  return ["--data-binary", `@${path}`];
}

async function request(r: Roles, c: Case, http2: boolean) {
  const proto = http2
    ? (c.url.startsWith("https:") ? "--http2" : "--http2-prior-knowledge")
    : "--http1.1";
  const res = await r.inNs(c.ns === "edge" ? r.edgeNs : r.connNs, [
    "curl",
    "-sS",
    "--max-time",
    "10",
    "--cacert",
    r.ca,
    proto,
    "-X",
    c.method,
    ...(c.headers ?? []),
    ...(await bodyArgs(r.dir, c.body)),
    "-w",
    "\n%{http_code} %{http_version}",
    c.url,
  ]);
  const lines = res.stdout.split("\n");
  const [status, version] = lines.pop()!.split(" ");
  return {
    exit: res.code,
    stderr: res.stderr.trim(),
    status: Number(status),
    version,
    body: lines.join("\n"),
  };
}

Deno.test({
  name: "HTTP/2 and HTTP/1.1: every refusal of every listener arrives with its body",
  ignore: !canUseNetns,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using lab = new NetnsLab("h2r");
    const roles = await startRoles(lab);
    const { jar, csrf } = await adminLogin(roles);
    const failures: string[] = [];
    for (const c of cases(["-b", jar], ["-b", jar, "-H", `X-CSRF-Token: ${csrf}`])) {
      for (const http2 of [true, false]) {
        const res = await request(roles, c, http2);
        const label = `${c.name} over HTTP/${http2 ? "2" : "1.1"}`;
        try {
          assert.equal(res.exit, 0, `curl exits 0 (${res.stderr})`);
          assert.equal(res.version, http2 ? "2" : "1.1", "protocol");
          assert.equal(res.status, c.status, `status (body ${res.body.slice(0, 200)})`);
          if (typeof c.expect === "string") {
            const json = JSON.parse(res.body);
            assert.equal(json.error?.code, c.expect, res.body.slice(0, 200));
            assert.ok(json.error.message.length > 10, "a sentence comes with the code");
          } else {
            assert.match(res.body, c.expect);
          }
        } catch (e) {
          failures.push(`${label}: ${(e as Error).message}`);
        }
      }
    }
    // The connector stays reachable from its own host after all that.
    const s = await roles.connectorStatus();
    assert.equal(typeof s.state, "string");
    assert.deepEqual(failures, [], failures.join("\n"));
  },
});
