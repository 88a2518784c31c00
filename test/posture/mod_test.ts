import assert from "node:assert/strict";
import { collectFacts, collectFile, collectOs } from "../../src/posture/mod.ts";
import { evaluatePosture } from "../../src/policy/posture.ts";

Deno.test("collectOs parses os-release (quoted and unquoted)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/os-release`,
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    );
    assert.deepEqual(await collectOs(`${dir}/os-release`), {
      name: "Debian GNU/Linux",
      version: "12",
      id: "debian",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("collectFile: exists, hash, missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/f`, "abc");
    assert.deepEqual(await collectFile(`${dir}/f`, true), {
      exists: true,
      sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    });
    assert.deepEqual(await collectFile(`${dir}/f`, false), { exists: true });
    assert.deepEqual(await collectFile(`${dir}/nope`, true), { exists: false });
    assert.deepEqual(await collectFile(dir, false), { exists: false });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("collectFacts gathers only what checks need, and failed collectors fail closed", async () => {
  const facts = await collectFacts([
    { type: "process_running", name: "deno" },
    { type: "process_running", name: "no-such-program-here" },
    { type: "firewall_enabled" },
    { type: "connector_version", min: "0.1.0" },
    { type: "os_version", min: "1" },
  ], {
    firewall: {
      nftJson: () => Promise.reject(new Error("nft missing")),
      routeTable: () =>
        Promise.resolve(
          "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n" +
            "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n",
        ),
    },
    connectorVersion: "0.1.0",
    osReleasePath: "/nonexistent",
  });
  // Only asked-for names that run travel to the edge.
  assert.deepEqual(facts.processes, ["deno"]);
  assert.equal(facts.firewallEnabled, undefined);
  assert.equal(facts.diskEncryption, undefined);
  assert.equal(facts.osVersion, undefined);
  const ev = evaluatePosture([{
    name: "base",
    checks: [{ type: "process_running", name: "deno" }, { type: "firewall_enabled" }],
  }], facts);
  assert.deepEqual(ev.results.map((r) => r.passed), [true, false]);
  assert.deepEqual(ev.passedProfiles, []);
});
