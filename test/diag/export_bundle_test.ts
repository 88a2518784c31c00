import assert from "node:assert/strict";
import { unzipSync } from "fflate";
import {
  buildBundle,
  bundleFileName,
  isSecretName,
  maskSecrets,
  REDACTED,
  stripSecrets,
} from "../../src/diag/export_bundle.ts";

const SECRETS = {
  privateKey: "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=",
  pem:
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAbcdefghijklmnopqrstuvwxyz0123456789\n-----END PRIVATE KEY-----",
  credential: "dcred_Zm9vYmFyYmF6cXV4cXV1eDEyMzQ1Njc4OQ",
  passwordHash: "$scrypt$N=32768,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
  totp: "JBSWY3DPEHPK3PXPJBSWY3DP",
  enrolKey: "pc1.eyJ1IjoiaHR0cHM6Ly9lZGdlOjg0NDMiLCJjIjoiYWFhIiwicyI6InNlY3JldCJ9",
  apiToken: "pca_abcdefghijklmnopqrstuvwxyz012345",
};

Deno.test("stripSecrets: table of secret and harmless fields", () => {
  const table: [string, boolean][] = [
    ["privateKey", true],
    ["private_key", true],
    ["password", true],
    ["passwords", true],
    ["totpSecret", true],
    ["credential", true],
    ["csrfToken", true],
    ["enrollmentKey", true],
    ["key", true],
    ["wgPublicKey", false],
    ["signingPublicKey", false],
    ["fingerprintHash", false],
    ["caPem", false],
    ["hostname", false],
    ["address", false],
  ];
  for (const [name, secret] of table) assert.equal(isSecretName(name), secret, name);
  const out = stripSecrets({
    a: { privateKey: SECRETS.privateKey, wgPublicKey: "pub" },
    list: [{ password: "x" }, `text with ${SECRETS.enrolKey} inside`],
    pem: SECRETS.pem,
  }) as Record<string, any>;
  assert.deepEqual(out.a, { privateKey: REDACTED, wgPublicKey: "pub" });
  assert.deepEqual(out.list[0], { password: REDACTED });
  assert.equal(out.list[1], `text with ${REDACTED} inside`);
  assert.equal(out.pem, REDACTED);
});

Deno.test("maskSecrets: device credentials, stored scrypt hashes and Bearer values", () => {
  const cred = "pcd_" + "Ab9_-".repeat(9);
  const hash = "scrypt$16384$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA";
  const table: [string, string, string][] = [
    ["device credential", `device ${cred} enrolled`, `device ${REDACTED} enrolled`],
    ["stored scrypt hash", `hash=${hash} end`, `hash=${REDACTED} end`],
    ["quoted scrypt hash", `{"h":"${hash}"}`, `{"h":"${REDACTED}"}`],
    ["bearer header", `authorization: Bearer ${cred}`, `authorization: ${REDACTED}`],
    ["bearer other token", "Bearer eyJhbGciOi.eyJzdWIi.sig-_=", REDACTED],
    ["lower-case bearer", "bearer abcDEF123", REDACTED],
    ["harmless scrypt word", "uses scrypt for passwords", "uses scrypt for passwords"],
    ["harmless bearer word", "the bearer of news", "the bearer of news"],
  ];
  for (const [name, input, want] of table) assert.equal(maskSecrets(input), want, name);
  const out = stripSecrets({ log: [`GET /policy Bearer ${cred}`], note: hash });
  assert.doesNotMatch(JSON.stringify(out), /pcd_|scrypt\$/);
});

Deno.test("buildBundle: a valid zip with every part and no secret inside", async () => {
  const pcap = new Uint8Array([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, ...new Array(16).fill(0)]);
  const zip = buildBundle({
    role: "connector",
    version: "0.1.0",
    now: Date.UTC(2026, 0, 2, 3, 4, 5),
    logs: [
      { ts: "t", level: "info", component: "engine", msg: "connected" },
      { ts: "t", level: "warn", component: "enrol", msg: `using key ${SECRETS.enrolKey}` },
    ],
    state: { deviceId: "dev_1", credential: SECRETS.credential, identity: { ...SECRETS } },
    config: {
      dataDir: "/var/lib/portcullis",
      appProfile: { passwords: { logout: SECRETS.passwordHash } },
      apiToken: SECRETS.apiToken,
      nested: { deep: { secret: SECRETS.totp, pem: SECRETS.pem } },
    },
    notifications: [{ id: 1, type: "connected", message: "Connected over UDP" }],
    captures: [{ name: "cap-1.pcap", bytes: pcap }, {
      name: "cap-0.pcap",
      bytes: new Uint8Array(100),
    }],
    captureBudget: 50,
  });
  assert.equal(
    bundleFileName("connector", Date.UTC(2026, 0, 2, 3, 4, 5)),
    "portcullis-connector-20260102T030405Z.zip",
  );
  const files = unzipSync(zip);
  assert.deepEqual(Object.keys(files).sort(), [
    "captures/cap-1.pcap",
    "config.json",
    "logs.jsonl",
    "manifest.json",
    "notifications.json",
    "state.json",
  ]);
  assert.deepEqual(files["captures/cap-1.pcap"], pcap);
  const manifest = JSON.parse(new TextDecoder().decode(files["manifest.json"]));
  assert.deepEqual(manifest.capturesSkipped, ["cap-0.pcap"]);
  const all = Object.values(files).map((b) => new TextDecoder().decode(b)).join("\n");
  for (const [name, secret] of Object.entries(SECRETS)) {
    assert.ok(!all.includes(secret), `${name} leaked into the bundle`);
  }
  assert.ok(!all.includes("PRIVATE KEY"));
  assert.ok(all.includes("dev_1"), "harmless state is kept");

  const path = await Deno.makeTempFile({ suffix: ".zip" });
  try {
    await Deno.writeFile(path, zip);
    const out = await new Deno.Command("unzip", { args: ["-t", path], stdout: "piped" }).output()
      .catch(() => null);
    if (out) {
      assert.equal(out.success, true, new TextDecoder().decode(out.stdout));
      assert.match(new TextDecoder().decode(out.stdout), /No errors detected/);
    }
  } finally {
    await Deno.remove(path);
  }
});
