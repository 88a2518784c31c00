import assert from "node:assert/strict";
import { createConnectorApp } from "../../../src/http/connector_app.ts";
import {
  connectorConsoleApp,
  type ConsoleParts,
  edgeConsoleApp,
} from "../../../src/http/console/mod.ts";
import { RingSink, setLogSinks } from "../../../src/log.ts";
import { fixture } from "../helpers.ts";
import { system } from "./harness.ts";

setLogSinks([]);

Deno.test("edgeConsoleApp: console at /, the edge API under /api/", async () => {
  const f = await fixture();
  const app = edgeConsoleApp({ notifier: f.notifier, ctx: f.ctx }, f.app);
  const health = await app.request("/api/v1/health");
  assert.equal(health.status, 200);
  assert.equal((await health.json()).status, "ok");
  const root = await app.request("/");
  assert.equal(root.status, 303);
  assert.match(root.headers.get("location")!, /^\/login/);
  const css = await app.request("/static/console.css");
  assert.equal(css.status, 200);
  assert.match(css.headers.get("content-type")!, /text\/css/);
  const htmx = await app.request("/static/htmx-2.0.11.min.js");
  assert.equal(htmx.status, 200);
  assert.ok((await htmx.text()).length > 40_000);
  assert.equal((await app.request("/static/deno.json")).status, 404);
  assert.equal((await app.request("/static/..%2f..%2fdeno.json")).status, 404);
  f.store.close();
});

Deno.test("edgeConsoleApp: refuses foreign Host names (DNS rebinding) with 421", async () => {
  const f = await fixture();
  const app = edgeConsoleApp(
    { notifier: f.notifier, ctx: f.ctx },
    f.app,
    { allowedHosts: ["edge.corp.example"] },
  );
  const cases: [string, string, number][] = [
    ["evil.example", "/api/v1/health", 421],
    ["evil.example:8080", "/metrics", 421],
    ["evil.example", "/login", 421],
    ["evil.example", "/", 421],
    ["127.0.0.1.evil.example", "/api/v1/health", 421],
    ["localhost.evil.example:8080", "/login", 421],
    ["127.0.0.1:8080", "/api/v1/health", 200],
    ["localhost:1234", "/login", 200],
    ["[::1]:8080", "/api/v1/health", 200],
    ["edge.corp.example:8080", "/api/v1/health", 200],
    ["EDGE.corp.example", "/login", 200],
  ];
  for (const [host, path, status] of cases) {
    const res = await app.request(`http://127.0.0.1:8080${path}`, { headers: { host } });
    assert.equal(res.status, status, `${host} ${path}`);
    await res.body?.cancel();
  }
  f.store.close();
});

Deno.test("connectorConsoleApp: console at /, the local API under /api/, capture on the tunnel", async () => {
  const sys = await system();
  try {
    const { connector } = await sys.startConnectorWithKey();
    const api = createConnectorApp({
      engine: connector.engine,
      hub: connector.hub,
      store: connector.store,
    });
    const tapped: unknown[] = [];
    const tunnel = Object.assign(sys.tunnel, { setTap: (fn: unknown) => tapped.push(fn) });
    const app = connectorConsoleApp({
      api,
      handle: connector,
      tunnel,
      config: { dataDir: connector.dataDir },
    } as unknown as ConsoleParts, { logs: new RingSink() });
    const status = await app.request("http://127.0.0.1/api/v1/status");
    assert.equal(status.status, 200);
    assert.equal((await status.json()).state, "connected");
    const home = await app.request("http://127.0.0.1/");
    assert.equal(home.status, 200);
    assert.match(await home.text(), /Internet Security/);
    const missing = await app.request("http://127.0.0.1/no-such-page");
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /Page not found/, "the mounted console renders its 404");
    const more = await (await app.request("http://127.0.0.1/more")).text();
    const token = /name="_csrf" value="([^"]+)"/.exec(more)![1];
    const start = await app.request("http://127.0.0.1/actions/capture/start", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `_csrf=${token}`,
    });
    assert.equal(start.status, 303);
    assert.equal(typeof tapped[0], "function", "the capture tapped the tunnel");
    await app.request("http://127.0.0.1/actions/capture/stop", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `_csrf=${token}`,
    });
    assert.equal(tapped[1], null);
  } finally {
    await sys.close();
  }
});
