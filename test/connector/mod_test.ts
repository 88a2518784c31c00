import assert from "node:assert/strict";
import { startConnector } from "../../src/connector/mod.ts";
import { FakeTunnelPort } from "../../src/connector/tunnel_port.ts";
import { FakeNetworkPort } from "../../src/connector/network_port.ts";
import { caFingerprint } from "../../src/connector/ca_pin.ts";
import { httpEdgeApi } from "../../src/http/edge_client.ts";
import { createConnectorApp } from "../../src/http/connector_app.ts";
import { hashPassword } from "../../src/identity/password.ts";
import { routedThroughTunnel } from "../../src/policy/routes.ts";
import { setLogSinks } from "../../src/log.ts";
import { FakeEdge, makeBundle, makeKey } from "./fake_edge.ts";

setLogSinks([]);

const FAKE_CA = "-----BEGIN CERTIFICATE-----\nTUlJQmZha2VjYQ==\n-----END CERTIFICATE-----\n";

async function waitFor(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "pc-conn-" });
  await Deno.writeTextFile(`${dir}/machine-a`, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
  await Deno.writeTextFile(`${dir}/machine-b`, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n");
  // A "device" link marks a hardware-backed interface (see src/connector/identity.ts).
  await Deno.mkdir(`${dir}/net/eth0/device`, { recursive: true });
  await Deno.writeTextFile(`${dir}/net/eth0/address`, "02:00:00:00:00:01\n");
  const edge = new FakeEdge();
  edge.caPem = FAKE_CA;
  const key = makeKey({
    u: "https://edge.test:8443",
    c: await caFingerprint(FAKE_CA),
    s: edge.secret,
  });
  const config = (machine: string, withKey: boolean) => ({
    dataDir: `${dir}/data`,
    enrollmentKey: withKey ? key : null,
    hostname: "ws1",
    machineIdPath: `${dir}/${machine}`,
    sysNetPath: `${dir}/net`,
    heartbeatSec: 1,
    postureSec: 1,
    streamBackoffMs: { min: 20, max: 100 },
  });
  return { dir, edge, key, config };
}

Deno.test("connector: enrol, restart without re-enrolling, policy via stream, disable with password", async () => {
  const { dir, edge, config } = await setup();
  const pw = await hashPassword("letmein", { N: 1024, r: 8, p: 1 });
  edge.policy = makeBundle("v1", {
    passwords: { disable: pw },
    postureProfiles: [],
  });
  try {
    // First run: enrol with the key.
    let tunnel = new FakeTunnelPort();
    let network = new FakeNetworkPort();
    let c = await startConnector(config("machine-a", true), {
      tunnel,
      network,
      edge: httpEdgeApi({ fetch: edge.fetch }),
    });
    await waitFor("connected", () => c.engine.state.kind === "connected");
    assert.equal(edge.enrollments.length, 1);
    const enrolledKey = edge.enrollments[0].wgPublicKey;
    assert.equal(enrolledKey, c.identity.wgPublicKey);
    assert.deepEqual(edge.enrollments[0].fingerprint, {
      machineId: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      macs: ["02:00:00:00:00:01"],
    });
    const cfg = tunnel.configs[0];
    assert.equal(cfg.address, "100.64.0.2");
    assert.equal(cfg.privateKey, c.identity.wgPrivateKey);
    const plan = { ...cfg.routes };
    assert.ok(routedThroughTunnel(plan, "8.8.8.8"));
    assert.ok(!routedThroughTunnel(plan, "127.0.0.1"), "the edge endpoint stays outside");
    assert.ok(!routedThroughTunnel(plan, "10.1.2.3"), "default excludes apply");
    const st = c.engine.status();
    assert.equal(st.transport, "udp");
    assert.equal(st.deviceAddress, "100.64.0.2");
    assert.equal(st.policyVersion, "v1");
    assert.equal(st.network?.type, "off_trusted");
    await waitFor("heartbeat", () => edge.heartbeats.length > 0, 3000);
    assert.equal(edge.heartbeats[0].transport, "udp");
    await waitFor("posture report", () => edge.postures.length > 0, 3000);
    const kinds = c.store.listNotifications({ type: "state_changed" }).map((n) => n.data.to);
    assert.deepEqual(kinds.reverse(), ["authenticating", "connecting", "connected"]);
    await c.stop();
    assert.equal(tunnel.active, false, "stop tears the tunnel down");

    // Second run: no key needed, no new enrolment, same keys.
    tunnel = new FakeTunnelPort();
    network = new FakeNetworkPort();
    c = await startConnector(config("machine-a", false), {
      tunnel,
      network,
      edge: httpEdgeApi({ fetch: edge.fetch }),
    });
    await waitFor("connected again", () => c.engine.state.kind === "connected");
    assert.equal(edge.enrollments.length, 1);
    assert.equal(c.identity.wgPublicKey, enrolledKey);
    assert.equal(tunnel.configs[0].address, "100.64.0.2");

    // Policy change announced on the stream reaches the tunnel.
    await waitFor("stream open", () => edge.streams > 0);
    edge.setPolicy(makeBundle("v2", {
      passwords: { disable: pw },
      forwarding: { name: "fp", mtu: 1380 },
    }));
    await waitFor("policy v2", () => c.engine.status().policyVersion === "v2");
    await waitFor("tunnel reconfigured", () => tunnel.configs.at(-1)?.mtu === 1380);
    assert.equal(c.store.listNotifications({ type: "policy_updated" })[0].data.to, "v2");

    // Disable needs the password.
    const app = createConnectorApp({ engine: c.engine, hub: c.hub, store: c.store });
    const post = (path: string, body: unknown) =>
      app.request(path, {
        method: "POST",
        headers: { host: "127.0.0.1:9080", "x-portcullis-request": "1" },
        body: JSON.stringify(body),
      });
    let r = await post("/api/v1/actions/disable", {});
    assert.equal(r.status, 403);
    assert.equal((await r.json()).error.code, "password_required");
    r = await post("/api/v1/actions/disable", { password: "wrong" });
    assert.equal(r.status, 403);
    assert.equal((await r.json()).error.code, "wrong_password");
    assert.equal(c.engine.state.kind, "connected");
    r = await post("/api/v1/actions/disable", { password: "letmein" });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { ok: true, state: "disabled" });
    assert.equal(tunnel.active, false);
    r = await post("/api/v1/actions/disable", { password: "letmein" });
    assert.equal(r.status, 409);
    r = await post("/api/v1/actions/enable", {});
    assert.equal(r.status, 200);
    await waitFor("reconnected after enable", () => c.engine.state.kind === "connected");

    // A trusted network with action none takes the tunnel down; leaving it brings it back.
    network.change("on_trusted");
    await waitFor("trusted", () => c.engine.state.kind === "trusted_network");
    assert.equal(tunnel.active, false);
    network.change("off_trusted");
    await waitFor("connected off trusted", () => c.engine.state.kind === "connected");

    // A captive portal: tunnel down, traffic direct, until it clears.
    assert.equal((await c.engine.captiveDetected()).ok, true);
    assert.equal(c.engine.state.kind, "captive_portal");
    assert.equal(tunnel.active, false);
    assert.equal(tunnel.failMode, "direct");
    await c.engine.captiveCleared();
    await waitFor("connected after captive", () => c.engine.state.kind === "connected");
    assert.equal(tunnel.failMode, null);

    // The edge goes away: heartbeats fail, but a connected tunnel stays; tunnel loss → fail open.
    edge.refuse = true;
    tunnel.autoUp = null;
    tunnel.emit({ type: "down", reason: "handshake expired" });
    await waitFor("fail open", () => c.engine.state.kind === "fail_open", 6000);
    assert.equal(tunnel.failMode, "direct");
    edge.refuse = false;
    tunnel.autoUp = "tls";
    await waitFor("back from fail open", () => c.engine.state.kind === "connected", 4000);
    assert.equal(c.engine.status().transport, "tls");
    await c.stop();

    // The data directory on another machine: keys discarded, old enrolment not used.
    tunnel = new FakeTunnelPort();
    c = await startConnector(config("machine-b", false), {
      tunnel,
      edge: httpEdgeApi({ fetch: edge.fetch }),
    });
    assert.notEqual(c.identity.wgPublicKey, enrolledKey);
    assert.equal(c.engine.state.kind, "error");
    assert.match(c.engine.state.reason ?? "", /No enrolment key/);
    assert.equal(tunnel.configs.length, 0, "the copy never brings up the old device's tunnel");
    assert.equal(c.store.listNotifications({ type: "identity_replaced" }).length, 1);
    await c.stop();
    // ...and enrols afresh as a new device when given a key.
    tunnel = new FakeTunnelPort();
    c = await startConnector(config("machine-b", true), {
      tunnel,
      edge: httpEdgeApi({ fetch: edge.fetch }),
    });
    await waitFor("copy enrolled", () => c.engine.state.kind === "connected");
    assert.equal(edge.enrollments.length, 2);
    assert.notEqual(edge.enrollments[1].wgPublicKey, enrolledKey);
    assert.equal(edge.enrollments[1].fingerprint.machineId, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    await c.stop();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connector: a refused credential at restart forgets the enrolment", async () => {
  const { dir, edge, config } = await setup();
  try {
    let c = await startConnector(config("machine-a", true), {
      tunnel: new FakeTunnelPort(),
      edge: httpEdgeApi({ fetch: edge.fetch }),
    });
    await waitFor("connected", () => c.engine.state.kind === "connected");
    await c.stop();
    edge.devices.clear(); // the admin deleted the device
    c = await startConnector(config("machine-a", false), {
      tunnel: new FakeTunnelPort(),
      edge: httpEdgeApi({ fetch: edge.fetch }),
    });
    await waitFor("unenrolled", () => c.engine.state.kind === "unenrolled");
    assert.equal(c.store.getEnrollment(), null);
    assert.equal(c.identity.credential, null);
    await c.stop();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connector: a bad key names the problem in the error state", async () => {
  const { dir, edge, config } = await setup();
  try {
    const c = await startConnector(
      { ...config("machine-a", false), enrollmentKey: "pc1.garbage!" },
      { tunnel: new FakeTunnelPort(), edge: httpEdgeApi({ fetch: edge.fetch }) },
    );
    await waitFor("error", () => c.engine.state.kind === "error");
    assert.match(c.engine.state.reason ?? "", /Cannot parse enrolment key/);
    assert.equal(c.store.listNotifications({ type: "enroll_failed" }).length, 1);
    await c.stop();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
