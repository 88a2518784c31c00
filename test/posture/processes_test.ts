/** Process and EDR collectors over a fake /proc tree, and the real one. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { collectProcesses, collectServices, listProcesses } from "../../src/posture/mod.ts";

/** A fake /proc: pid → comm (cut like the kernel's), cmdline argv, exe target. */
async function fakeProc(
  dir: string,
  procs: { pid: number; comm: string; argv: string[]; exe?: string }[],
): Promise<void> {
  await Deno.mkdir(`${dir}/self`, { recursive: true }); // not a pid: ignored
  for (const p of procs) {
    const d = `${dir}/${p.pid}`;
    await Deno.mkdir(d, { recursive: true });
    await Deno.writeTextFile(`${d}/comm`, `${p.comm.slice(0, 15)}\n`);
    await Deno.writeTextFile(`${d}/cmdline`, p.argv.map((a) => `${a}\0`).join(""));
    if (p.exe) await Deno.symlink(p.exe, `${d}/exe`);
  }
}

Deno.test("processes: full names from exe and argv[0], never the 15-character comm", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bin = `${dir}/bin`;
    await Deno.mkdir(bin);
    await Deno.writeTextFile(`${bin}/falcon-sensor-agent`, "ELF agent v1");
    await Deno.writeTextFile(`${bin}/python3.11`, "ELF python");
    const proc = `${dir}/proc`;
    await fakeProc(proc, [
      { pid: 1, comm: "systemd", argv: ["/sbin/init", "splash"], exe: "/usr/lib/systemd/systemd" },
      {
        pid: 40,
        comm: "falcon-sensor-agent",
        argv: [`${bin}/falcon-sensor-agent`, "--daemon"],
        exe: `${bin}/falcon-sensor-agent`,
      },
      { pid: 41, comm: "sshd", argv: ["sshd: alice@pts/0"] }, // rewritten argv, exe unreadable
      { pid: 42, comm: "python3", argv: ["/usr/bin/python3", "x.py"], exe: `${bin}/python3.11` },
      { pid: 43, comm: "kthreadd", argv: [] }, // kernel thread: no exe, empty cmdline
    ]);
    const names = await collectProcesses(proc);
    const table: [string, boolean][] = [
      ["falcon-sensor-agent", true],
      ["falcon-sensor-a", false], // comm's cut name is not a process name
      ["systemd", true],
      ["init", true],
      ["sshd", true],
      ["python3", true],
      ["python3.11", true],
      ["kthreadd", false],
      ["x.py", false],
    ];
    for (const [name, present] of table) assert.equal(names.includes(name), present, name);
    const list = await listProcesses(proc);
    assert.equal(list.find((p) => p.pid === 40)?.exe, `${bin}/falcon-sensor-agent`);

    // EDR: the service's process and its running binary's hash.
    const sha = createHash("sha256").update("ELF agent v1").digest("hex");
    const found = await collectServices(["falcon-sensor-agent", "wazuh-agentd", "sshd"], proc);
    assert.deepEqual(found.get("falcon-sensor-agent"), { running: true, sha256: sha });
    assert.deepEqual(found.get("wazuh-agentd"), { running: false });
    assert.deepEqual(found.get("sshd"), { running: true }, "running, binary not readable");
    // A new binary at the same path is hashed anew (the cache is keyed by file identity).
    await Deno.writeTextFile(`${bin}/falcon-sensor-agent`, "ELF agent v2 (tampered)");
    const again = await collectServices(["falcon-sensor-agent"], proc);
    assert.notEqual(again.get("falcon-sensor-agent")?.sha256, sha);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("processes: the real /proc shows this deno by its full name", async () => {
  const names = await collectProcesses();
  assert.ok(names.includes("deno"), names.slice(0, 20).join(","));
  const me = (await collectServices(["deno"])).get("deno");
  assert.equal(me?.running, true);
  assert.match(me?.sha256 ?? "", /^[0-9a-f]{64}$/);
});
