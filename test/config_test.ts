/** Configuration merge order and error messages. */
import assert from "node:assert/strict";
import { loadConfig } from "../src/config.ts";

Deno.test("config: defaults, then file, env, flags", async () => {
  const d = await loadConfig("edge");
  assert.equal(d.dataDir, "./data/edge");
  assert.equal(d.apiListen, "0.0.0.0:8443");
  assert.equal(d.tunnelPort, 443);
  assert.equal(d.consoleListen, "127.0.0.1:8080");
  assert.equal(d.deviceRange, "100.64.0.0/16");
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(
      file,
      JSON.stringify({ edge: { tunnelPort: 51820, dataDir: "/f", publicHost: "f.example" } }),
    );
    const c = await loadConfig("edge", {
      file,
      env: {
        PORTCULLIS_DATA_DIR: "/env",
        PORTCULLIS_TUNNEL_PORT: "4443",
        PORTCULLIS_TLS_NAMES: "a.example, b.example",
      },
      flags: { "data-dir": "/flag" },
    });
    assert.equal(c.dataDir, "/flag");
    assert.equal(c.tunnelPort, 4443);
    assert.equal(c.publicHost, "f.example");
    assert.deepEqual(c.tlsNames, ["a.example", "b.example"]);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("config: a bad value is named with what was expected", async () => {
  const table: [Record<string, string>, RegExp][] = [
    [
      { PORTCULLIS_TUNNEL_PORT: "abc" },
      /^Invalid configuration: edge\.tunnelPort: expected an integer from 1 to 65535, got "abc"$/,
    ],
    [
      { PORTCULLIS_TUNNEL_PORT: "70000" },
      /edge\.tunnelPort: expected an integer from 1 to 65535, got "70000"/,
    ],
    [{ PORTCULLIS_API_LISTEN: "8443" }, /edge\.apiListen: expected host:port .* got "8443"/],
    [
      { PORTCULLIS_DEVICE_RANGE: "10.0.0.0/8" },
      /edge\.deviceRange: expected a \/16 from 100\.64\.0\.0\/16 to 100\.83\.0\.0\/16, got "10\.0\.0\.0\/8"/,
    ],
    [{ PORTCULLIS_LOG_LEVEL: "loud" }, /edge\.logLevel: expected one of/],
    [{ PORTCULLIS_MTU: "9000" }, /edge\.mtu: expected an integer from 576 to 2000, got "9000"/],
  ];
  for (const [env, re] of table) {
    await assert.rejects(
      loadConfig("edge", { env }),
      (e: Error) => re.test(e.message),
      JSON.stringify(env),
    );
  }
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(file, JSON.stringify({ edge: { tunelPort: 1 } }));
    await assert.rejects(loadConfig("edge", { file }), /edge: unknown setting "tunelPort"/);
    await Deno.writeTextFile(file, "{oops");
    await assert.rejects(loadConfig("edge", { file }), /Cannot parse configuration file/);
  } finally {
    await Deno.remove(file);
  }
  await assert.rejects(
    loadConfig("edge", { file: "/nonexistent/x.json" }),
    /Cannot read configuration file/,
  );
});

Deno.test("config: connector strictEnforcement from file, env and flag", async () => {
  assert.equal((await loadConfig("connector")).strictEnforcement, false, "off by default");
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(file, JSON.stringify({ connector: { strictEnforcement: true } }));
    const table: [Parameters<typeof loadConfig>[1], boolean][] = [
      [{ file }, true],
      [{ env: { PORTCULLIS_STRICT_ENFORCEMENT: "true" } }, true],
      [{ file, env: { PORTCULLIS_STRICT_ENFORCEMENT: "false" } }, false],
      [{ flags: { "strict-enforcement": true } }, true],
      [
        { env: { PORTCULLIS_STRICT_ENFORCEMENT: "1" }, flags: { "strict-enforcement": false } },
        false,
      ],
    ];
    for (const [sources, want] of table) {
      assert.equal(
        (await loadConfig("connector", sources)).strictEnforcement,
        want,
        JSON.stringify(sources),
      );
    }
  } finally {
    await Deno.remove(file);
  }
  await assert.rejects(
    loadConfig("connector", { env: { PORTCULLIS_STRICT_ENFORCEMENT: "maybe" } }),
    /Invalid configuration: connector\.strictEnforcement: expected true or false, got "maybe"$/,
  );
});

Deno.test("config: console host names from a comma-separated environment variable", async () => {
  const c = await loadConfig("edge", {
    env: { PORTCULLIS_CONSOLE_HOSTS: "edge.branch.example, 192.0.2.1" },
  });
  assert.deepEqual(c.consoleHosts, ["edge.branch.example", "192.0.2.1"]);
  await assert.rejects(
    () => loadConfig("edge", { flags: { "console-hosts": "bad host!" } }),
    /edge\.consoleHosts\.0: expected hostnames or IP addresses/,
  );
});
