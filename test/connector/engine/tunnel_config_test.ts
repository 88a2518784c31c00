/** The tunnel configuration from enrolment and policy, and its fingerprint. */
import assert from "node:assert/strict";
import { configFingerprint, tunnelConfig } from "../../../src/connector/engine/tunnel_config.ts";
import { routedThroughTunnel } from "../../../src/policy/routes.ts";
import type { StoredEnrollment } from "../../../src/store/connector_state.ts";
import { makeBundle } from "./helpers.ts";

const E: StoredEnrollment = {
  deviceId: "dev_1",
  apiUrl: "https://edge.test:8443",
  caPem: "PEM",
  address: "100.64.0.2",
  network: "100.64.0.0/16",
  edgeAddress: "100.64.0.1",
  edgePublicKey: "KEY",
  endpoints: [
    { transport: "udp", host: "203.0.113.5", port: 443 },
    { transport: "tls", host: "edge.test", port: 443 },
  ],
  user: null,
  group: null,
  enrolledAt: 0,
};

Deno.test("tunnel config: needs enrolment and policy; keeps the edge's endpoints outside", () => {
  const p = makeBundle("v1");
  assert.equal(tunnelConfig(null, p, "priv"), null);
  assert.equal(tunnelConfig(E, null, "priv"), null);
  const cfg = tunnelConfig(E, p, "priv")!;
  assert.equal(cfg.address, "100.64.0.2");
  assert.equal(cfg.privateKey, "priv");
  assert.equal(cfg.mtu, p.appProfile.forwarding.mtu);
  assert.equal(cfg.caPem, "PEM");
  assert.ok(routedThroughTunnel(cfg.routes, "8.8.8.8"));
  assert.ok(
    !routedThroughTunnel(cfg.routes, "203.0.113.5"),
    "the edge endpoint bypasses the tunnel",
  );
  assert.equal(cfg.dns, null);
});

Deno.test("tunnel config: the fingerprint follows what matters and never holds the key", () => {
  const p = makeBundle("v1");
  const a = configFingerprint(tunnelConfig(E, p, "secret-key-1")!);
  assert.ok(!a.includes("secret-key-1"));
  assert.equal(
    a,
    configFingerprint(tunnelConfig(E, p, "secret-key-2")!),
    "the key is not compared",
  );
  assert.equal(
    a,
    configFingerprint(tunnelConfig(E, makeBundle("v2"), "k")!),
    "a version alone is not a change",
  );
  const mtu = makeBundle("v2", { forwarding: { name: "fp", mtu: 1300 } });
  assert.notEqual(a, configFingerprint(tunnelConfig(E, mtu, "k")!));
});

Deno.test("tunnel config: the bundle's segments are routed despite the default excludes", () => {
  const p = {
    ...makeBundle("v1"),
    segments: [{
      name: "lab",
      domains: [],
      cidrs: ["10.20.0.0/24"],
      ports: [],
      protocols: ["tcp" as const],
    }],
  };
  const cfg = tunnelConfig(E, p, "k")!;
  assert.ok(routedThroughTunnel(cfg.routes, "10.20.0.10"), "the segment is tunnelled");
  assert.ok(!routedThroughTunnel(cfg.routes, "10.21.0.1"), "the rest of 10/8 stays excluded");
  assert.notEqual(
    configFingerprint(cfg),
    configFingerprint(tunnelConfig(E, makeBundle("v1"), "k")!),
    "a new segment changes the tunnel",
  );
});

Deno.test("tunnel config: enforce PAC tunnels only the edge proxy, DNS and the segments", () => {
  const p = {
    ...makeBundle("v1"),
    webProxy: { address: "100.64.0.1", port: 3128 },
    edgeDns: "100.64.0.1",
    segments: [{
      name: "wiki",
      domains: [],
      cidrs: ["10.20.0.0/24"],
      ports: [],
      protocols: ["tcp" as const],
    }],
  };
  const full = tunnelConfig(E, p, "k", [], "tunnel")!;
  assert.ok(routedThroughTunnel(full.routes, "8.8.8.8"), "a full tunnel otherwise");
  const pac = tunnelConfig(E, p, "k", [], "enforce_pac")!;
  const cases: [string, boolean][] = [
    ["8.8.8.8", false],
    ["198.18.0.80", false],
    ["100.64.0.1", true],
    ["10.20.0.7", true],
    ["203.0.113.5", false],
  ];
  for (const [ip, want] of cases) assert.equal(routedThroughTunnel(pac.routes, ip), want, ip);
  assert.notEqual(configFingerprint(full), configFingerprint(pac), "a change reconfigures");
});
