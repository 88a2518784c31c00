import assert from "node:assert/strict";
import { judge, overall } from "../../src/diag/doctor/verdicts.ts";
import { diagnose, FixedFacts, formatReport } from "../../src/diag/doctor/mod.ts";
import type { DoctorFacts, Hop } from "../../src/diag/doctor/types.ts";

const NOW = Date.UTC(2026, 11, 2);

/** A healthy workstation: connected over UDP, everything answering. */
function healthy(): DoctorFacts {
  const pinned = (target: string) => ({
    target,
    connected: true,
    pinned: true,
    issuer: "Portcullis edge CA",
    subject: "192.0.2.1",
    connectMs: 1,
  });
  return {
    service: { running: true, state: "connected", description: "Connected over UDP" },
    identity: { enrolled: true, deviceId: "d1", replacedReason: null, lastError: null },
    clock: { skewMs: 120, source: "edge API Date header" },
    idp: { url: null },
    tunnel: {
      device: "pcc0",
      devicePresent: true,
      state: "connected",
      stateReason: null,
      transport: "udp",
      udpEndpoint: "192.0.2.1:443",
      tlsEndpoint: "192.0.2.1:443",
      tlsFallback: true,
      handshakeAgeMs: 10_000,
      wanted: true,
    },
    edgeTls: pinned("192.0.2.1:443"),
    edgeApi: pinned("192.0.2.1:8443"),
    forwarding: {
      networkType: "off_trusted",
      action: "tunnel",
      explanation: "No trusted-network criteria match",
      unmatched: [],
      unresolvedHosts: [],
    },
    captive: { state: "clear", location: null },
    failOpen: { state: "connected", reason: null, mode: "direct" },
    mtu: { tunnelMtu: 1420, largestOk: 1420, smallestFailed: null, target: "100.64.0.1" },
    dns: { server: "100.64.0.1", answered: true, ms: 2 },
    posture: { failing: [], passing: 2 },
    rtt: { ms: 3, target: "192.0.2.1:8443" },
  };
}

type Change = (f: DoctorFacts) => void;

/** Each row: a field scenario as facts, and the hop and cause the doctor must name first. */
const SCENARIOS: [string, Change, Hop, string][] = [
  [
    "service stopped",
    (f) => {
      f.service = { running: false, error: "connection refused" };
    },
    "service",
    "service_not_running",
  ],
  [
    "cloned image",
    (f) => {
      f.identity = {
        enrolled: false,
        deviceId: null,
        replacedReason: "hardware fingerprint changed",
        lastError: null,
      };
    },
    "identity",
    "cloned_identity",
  ],
  [
    "never enrolled",
    (f) => {
      f.identity = { enrolled: false, deviceId: null, replacedReason: null, lastError: "no key" };
    },
    "identity",
    "not_enrolled",
  ],
  [
    "sign-in lapsed (re-authentication every N hours)",
    (f) => {
      f.service = { running: true, state: "signin_required", description: "Sign-in required" };
      f.tunnel = { ...f.tunnel!, state: "signin_required", wanted: false, handshakeAgeMs: null };
      f.identity!.lastError = "The sign-in of ana@corp.example ended";
    },
    "identity",
    "signin_required",
  ],
  [
    "clock skew (stuck authenticating)",
    (f) => {
      f.clock = { skewMs: -3_600_000, source: "edge" };
    },
    "clock",
    "clock_skew",
  ],
  [
    "clock drift",
    (f) => {
      f.clock = { skewMs: 9_000, source: "edge" };
    },
    "clock",
    "clock_drift",
  ],
  [
    "idp unreachable",
    (f) => {
      f.idp = {
        url: "https://idp.example",
        tls: { target: "idp.example:443", connected: false, error: "timed out" },
      };
    },
    "idp",
    "idp_unreachable",
  ],
  [
    "idp certificate expired",
    (f) => {
      f.idp = {
        url: "https://idp.example",
        tls: { target: "idp.example:443", connected: true },
        certExpiresAt: NOW - 1000,
      };
    },
    "idp",
    "idp_cert_expired",
  ],
  [
    "UDP dropped, TLS fallback off",
    (f) => {
      Object.assign(f.tunnel!, {
        state: "fail_open",
        transport: null,
        tlsFallback: false,
        handshakeAgeMs: null,
      });
      f.failOpen!.state = "fail_open";
    },
    "edge_udp",
    "udp_blocked",
  ],
  [
    "UDP dropped, running over TLS",
    (f) => {
      Object.assign(f.tunnel!, { transport: "tls" });
    },
    "edge_udp",
    "udp_blocked",
  ],
  [
    "edge down, fail-open",
    (f) => {
      Object.assign(f.tunnel!, { state: "fail_open", transport: null, handshakeAgeMs: null });
      f.edgeTls = { target: "192.0.2.1:443", connected: false, error: "connection refused" };
      f.edgeApi = { target: "192.0.2.1:8443", connected: false, error: "connection refused" };
      f.failOpen!.state = "fail_open";
    },
    "edge_udp",
    "edge_unreachable",
  ],
  [
    "TLS blocked, UDP fine",
    (f) => {
      f.edgeTls = { target: "192.0.2.1:443", connected: false, error: "reset" };
    },
    "edge_tls",
    "tls_blocked",
  ],
  [
    "re-signing middlebox",
    (f) => {
      f.edgeApi = {
        target: "192.0.2.1:8443",
        connected: true,
        pinned: false,
        issuer: "CN=Inspecting Proxy CA",
        subject: "CN=192.0.2.1",
      };
    },
    "edge_cert",
    "middlebox_resigning",
  ],
  [
    "UDP dropped while the session is young: handshakes go unanswered",
    (f) => {
      Object.assign(f.tunnel!, { state: "connecting", transport: null, handshakeAgeMs: 40_000 });
      f.dns = { server: "100.64.0.1", answered: false, error: "timed out" };
    },
    "edge_udp",
    "udp_blocked",
  ],
  [
    "tunnel device missing",
    (f) => {
      f.tunnel!.devicePresent = false;
    },
    "tunnel_device",
    "tunnel_device_missing",
  ],
  [
    "stale handshake",
    (f) => {
      f.tunnel!.handshakeAgeMs = 200_000;
      f.tunnel!.transport = "udp";
    },
    "edge_udp",
    "udp_blocked",
  ],
  [
    "forwarding none off trusted",
    (f) => {
      f.tunnel!.wanted = false;
      f.forwarding!.action = "none";
    },
    "forwarding",
    "forwarding_none_untrusted",
  ],
  [
    "trusted host name does not resolve",
    (f) => {
      f.forwarding!.unresolvedHosts = ["intranet.corp.example"];
    },
    "forwarding",
    "trusted_hostname_unresolved",
  ],
  [
    "captive portal",
    (f) => {
      f.captive = { state: "portal", location: "http://10.0.0.1/login" };
    },
    "captive_portal",
    "captive_portal",
  ],
  [
    "MTU 1280 link",
    (f) => {
      f.mtu = { tunnelMtu: 1420, largestOk: 1220, smallestFailed: 1221, target: "100.64.0.1" };
    },
    "mtu",
    "mtu_too_large",
  ],
  [
    "DNS through the tunnel fails",
    (f) => {
      f.dns = { server: "100.64.0.1", answered: false, error: "timed out" };
    },
    "dns",
    "dns_no_answer",
  ],
  [
    "posture failing",
    (f) => {
      f.posture = { failing: [{ segment: "wiki", reason: "disk encryption off" }], passing: 0 };
    },
    "posture",
    "posture_failing",
  ],
  [
    "far edge",
    (f) => {
      f.rtt = { ms: 230, target: "192.0.2.1:8443" };
    },
    "edge_rtt",
    "far_edge",
  ],
];

