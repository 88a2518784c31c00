/**
 * `portcullis service`: the unit text (restart policy, hardening that keeps
 * TUN and netlink), checked by systemd's own `systemd-analyze verify`
 * (Debian package systemd) with no warning allowed; install and uninstall
 * into a test-owned unit directory through the real command line; bad
 * input named in the message.
 */
import assert from "node:assert/strict";
import { renderUnit, systemdQuote, unitName } from "../src/service_unit.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const program = [Deno.execPath(), "run", "-A", MAIN];

async function run(cmd: string, args: string[]) {
  const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

const hasAnalyze = (() => {
  try {
    return Deno.statSync("/usr/bin/systemd-analyze").isFile;
  } catch {
    return false;
  }
})();

Deno.test("systemdQuote: plain words stay, others are quoted and escaped", () => {
  const cases: [string, string][] = [
    ["/usr/bin/deno", "/usr/bin/deno"],
    ["--data-dir", "--data-dir"],
    ["a b", '"a b"'],
    ['say "hi"', '"say \\"hi\\""'],
    ["100%", "100%%"],
    ["$HOME", '"$$HOME"'],
    ["back\\slash", '"back\\\\slash"'],
  ];
  for (const [w, want] of cases) assert.equal(systemdQuote(w), want, w);
});

Deno.test("renderUnit: restart policy, capabilities, writable paths per role", () => {
  for (const role of ["edge", "connector"] as const) {
    const text = renderUnit({ role, program, args: ["--gateway"] });
    assert.match(text, /^Restart=always$/m);
    assert.match(text, /^RestartSec=1$/m);
    assert.match(text, /^CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE$/m);
    assert.match(text, /^DeviceAllow=\/dev\/net\/tun rw$/m);
    assert.match(text, /AF_NETLINK/);
    assert.match(text, new RegExp(`^StateDirectory=portcullis/${role}$`, "m"));
    const exec = text.match(/^ExecStart=(.*)$/m)![1];
    assert.ok(exec.includes(` ${role === "edge" ? "edge" : "connect"} --data-dir `), exec);
    assert.ok(exec.endsWith(" --gateway"));
    // Only the connector rewrites resolv.conf.
    const rw = text.match(/^ReadWritePaths=(.*)$/m)![1].split(" ");
    assert.equal(rw.includes("/etc"), role === "connector");
    assert.doesNotMatch(text, /MemoryDenyWriteExecute=yes/);
  }
  // A data directory outside /var/lib becomes a writable path instead.
  const custom = renderUnit({ role: "edge", program, dataDir: "/srv/pc edge" });
  assert.match(custom, /--data-dir "\/srv\/pc edge"/);
  assert.match(custom, /^ReadWritePaths=\/run \/srv\/pc edge$/m);
  assert.doesNotMatch(custom, /StateDirectory=/);
});

Deno.test({
  name: "renderUnit: systemd-analyze verify accepts both units without a warning",
  ignore: !hasAnalyze,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pcunit" });
    try {
      for (const role of ["edge", "connector"] as const) {
        const path = `${dir}/${unitName(role)}`;
        await Deno.writeTextFile(path, renderUnit({ role, program }));
        const r = await run("systemd-analyze", ["verify", path]);
        assert.equal(r.code, 0, r.err);
        assert.equal(r.err.trim(), "", `systemd-analyze verify warned: ${r.err}`);
      }
      // And it would catch a mistake: an unknown key is reported.
      const bad = `${dir}/bad.service`;
      await Deno.writeTextFile(
        bad,
        renderUnit({ role: "edge", program }) + "\n[Service]\nBogus=1\n",
      );
      assert.match((await run("systemd-analyze", ["verify", bad])).err, /Unknown key/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("portcullis service: dry run, install, uninstall, bad input", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pcunit" });
  try {
    const dry = await run(Deno.execPath(), [
      "run",
      "-A",
      MAIN,
      "service",
      "install",
      "edge",
      "--dry-run",
    ]);
    assert.equal(dry.code, 0, dry.err);
    assert.match(dry.out, /^# \/etc\/systemd\/system\/portcullis-edge\.service$/m);
    assert.match(dry.out, /^ExecStart=.* edge --data-dir \/var\/lib\/portcullis\/edge$/m);

    const args = ["run", "-A", MAIN, "service"];
    const inst = await run(Deno.execPath(), [
      ...args,
      "install",
      "connector",
      "--unit-dir",
      dir,
      "--",
      "--gateway",
    ]);
    assert.equal(inst.code, 0, inst.err);
    const text = await Deno.readTextFile(`${dir}/portcullis-connector.service`);
    assert.match(text, /connect --data-dir \/var\/lib\/portcullis\/connector --gateway$/m);
    assert.equal((await Deno.stat(`${dir}/portcullis-connector.service`)).mode! & 0o777, 0o644);

    const un = await run(Deno.execPath(), [...args, "uninstall", "connector", "--unit-dir", dir]);
    assert.equal(un.code, 0, un.err);
    await assert.rejects(Deno.stat(`${dir}/portcullis-connector.service`));

    const bad = await run(Deno.execPath(), [...args, "install", "gateway", "--unit-dir", dir]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /Unknown role "gateway"/);
    const verb = await run(Deno.execPath(), [...args, "start"]);
    assert.equal(verb.code, 2);
    assert.match(verb.err, /Unknown service action "start"/);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing half-written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
