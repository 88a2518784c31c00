import assert from "node:assert/strict";
import {
  checkName,
  evaluateCheck,
  evaluatePosture,
  judgeProfiles,
  type PostureFacts,
  subjectMatches,
} from "../../src/policy/posture.ts";
import { PostureCheck, PostureProfile } from "../../src/policy/types.ts";
import { PostureResult } from "../../src/http/api/schemas.ts";

const NOW = Date.UTC(2026, 5, 1);
const SHA = "0123456789abcdef".repeat(4);

const facts: PostureFacts = {
  osVersion: "6.1.0-18-amd64",
  processes: ["sshd", "clamd", "systemd"],
  files: new Map([
    ["/etc/corp/agent.conf", { exists: true, sha256: SHA }],
    ["/etc/missing", { exists: false }],
    ["/etc/nohash", { exists: true }],
  ]),
  diskEncryption: true,
  firewallEnabled: false,
  certificates: [
    {
      subject: "CN=laptop-17, O=Example Corp",
      issuer: "CN=Corp Device CA, O=Example Corp",
      notAfter: NOW + 86400_000,
      hasKey: true,
      store: "/etc/pki/device",
    },
    { subject: "CN=old-device, O=Example Corp", notAfter: NOW - 1, hasKey: true },
    { subject: "CN=keyless", issuer: "CN=Other CA", notAfter: NOW + 1000, hasKey: false },
    { subject: "CN=expired", issuer: "CN=Other CA", notAfter: NOW - 1000, hasKey: true },
  ],
  services: new Map([
    ["falcon-sensor", { running: true, sha256: SHA }],
    ["wazuh-agentd", { running: false }],
  ]),
  connectorVersion: "0.1.0",
};

Deno.test("posture: subject matching is per attribute", () => {
  assert.equal(subjectMatches("CN=laptop-17", "CN=laptop-17, O=Example Corp"), true);
  assert.equal(
    subjectMatches("o=example corp, cn=LAPTOP-17", "CN=laptop-17,O=Example  Corp"),
    true,
  );
  assert.equal(subjectMatches("CN=laptop", "CN=laptop-17, O=Example Corp"), false);
  assert.equal(subjectMatches("/CN=laptop-17", "/O=Example Corp/CN=laptop-17"), true);
  assert.equal(subjectMatches("", "CN=x"), false);
});

Deno.test("posture: each check with expected and actual", () => {
  const table: [unknown, PostureFacts, boolean, string, string][] = [
    [{ type: "os_version", min: "6.1" }, facts, true, ">= 6.1", "6.1.0-18-amd64"],
    [{ type: "os_version", min: "6.2" }, facts, false, ">= 6.2", "6.1.0-18-amd64"],
    [{ type: "os_version", min: "6.2" }, {}, false, ">= 6.2", "unknown (not collected)"],
    [
      { type: "os_version", min: "1" },
      { osVersion: "rolling" },
      false,
      ">= 1",
      "rolling (not a version)",
    ],
    [{ type: "connector_version", min: "0.1.0" }, facts, true, ">= 0.1.0", "0.1.0"],
    [{ type: "connector_version", min: "0.2" }, facts, false, ">= 0.2", "0.1.0"],
    [
      { type: "process_running", name: "clamd" },
      facts,
      true,
      "process clamd running",
      "process clamd running",
    ],
    [
      { type: "process_running", name: "clam" },
      facts,
      false,
      "process clam running",
      "process clam not running",
    ],
    [
      { type: "process_running", name: "x" },
      {},
      false,
      "process x running",
      "unknown (not collected)",
    ],
    [
      { type: "file_exists", path: "/etc/corp/agent.conf" },
      facts,
      true,
      "/etc/corp/agent.conf exists",
      "/etc/corp/agent.conf exists",
    ],
    [
      { type: "file_exists", path: "/etc/corp/agent.conf", sha256: SHA.toUpperCase() },
      facts,
      true,
      `/etc/corp/agent.conf with sha256 ${SHA}`,
      `/etc/corp/agent.conf with sha256 ${SHA}`,
    ],
    [
      { type: "file_exists", path: "/etc/corp/agent.conf", sha256: "f".repeat(64) },
      facts,
      false,
      `/etc/corp/agent.conf with sha256 ${"f".repeat(64)}`,
      `/etc/corp/agent.conf with sha256 ${SHA}`,
    ],
    [
      { type: "file_exists", path: "/etc/missing" },
      facts,
      false,
      "/etc/missing exists",
      "/etc/missing missing",
    ],
    [
      { type: "file_exists", path: "/etc/nohash", sha256: SHA },
      facts,
      false,
      `/etc/nohash with sha256 ${SHA}`,
      "/etc/nohash sha256 unknown (not collected)",
    ],
    [
      { type: "file_exists", path: "/etc/other" },
      facts,
      false,
      "/etc/other exists",
      "unknown (not collected)",
    ],
    [{ type: "disk_encryption" }, facts, true, "disk encrypted", "disk encrypted"],
    [{ type: "disk_encryption" }, {}, false, "disk encrypted", "unknown (not collected)"],
    [
      { type: "disk_encryption" },
      { diskEncryption: false },
      false,
      "disk encrypted",
      "disk not encrypted",
    ],
    [
      { type: "firewall_enabled" },
      facts,
      false,
      "firewall dropping inbound",
      "no firewall dropping inbound",
    ],
    [
      { type: "certificate", subject: "CN=laptop-17" },
      facts,
      true,
      "certificate with subject CN=laptop-17 with its private key",
      "certificate CN=laptop-17, O=Example Corp with its key",
    ],
    [
      { type: "certificate", issuer: "CN=Corp Device CA", store: "/etc/pki/device" },
      facts,
      true,
      "certificate issued by CN=Corp Device CA in /etc/pki/device with its private key",
      "certificate CN=laptop-17, O=Example Corp with its key",
    ],
    [
      { type: "certificate", issuer: "CN=Corp Device CA", store: "/elsewhere" },
      facts,
      false,
      "certificate issued by CN=Corp Device CA in /elsewhere with its private key",
      "no matching certificate among 4",
    ],
    [
      { type: "certificate", issuer: "CN=Other CA" },
      facts,
      false,
      "certificate issued by CN=Other CA with its private key",
      "certificate CN=keyless without its key",
    ],
    [
      { type: "certificate", subject: "CN=old-device" },
      facts,
      false,
      "certificate with subject CN=old-device with its private key",
      "certificate CN=old-device, O=Example Corp expired",
    ],
    [
      { type: "certificate", subject: "CN=nobody" },
      facts,
      false,
      "certificate with subject CN=nobody with its private key",
      "no matching certificate among 4",
    ],
    [
      { type: "certificate", issuer: "CN=Corp Device CA" },
      {},
      false,
      "certificate issued by CN=Corp Device CA with its private key",
      "unknown (not collected)",
    ],
    [
      { type: "edr", service: "falcon-sensor" },
      facts,
      true,
      "service falcon-sensor running",
      "service falcon-sensor running",
    ],
    [
      { type: "edr", service: "falcon-sensor", sha256: SHA.toUpperCase() },
      facts,
      true,
      `service falcon-sensor running from a binary with sha256 ${SHA}`,
      `service falcon-sensor running from a binary with sha256 ${SHA}`,
    ],
    [
      { type: "edr", service: "falcon-sensor", sha256: "f".repeat(64) },
      facts,
      false,
      `service falcon-sensor running from a binary with sha256 ${"f".repeat(64)}`,
      `service falcon-sensor running from a binary with sha256 ${SHA}`,
    ],
    [
      { type: "edr", service: "wazuh-agentd" },
      facts,
      false,
      "service wazuh-agentd running",
      "service wazuh-agentd not running",
    ],
    [
      { type: "edr", service: "unasked" },
      facts,
      false,
      "service unasked running",
      "unknown (not collected)",
    ],
  ];
  for (const [raw, f, passed, expected, actual] of table) {
    const check = PostureCheck.parse(raw);
    const o = evaluateCheck(check, f, NOW);
    assert.deepEqual(o, { passed, expected, actual }, JSON.stringify(raw));
  }
});