Deno.test("doctor: a healthy workstation is healthy at every hop", async () => {
  const r = await diagnose(new FixedFacts(healthy()), () => NOW);
  assert.equal(r.overall, "healthy");
  assert.equal(r.exitCode, 0);
  assert.equal(r.verdicts.length, 16);
  for (const x of r.verdicts) {
    assert.ok(x.status === "ok" || x.status === "skipped", `${x.hop}: ${x.evidence}`);
  }
  assert.match(formatReport(r), /All hops healthy/);
});

for (const [name, change, hop, cause] of SCENARIOS) {
  Deno.test(`doctor: ${name} → ${hop}/${cause}`, () => {
    const f = healthy();
    change(f);
    const verdicts = judge(f, NOW);
    const o = overall(verdicts);
    assert.equal(o.exitCode, 1);
    assert.equal(o.firstFault, hop, JSON.stringify(verdicts, null, 1));
    const v = verdicts.find((x) => x.hop === hop)!;
    assert.equal(v.cause, cause);
    assert.ok(v.fix && v.fix.length > 10, "a fault says what to do");
  });
}

Deno.test("doctor: a far edge says where the time goes (mtr over the direct path)", () => {
  const f = healthy();
  f.rtt = {
    ms: 230,
    target: "100.64.0.1 through the tunnel",
    path: { target: "192.0.2.1", hops: 1, lastMs: 0.4, slowest: null },
  };
  assert.match(judge(f, NOW).at(-1)!.evidence, /time is added on the tunnel's own way/);
  f.rtt.path = {
    target: "192.0.2.1",
    hops: 4,
    lastMs: 228,
    slowest: { hop: 3, host: "198.51.100.1", addedMs: 200 },
  };
  assert.match(judge(f, NOW).at(-1)!.evidence, /hop 3 \(198\.51\.100\.1\), \+200 ms/);
});

Deno.test("doctor: fail-open says the user is NOT protected", () => {
  const f = healthy();
  f.failOpen = { state: "fail_open", reason: "edge gone", mode: "direct" };
  const v = judge(f, NOW).find((x) => x.hop === "fail_open")!;
  assert.equal(v.cause, "fail_open_active");
  assert.match(v.evidence, /you are NOT protected/);
});

Deno.test("doctor: facts it could not find make the answer 'could not tell' (2)", () => {
  const f = healthy();
  delete f.mtu;
  delete f.rtt;
  const o = overall(judge(f, NOW));
  assert.deepEqual(o, { overall: "unknown", exitCode: 2, firstFault: null });
});

Deno.test("doctor: with the service down only the service hop is judged", () => {
  const verdicts = judge({ service: { running: false, error: "refused" } }, NOW);
  assert.deepEqual(verdicts.map((x) => x.hop), ["service"]);
});

Deno.test("doctor: off the tunnel (trusted network) tunnel hops are skipped, not faults", () => {
  const f = healthy();
  f.tunnel!.wanted = false;
  f.forwarding = {
    networkType: "on_trusted",
    action: "none",
    explanation: "DNS server 10.0.0.53 matches",
    unmatched: [],
    unresolvedHosts: [],
  };
  delete f.mtu;
  delete f.dns;
  delete f.edgeTls;
  const verdicts = judge(f, NOW);
  for (const hop of ["edge_udp", "edge_tls", "tunnel_device", "handshake", "mtu", "dns"]) {
    assert.equal(verdicts.find((x) => x.hop === hop)!.status, "skipped", hop);
  }
  assert.equal(overall(verdicts).exitCode, 0);
});
