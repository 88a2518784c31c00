import assert from "node:assert/strict";
import { createConnectorApp } from "../../src/http/connector_app.ts";
import type { ConnectorEngineApi } from "../../src/http/connector_app.ts";
import {
  type EngineEvent,
  type EngineState,
  transition,
} from "../../src/connector/engine_state.ts";
import type { EngineStatus } from "../../src/connector/engine/mod.ts";
import { NotificationHub } from "../../src/connector/notifications.ts";
import { ConnectorState } from "../../src/store/connector_state.ts";
import { hashPassword } from "../../src/identity/password.ts";
import { InputError } from "../../src/errors.ts";
import { waitUntil } from "../e2e/netns.ts";
import { diagnose, FixedFacts } from "../../src/diag/doctor/mod.ts";

/** An engine double driven by the real state machine. */
class MachineEngine implements ConnectorEngineApi {
  state: EngineState = {
    kind: "connected",
    enrolled: true,
    verdict: { type: "off_trusted", action: "tunnel", explanation: "x" },
    transport: "udp",
  };
  hashes: Record<string, string> = {};
  updates = 0;
  constructor(readonly hub: NotificationHub) {}
  status(): EngineStatus {
    return {
      state: this.state.kind,
      description: "d",
      reason: null,
      network: this.state.verdict,
      edge: "https://edge:8443",
      deviceId: "dev-1",
      deviceAddress: "100.64.0.2",
      deviceFqdn: null,
      clientToClient: null,
      transport: this.state.transport ?? null,
      endpoint: null,
      connectedSince: 1,
      lastHandshake: null,
      rxBytes: 10,
      txBytes: 20,
      policyVersion: "v1",
      policyUpdatedAt: 1,
      clockSkewMs: 0,
      wgPublicKey: "k",
      fingerprintHash: "f",
    };
  }
  dispatch(event: EngineEvent) {
    const r = transition(this.state, event);
    if (r.ok) {
      const from = this.state.kind;
      this.state = r.state;
      this.hub.raise("state_changed", "info", "changed", { from, to: r.state.kind });
    }
    return Promise.resolve(r);
  }
  updatePolicy() {
    this.updates++;
    return Promise.resolve({ status: "unchanged" as const, version: "v1" });
  }
  passwordHashFor(action: "logout" | "disable" | "exit") {
    return this.hashes[action];
  }
  keys: string[] = [];
  enrollWithKey(key: string) {
    if (!key.startsWith("pc1.")) throw new InputError("invalid_key", `Bad key "${key}"`);
    if (this.state.enrolled) {
      return Promise.resolve({ ok: false as const, reason: "enrolled already" });
    }
    this.keys.push(key);
    return this.dispatch({ type: "enroll_requested" });
  }
}

function setup(onExit?: () => void) {
  const store = ConnectorState.open(":memory:");
  const hub = new NotificationHub(store);
  const engine = new MachineEngine(hub);
  const app = createConnectorApp({ engine, hub, store, onExit });
  const req = (
    path: string,
    init: RequestInit & { headers?: Record<string, string> } = {},
  ): Promise<Response> =>
    Promise.resolve(
      app.request(path, { ...init, headers: { host: "127.0.0.1:9080", ...init.headers } }),
    );
  const post = (path: string, body: unknown = {}, headers: Record<string, string> = {}) =>
    req(path, {
      method: "POST",
      body: typeof body === "string" ? body : JSON.stringify(body),
      headers: { "x-portcullis-request": "1", ...headers },
    });
  return { store, hub, engine, app, req, post };
}