Deno.test("posture: profiles pass only when every check passes; results fit the API schema", () => {
  const profiles = [
    PostureProfile.parse({
      name: "baseline",
      checks: [{ type: "os_version", min: "5.10" }, { type: "disk_encryption" }],
    }),
    PostureProfile.parse({
      name: "strict",
      checks: [{ type: "disk_encryption" }, { type: "firewall_enabled" }, {
        type: "process_running",
        name: "clamd",
      }],
    }),
  ];
  const ev = evaluatePosture(profiles, facts, NOW);
  assert.deepEqual(ev.passedProfiles, ["baseline"]);
  assert.equal(ev.results.length, 5);
  for (const r of ev.results) PostureResult.parse(r);
  assert.deepEqual(ev.results.map((r) => `${r.profile}/${r.check}/${r.passed}`), [
    "baseline/os_version/true",
    "baseline/disk_encryption/true",
    "strict/disk_encryption/true",
    "strict/firewall_enabled/false",
    "strict/process_running:clamd/true",
  ]);
  const long = PostureCheck.parse({ type: "file_exists", path: "/" + "x".repeat(300) });
  assert.equal(checkName(long).length, 100);
});

Deno.test("posture: the edge's judgement holds for the profile's validity, from collection", () => {
  const profiles = [
    PostureProfile.parse({
      name: "disk-encrypted",
      checks: [{ type: "disk_encryption" }],
      validityMinutes: 10,
      reevaluateMinutes: 2,
    }),
    PostureProfile.parse({
      name: "marker",
      checks: [{ type: "file_exists", path: "/etc/missing" }],
    }),
  ];
  const collected = NOW - 60_000;
  const j = judgeProfiles(profiles, facts, collected, NOW);
  const disk = j.get("disk-encrypted")!;
  assert.equal(disk.passed, true);
  assert.equal(disk.reason, "every check passed");
  assert.equal(disk.expiresAt, collected + 10 * 60_000);
  assert.equal(disk.reevaluateAt, NOW + 2 * 60_000);
  const marker = j.get("marker")!;
  assert.equal(marker.passed, false);
  assert.equal(marker.reason, "/etc/missing missing");
  assert.equal(marker.expiresAt, collected + 15 * 60_000, "default validity 15 minutes");
  assert.deepEqual(marker.results.map((r) => [r.expected, r.actual]), [[
    "/etc/missing exists",
    "/etc/missing missing",
  ]]);
  // A report dated in the future cannot extend its own life.
  assert.equal(
    judgeProfiles(profiles, facts, NOW + 3_600_000, NOW).get("marker")!.expiresAt,
    NOW + 15 * 60_000,
  );
});

Deno.test("posture: a certificate check needs an issuer or a subject", () => {
  assert.equal(
    PostureProfile.safeParse({ name: "c", checks: [{ type: "certificate", store: "/x" }] }).success,
    false,
  );
  assert.equal(
    PostureProfile.safeParse({ name: "c", checks: [{ type: "edr", service: "x", sha256: "12" }] })
      .success,
    false,
  );
});
