import assert from "node:assert/strict";
import { compareVersions, parseVersion, VERSION } from "../src/version.ts";
import { evaluateCheck } from "../src/policy/posture.ts";
import { type DeviceJson, summariseFleet } from "../src/http/console/fleet.ts";

Deno.test("version: VERSION is deno.json's version", async () => {
  const deno = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.equal(VERSION, deno.version);
  assert.ok(parseVersion(VERSION), "and it is a version");
});

Deno.test("version: `portcullis version` prints VERSION", async () => {
  const main = new URL("../main.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", main, "version"] })
    .output();
  assert.equal(new TextDecoder().decode(out.stdout).trim(), VERSION);
});

Deno.test("version: comparison table", () => {
  // [a, b, compare(a, b)]; every row is also checked the other way round.
  const table: [string, string, -1 | 0 | 1 | null][] = [
    // SemVer order, including the brief's chain.
    ["1.2.0-rc1", "1.2.0", -1],
    ["1.2.0", "1.2.1", -1],
    ["1.2.1", "1.10.0", -1],
    ["1.10.0", "1.9.99", 1],
    ["1.2.3", "1.2.3", 0],
    // SemVer 2.0 §11's example chain.
    ["1.0.0-alpha", "1.0.0-alpha.1", -1],
    ["1.0.0-alpha.1", "1.0.0-alpha.beta", -1],
    ["1.0.0-alpha.beta", "1.0.0-beta", -1],
    ["1.0.0-beta", "1.0.0-beta.2", -1],
    ["1.0.0-beta.2", "1.0.0-beta.11", -1],
    ["1.0.0-beta.11", "1.0.0-rc.1", -1],
    ["1.0.0-rc.1", "1.0.0", -1],
    ["1.2.0-rc.2", "1.2.0-rc.10", -1],
    ["1.2.0-rc2", "1.2.0-rc10", 1], // one alphanumeric identifier: ASCII order, as §11 says
    ["1.2.0-RC1", "1.2.0", -1],
    ["2.0.0-dev", "1.9.0", 1],
    ["1.2.0-preview.3", "1.2.0-preview.3", 0],
    // Build metadata is ignored (§10).
    ["1.2.0+build5", "1.2.0", 0],
    ["1.2.0+a", "1.2.0+b", 0],
    ["1.2.0-rc.1+exp.sha.5114f85", "1.2.0-rc.1", 0],
    // "v" prefix and missing parts.
    ["v2.0", "1.99.99", 1],
    ["V1.2.0", "1.2.0", 0],
    ["1.2", "1.2.0", 0],
    ["12", "12.0.0", 0],
    ["12", "11.7", 1],
    // Operating systems.
    ["22.04", "22.10", -1],
    ["22.04", "22.4", 0],
    ["10.0.19045.3803", "10.0.19044", 1],
    ["6.1.0-13-amd64", "6.1", 0],
    ["6.1.0-13-amd64", "6.1.0", 0],
    ["6.1.0-13-amd64", "6.2", -1],
    ["6.1.0-18-amd64", "6.1.0-17-amd64", 0],
    ["5.15.0-91-generic", "5.15", 0],
    ["6.6.1-arch1-1", "6.6.1", 0],
    ["6.5.6-300.fc39.x86_64", "6.5.6", 0],
    ["6.1.0-rc3", "6.1.0-13-amd64", -1], // a kernel release candidate is before the release
    // Not versions.
    ["abc", "1.0", null],
    ["1..2", "1.0", null],
    ["", "1", null],
    ["1.0.0-", "1.0.0", null],
    ["1.0.0-rc..1", "1.0.0", null],
    ["1.0 beta", "1.0", null],
    ["-1.0", "1.0", null],
    ["1.0.x", "1.0", null],
  ];
  for (const [a, b, want] of table) {
    assert.equal(compareVersions(a, b), want, `${a} vs ${b}`);
    const back = want === null ? null : want === 0 ? 0 : -want;
    assert.equal(compareVersions(b, a), back, `${b} vs ${a}`);
  }
});

Deno.test("version: parsing is linear on long garbage", () => {
  const t0 = performance.now();
  for (const s of ["1.".repeat(50_000), "1".repeat(100_000), "1.0-" + "a.".repeat(50_000) + "!"]) {
    assert.equal(parseVersion(s), null);
  }
  assert.ok(performance.now() - t0 < 2000);
});

Deno.test("version: posture checks use the one comparison", () => {
  const table: [string, string, string | undefined, boolean][] = [
    ["os_version", "6.1", "6.1.0-13-amd64", true],
    ["os_version", "12", "12", true],
    ["os_version", "22.10", "22.04", false],
    ["os_version", "1.0", "not a version", false],
    ["connector_version", "1.2.0", "1.2.0-rc1", false],
    ["connector_version", "1.2.0-rc1", "1.2.0-rc.1", false],
    ["connector_version", "1.2.0", "v1.10.0", true],
  ];
  for (const [type, min, actual, passed] of table) {
    const facts = type === "os_version" ? { osVersion: actual } : { connectorVersion: actual };
    const r = evaluateCheck({ type, min } as never, facts);
    assert.equal(r.passed, passed, `${type} ${actual} >= ${min}`);
  }
});

Deno.test("version: the fleet dashboard counts outdated connectors with the one comparison", () => {
  const device = (connectorVersion: string) =>
    ({
      connectorVersion,
      os: "linux",
      osVersion: "12",
      disabled: false,
      tunnel: { state: "up", rxBytes: 0, txBytes: 0 },
    }) as unknown as DeviceJson;
  const fleet = ["1.10.0", "1.9.3", "1.10.0-rc.1", "garbage", "v1.10.0"].map(device);
  const newest = summariseFleet(fleet);
  assert.equal(newest.latestVersion, "1.10.0", "semver order, garbage never the newest");
  assert.deepEqual(
    newest.outdated.map((d) => d.connectorVersion),
    ["1.9.3", "1.10.0-rc.1", "garbage"],
  );
  const shipped = summariseFleet(fleet, "1.10.1");
  assert.equal(shipped.latestVersion, "1.10.1");
  assert.equal(shipped.outdated.length, 5);
  assert.deepEqual(summariseFleet([device("0.1.0")], VERSION).outdated, []);
});