Deno.test("local API: Host and CSRF checks", async (t) => {
  const { req, post } = setup();
  const table: [string, Promise<Response>, number, string | null][] = [
    ["loopback host GET", req("/api/v1/status"), 200, null],
    ["localhost host", req("/api/v1/status", { headers: { host: "localhost:9080" } }), 200, null],
    [
      "rebinding host",
      req("/api/v1/status", { headers: { host: "evil.example:9080" } }),
      403,
      "bad_host",
    ],
    [
      "host with suffix",
      req("/api/v1/status", { headers: { host: "127.0.0.1.evil.example" } }),
      403,
      "bad_host",
    ],
    [
      "POST without header or origin",
      req("/api/v1/actions/restart", { method: "POST", body: "{}" }),
      403,
      "csrf",
    ],
    [
      "POST from another origin, even with the header",
      post("/api/v1/actions/restart", {}, { origin: "https://evil.example" }),
      403,
      "cross_origin",
    ],
    [
      "POST same origin without header",
      req("/api/v1/actions/update-policy", {
        method: "POST",
        body: "",
        headers: { origin: "http://127.0.0.1:9080" },
      }),
      200,
      null,
    ],
  ];
  for (const [name, p, status, code] of table) {
    await t.step(name, async () => {
      const r = await p;
      assert.equal(r.status, status);
      const j = await r.json();
      if (code) assert.equal(j.error.code, code);
    });
  }
});

Deno.test("local API: status, actions and validation", async () => {
  const { engine, req, post } = setup();
  const s = await (await req("/api/v1/status")).json();
  assert.equal(s.state, "connected");
  assert.equal(s.deviceAddress, "100.64.0.2");
  let r = await post("/api/v1/actions/restart");
  assert.deepEqual(await r.json(), { ok: true, state: "authenticating" });
  r = await post("/api/v1/actions/enable");
  assert.equal(r.status, 409);
  assert.equal((await r.json()).error.code, "invalid_state");
  r = await post("/api/v1/actions/update-policy");
  assert.deepEqual(await r.json(), { ok: true, status: "unchanged", version: "v1" });
  assert.equal(engine.updates, 1);
  r = await post("/api/v1/actions/reboot");
  assert.equal(r.status, 404);
  r = await post("/api/v1/actions/disable", "{not json");
  assert.equal((await r.json()).error.code, "invalid_json");
  r = await post("/api/v1/actions/disable", { password: 5 });
  assert.equal((await r.json()).error.code, "invalid_request");
  r = await post("/api/v1/actions/disable", { extra: true });
  assert.equal(r.status, 400);
  r = await post("/api/v1/actions/disable", "x".repeat(5000));
  assert.equal(r.status, 413);
  r = await post("/api/v1/actions/disable");
  assert.deepEqual(await r.json(), { ok: true, state: "disabled" });
  r = await post("/api/v1/actions/exit");
  assert.equal(r.status, 501);
});

Deno.test("local API: passwords for disable/logout/exit, with a failure budget", async () => {
  let exited = 0;
  const { engine, post } = setup(() => exited++);
  const hash = await hashPassword("s3cret", { N: 1024, r: 8, p: 1 });
  engine.hashes = { logout: hash, exit: hash };
  let r = await post("/api/v1/actions/logout", { password: "nope" });
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error.code, "wrong_password");
  r = await post("/api/v1/actions/logout", { password: "s3cret" });
  assert.deepEqual(await r.json(), { ok: true, state: "unenrolled" });
  r = await post("/api/v1/actions/exit", { password: "s3cret" });
  assert.equal(r.status, 200);
  await waitUntil("the exit hook", () => Promise.resolve(exited === 1), 2000, 1);
  for (let i = 0; i < 4; i++) await post("/api/v1/actions/exit", { password: "bad" });
  r = await post("/api/v1/actions/exit", { password: "s3cret" });
  assert.equal(r.status, 429, "the budget of 5 wrong passwords a minute is spent");
});

