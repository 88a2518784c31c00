/**
 * `portcullis ctl` as a user runs it: the real program in a subprocess,
 * against a running connector's local API on loopback whose policy guards
 * disabling with a password. Without the password it is asked (here on
 * standard input, as a script gives it); a wrong one is refused and changes
 * nothing, the right one disables protection.
 */
import assert from "node:assert/strict";
import { startConnector } from "../../src/connector/mod.ts";
import { FakeTunnelPort } from "../../src/connector/tunnel_port.ts";
import { FakeNetworkPort } from "../../src/connector/network_port.ts";
import { caFingerprint } from "../../src/connector/ca_pin.ts";
import { httpEdgeApi } from "../../src/http/edge_client.ts";
import { createConnectorApp } from "../../src/http/connector_app.ts";
import { hashPassword } from "../../src/identity/password.ts";
import { setLogSinks } from "../../src/log.ts";
import { FakeEdge, makeBundle, makeKey } from "./fake_edge.ts";
import { waitFor } from "../http/console/harness.ts";

setLogSinks([]);
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const FAKE_CA = "-----BEGIN CERTIFICATE-----\nTUlJQmZha2VjYQ==\n-----END CERTIFICATE-----\n";

async function ctl(port: number, action: string, stdin: string) {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "ctl", action, "--console", `127.0.0.1:${port}`],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const o = await p.output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

Deno.test("portcullis ctl: asks the policy's password, refuses a wrong one, disables with the right one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc-ctl-" });
  await Deno.writeTextFile(`${dir}/machine`, "e".repeat(32) + "\n");
  await Deno.mkdir(`${dir}/net/eth0`, { recursive: true });
  await Deno.writeTextFile(`${dir}/net/eth0/address`, "02:00:00:00:30:01\n");
  const edge = new FakeEdge();
  edge.caPem = FAKE_CA;
  edge.policy = makeBundle("v1", {
    passwords: { disable: await hashPassword("ctl-pass-1", { N: 1024, r: 8, p: 1 }) },
  });
  const tunnel = new FakeTunnelPort();
  const c = await startConnector({
    dataDir: `${dir}/data`,
    enrollmentKey: makeKey({
      u: "https://edge.test:8443",
      c: await caFingerprint(FAKE_CA),
      s: edge.secret,
    }),
    hostname: "ws-ctl",
    machineIdPath: `${dir}/machine`,
    sysNetPath: `${dir}/net`,
    heartbeatSec: 3600,
    streamBackoffMs: { min: 60_000, max: 60_000 },
  }, { tunnel, network: new FakeNetworkPort(), edge: httpEdgeApi({ fetch: edge.fetch }) });
  const app = createConnectorApp({
    engine: c.engine,
    hub: c.hub,
    store: c.store,
    updates: c.updater,
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  try {
    await waitFor("connected", () => c.engine.state.kind === "connected");
    let r = await ctl(server.addr.port, "disable", "not-it\n");
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /Wrong password for disable/);
    assert.equal(c.engine.state.kind, "connected");
    r = await ctl(server.addr.port, "disable", "ctl-pass-1\n");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Done: disable \(state: disabled\)/);
    assert.equal(c.engine.state.kind, "disabled");
    r = await ctl(server.addr.port, "enable", "");
    assert.equal(r.code, 0, r.err);
    // No release key pinned here: the updater says updates are off, in its own words.
    r = await ctl(server.addr.port, "check-update", "");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Update: disabled: No release key is pinned \(--release-key\)/);
    r = await ctl(server.addr.port, "uninstall", "");
    assert.equal(r.code, 1, "this local API cannot uninstall");
    assert.match(r.err, /Uninstall is not available here/);
    r = await ctl(server.addr.port, "reboot", "");
    assert.equal(r.code, 2);
    assert.match(r.err, /Unknown action "reboot"/);
  } finally {
    await server.shutdown();
    await c.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
