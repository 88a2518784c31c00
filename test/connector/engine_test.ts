/**
 * The engine's strict enforcement over the fake edge and the fake data
 * plane: blocked before the first enrolment (connector setting) and after a
 * logout (the last policy's setting), with the edge on the allow-list, and
 * lifted once enrolled and when the connector stops.
 */
import assert from "node:assert/strict";
import { startConnector } from "../../src/connector/mod.ts";
import { FakeTunnelPort } from "../../src/connector/tunnel_port.ts";
import { FakeNetworkPort } from "../../src/connector/network_port.ts";
import { caFingerprint } from "../../src/connector/ca_pin.ts";
import { httpEdgeApi } from "../../src/http/edge_client.ts";
import { setLogSinks } from "../../src/log.ts";
import { FakeEdge, makeBundle, makeKey } from "./fake_edge.ts";

setLogSinks([]);

const FAKE_CA = "-----BEGIN CERTIFICATE-----\nTUlJQmZha2VjYQ==\n-----END CERTIFICATE-----\n";
/** The key's edge; the fake edge's tunnel endpoints are 127.0.0.1. */
const EDGE_IP = "192.0.2.7";

async function waitFor(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function setup(opts: { strict: boolean; policyStrict: boolean; withKey?: boolean }) {
  const dir = await Deno.makeTempDir({ prefix: "pc-strict-" });
  await Deno.writeTextFile(`${dir}/machine`, "cccccccccccccccccccccccccccccccc\n");
  // A "device" link marks a hardware-backed interface (see src/connector/identity.ts).
  await Deno.mkdir(`${dir}/net/eth0/device`, { recursive: true });
  await Deno.writeTextFile(`${dir}/net/eth0/address`, "02:00:00:00:00:03\n");
  const edge = new FakeEdge();
  edge.caPem = FAKE_CA;
  edge.policy = makeBundle("v1", { failOpen: { strictEnforcement: opts.policyStrict } });
  const key = makeKey({
    u: `https://${EDGE_IP}:8443`,
    c: await caFingerprint(FAKE_CA),
    s: edge.secret,
  });
  const tunnel = new FakeTunnelPort();
  const network = new FakeNetworkPort();
  const start = () =>
    startConnector({
      dataDir: `${dir}/data`,
      enrollmentKey: opts.withKey === false ? null : key,
      hostname: "ws9",
      machineIdPath: `${dir}/machine`,
      sysNetPath: `${dir}/net`,
      heartbeatSec: 60,
      streamBackoffMs: { min: 20, max: 100 },
      strictEnforcement: opts.strict,
      enrollRetryMs: { min: 20, max: 100 },
    }, { tunnel, network, edge: httpEdgeApi({ fetch: edge.fetch }) });
  return { dir, edge, tunnel, start };
}

Deno.test("engine: strict enforcement before enrolment and after logout", async (t) => {
  await t.step("setting on, edge down: blocked (edge allowed) until enrolled", async () => {
    const { dir, edge, tunnel, start } = await setup({ strict: true, policyStrict: true });
    edge.refuse = true;
    const c = await start();
    try {
      await waitFor("enrolment error", () => c.engine.state.kind === "error");
      assert.equal(tunnel.failMode, "blocked");
      assert.deepEqual(tunnel.allow, [EDGE_IP], "the key's edge stays reachable");
      const st = c.engine.status();
      assert.equal(st.blockedUntil, "enrolled");
      assert.equal(st.strictEnforcement, true);
      assert.match(
        st.description,
        /^Traffic blocked until this device is enrolled \(strict enforcement\); error: /,
      );
      const told = c.store.listNotifications({ type: "strict_enforcement" });
      assert.equal(told.length, 1);
      assert.match(
        told[0].message,
        /^Traffic blocked until this device is enrolled \(strict enforcement\): only DNS, DHCP and the edge/,
      );
      // Disabling is no way around it.
      assert.equal((await c.engine.dispatch({ type: "disable_requested" })).ok, false);

      // Retries keep going; the edge comes up: enrolled, tunnel first, then the block goes.
      const tries = edge.refused;
      await waitFor("two more enrolment attempts", () => edge.refused >= tries + 2);
      assert.equal(c.store.listNotifications({ type: "enroll_failed" }).length, 1, "told once");
      edge.refuse = false;
      await waitFor("connected", () => c.engine.state.kind === "connected");
      assert.equal(tunnel.failMode, null);
      const calls = tunnel.calls.filter((x) => x === "bringUp" || x.startsWith("setFailMode"));
      assert.deepEqual(calls.slice(-2), ["bringUp", "setFailMode:null"]);
      assert.equal(c.engine.status().blockedUntil, null);
      assert.equal(c.store.listNotifications({ type: "strict_enforcement_lifted" }).length, 1);

      // Logout with strict enforcement in the policy: blocked until a new login,
      // with the enrolment's edge (API and tunnel endpoints) still reachable.
      const r = await c.engine.dispatch({ type: "logout_requested" });
      assert.ok(r.ok);
      assert.equal(c.engine.state.kind, "unenrolled");
      assert.equal(tunnel.active, false);
      assert.equal(tunnel.failMode, "blocked");
      assert.deepEqual([...tunnel.allow].sort(), ["127.0.0.1", EDGE_IP]);
      const after = c.engine.status();
      assert.equal(after.blockedUntil, "login");
      assert.equal(
        after.description,
        "Traffic blocked until you log in again (strict enforcement)",
      );
      const n = c.store.listNotifications({ type: "strict_enforcement" });
      assert.match(n[0].message, /^Traffic blocked until you log in again \(strict enforcement\)/);
      // Stopping lifts every block.
      await c.stop();
      assert.equal(tunnel.failMode, null);
      assert.equal(tunnel.calls.at(-1), "setFailMode:null");
    } finally {
      await c.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("policy without strict enforcement: logout leaves traffic alone", async () => {
    const { dir, tunnel, start } = await setup({ strict: true, policyStrict: false });
    const c = await start();
    try {
      await waitFor("connected", () => c.engine.state.kind === "connected");
      assert.equal(tunnel.failMode, null);
      assert.equal(c.engine.status().strictEnforcement, false, "the policy decides now");
      assert.ok((await c.engine.dispatch({ type: "logout_requested" })).ok);
      assert.equal(c.engine.state.kind, "unenrolled");
      assert.equal(tunnel.failMode, null);
      assert.equal(tunnel.calls.includes("setFailMode:blocked"), true, "blocked before enrolment");
      assert.equal(tunnel.calls.at(-2), "setFailMode:null");
      assert.equal(c.engine.status().description, "Not enrolled");
    } finally {
      await c.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("setting on, no key: blocked with no edge to allow", async () => {
    const { dir, tunnel, start } = await setup({
      strict: true,
      policyStrict: true,
      withKey: false,
    });
    const c = await start();
    try {
      await waitFor("error", () => c.engine.state.kind === "error");
      assert.equal(tunnel.failMode, "blocked");
      assert.deepEqual(tunnel.allow, []);
      assert.match(
        c.store.listNotifications({ type: "strict_enforcement" })[0].message,
        /only DNS and DHCP are allowed \(no edge is known yet/,
      );
    } finally {
      await c.stop();
      assert.equal(tunnel.failMode, null);
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step(
    "setting off: nothing blocked while the edge is down; enrols when it is back",
    async () => {
      const { dir, edge, tunnel, start } = await setup({ strict: false, policyStrict: true });
      edge.refuse = true;
      const c = await start();
      try {
        await waitFor("error", () => c.engine.state.kind === "error");
        assert.equal(tunnel.failMode, null);
        assert.ok(!tunnel.calls.some((x) => x.startsWith("setFailMode")));
        assert.equal(c.engine.status().blockedUntil, null);
        edge.refuse = false;
        await waitFor("connected", () => c.engine.state.kind === "connected");
        // The policy turns strict enforcement on: remembered, no block while enrolled...
        assert.equal(c.engine.status().strictEnforcement, true);
        assert.equal(tunnel.failMode, null);
        // ...until the edge refuses the credential (device deleted): blocked until enrolled.
        edge.devices.clear();
        await c.engine.updatePolicy().catch(() => {});
        edge.setPolicy(makeBundle("v2", { failOpen: { strictEnforcement: true } }));
        await waitFor("unenrolled", () => c.engine.state.kind === "unenrolled", 4000);
        assert.equal(tunnel.failMode, "blocked");
        assert.equal(c.engine.status().blockedUntil, "enrolled");
      } finally {
        await c.stop();
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  await t.step("restored enrolment with a strict policy: never blocked", async () => {
    const { dir, tunnel, start } = await setup({ strict: false, policyStrict: true });
    let c = await start();
    await waitFor("connected", () => c.engine.state.kind === "connected");
    await c.stop();
    tunnel.calls = [];
    c = await start();
    try {
      await waitFor("connected again", () => c.engine.state.kind === "connected");
      assert.equal(c.engine.status().strictEnforcement, true);
      assert.ok(!tunnel.calls.includes("setFailMode:blocked"), tunnel.calls.join());
    } finally {
      await c.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });
});