Deno.test("local API: parallel wrong passwords cannot outrun the failure budget", async () => {
  const { engine, post } = setup(() => {});
  engine.hashes = { logout: await hashPassword("s3cret", { N: 1024, r: 8, p: 1 }) };
  const res = await Promise.all(
    Array.from({ length: 50 }, () => post("/api/v1/actions/logout", { password: "bad" })),
  );
  const codes = await Promise.all(res.map(async (r) => (await r.json()).error.code as string));
  const evaluated = codes.filter((c) => c === "wrong_password").length;
  assert.ok(evaluated >= 1 && evaluated <= 5, `evaluated ${evaluated}`);
  assert.equal(codes.filter((c) => c === "too_many_attempts").length, 50 - evaluated);
  // Sequential guesses stop at the budget of five.
  for (let i = 0; i < 10; i++) await post("/api/v1/actions/logout", { password: "bad" });
  const r = await post("/api/v1/actions/logout", { password: "s3cret" });
  assert.equal(r.status, 429);
});

Deno.test("local API: notifications list, filter and live stream", async () => {
  const { hub, req } = setup();
  hub.raise("state_changed", "info", "one", {});
  hub.raise("policy_updated", "info", "two", {});
  let j = await (await req("/api/v1/notifications")).json();
  assert.deepEqual(j.notifications.map((n: { message: string }) => n.message), ["two", "one"]);
  j = await (await req("/api/v1/notifications?type=policy_updated")).json();
  assert.deepEqual(j.notifications.map((n: { message: string }) => n.message), ["two"]);
  const bad = await req("/api/v1/notifications?type=DROP%20TABLE");
  assert.equal(bad.status, 400);
  const ac = new AbortController();
  const res = await req("/api/v1/notifications/stream?type=state_changed", { signal: ac.signal });
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const reader = res.body!.getReader();
  setTimeout(() => {
    hub.raise("policy_updated", "info", "skipped", {});
    hub.raise("state_changed", "warn", "live", { to: "fail_open" });
  }, 20);
  let text = "";
  while (!text.includes("\n\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  assert.match(text, /event: state_changed/);
  assert.match(text, /"message":"live"/);
  assert.doesNotMatch(text, /skipped/);
  await reader.cancel();
  ac.abort();
});

Deno.test("local API: enrol with a key after logout; bad and missing keys are 4xx", async () => {
  const { engine, post } = setup();
  // Enrolled: refused.
  let r = await post("/api/v1/actions/enroll", { key: "pc1.abc" });
  assert.equal(r.status, 409);
  await r.body?.cancel();
  engine.state = { kind: "unenrolled", enrolled: false, verdict: null } as unknown as EngineState;
  r = await post("/api/v1/actions/enroll", {});
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.code, "key_required");
  r = await post("/api/v1/actions/enroll", { key: "nonsense" });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.code, "invalid_key");
  r = await post("/api/v1/actions/enroll", { key: "pc1.abc" });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).state, "authenticating");
  assert.deepEqual(engine.keys, ["pc1.abc"]);
});

Deno.test("local API: GET /api/v1/diagnose runs the doctor once for callers arriving together", async () => {
  const { store, hub, engine } = setup();
  let runs = 0;
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const app = createConnectorApp({
    engine,
    hub,
    store,
    diagnose: async () => {
      runs++;
      await gate;
      return await diagnose(new FixedFacts({ service: { running: false, error: "test" } }));
    },
  });
  const get = () =>
    Promise.resolve(app.request("/api/v1/diagnose", { headers: { host: "127.0.0.1:9080" } }));
  const both = Promise.all([get(), get()]);
  release();
  const [a, b] = await both;
  assert.equal(a.status, 200);
  const ra = await a.json(), rb = await b.json();
  assert.deepEqual(ra, rb);
  assert.equal(ra.exitCode, 1);
  assert.equal(ra.verdicts[0].cause, "service_not_running");
  assert.equal(runs, 1);
  // A page on another host cannot read it (DNS rebinding).
  const foreign = await app.request("/api/v1/diagnose", { headers: { host: "evil.example" } });
  assert.equal(foreign.status, 403);
  // Without a doctor: a 404 with a code and a sentence.
  const { req } = setup();
  const none = await req("/api/v1/diagnose");
  assert.equal(none.status, 404);
  assert.equal((await none.json()).error.code, "not_supported");
});
