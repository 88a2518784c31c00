/**
 * The update guard with real processes: a new version that exits at once,
 * or hangs past its deadline, is replaced by the previous program (restored
 * on disk, started again, the release marked bad); one that confirms (the
 * pending record goes) ends the watch with nothing touched.
 */
import assert from "node:assert/strict";
import type { RestartPlan } from "../../src/connector/restart.ts";
import { superviseUpdate, updatePending } from "../../src/connector/update_guard.ts";
import { loadUpdates, saveUpdates } from "../../src/connector/updater.ts";
import { setLogSinks } from "../../src/log.ts";

setLogSinks([]);

async function setup(deadlineInMs: number) {
  const dir = await Deno.makeTempDir({ prefix: "pcguard" });
  const program = `${dir}/portcullis`;
  await Deno.writeTextFile(program, "new\n");
  await Deno.writeTextFile(`${program}.previous`, "old\n");
  const now = Date.now();
  await saveUpdates(dir, {
    pending: {
      from: "0.1.0",
      to: "0.2.0",
      startedAt: now,
      deadline: now + deadlineInMs,
      boots: 0,
      state: "trying",
    },
    bad: [],
    unreported: null,
  });
  const started: string[][] = [];
  const children: Deno.ChildProcess[] = [];
  const plan = (script: string): Extract<RestartPlan, { kind: "reexec" }> => ({
    kind: "reexec",
    program: "/bin/sh",
    args: ["-c", script],
    env: { PATH: "/usr/bin:/bin", PORTCULLIS_RESTART_WAIT_PID: "1" },
    cwd: dir,
  });
  const spawn = (p: Extract<RestartPlan, { kind: "reexec" }>) => {
    started.push([...p.args, p.env.PORTCULLIS_RESTART_WAIT_PID ?? "-"]);
    const c = new Deno.Command(p.program, { args: p.args, env: p.env, clearEnv: true, cwd: p.cwd })
      .spawn();
    children.push(c);
    return c;
  };
  return {
    dir,
    program,
    plan,
    spawn,
    started,
    async close() {
      for (const c of children) {
        try {
          c.kill("SIGKILL");
        } catch { /* exited */ }
        await c.status;
      }
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("update guard: a new version that exits at once is replaced by the previous", async () => {
  const s = await setup(60_000);
  try {
    assert.equal(await updatePending(s.dir), true);
    const out = await superviseUpdate({
      dataDir: s.dir,
      program: s.program,
      plan: s.plan("exit 3"),
      spawn: s.spawn,
      pollMs: 20,
    });
    assert.equal(out, "rolled_back");
    assert.equal(await Deno.readTextFile(s.program), "old\n");
    const f = await loadUpdates(s.dir);
    assert.equal(f.pending?.state, "rolled_back");
    assert.match(f.pending!.reason!, /exited \(code 3\) before reporting to the edge/);
    assert.deepEqual(f.bad, ["0.2.0"]);
    // Started twice (new, then the previous), never told to wait for the guard's pid.
    assert.deepEqual(s.started.map((a) => a.at(-1)), ["-", "-"]);
  } finally {
    await s.close();
  }
});

Deno.test("update guard: a hung new version is stopped past its deadline", async () => {
  const s = await setup(100);
  try {
    const out = await superviseUpdate({
      dataDir: s.dir,
      program: s.program,
      plan: s.plan("sleep 30"),
      spawn: s.spawn,
      pollMs: 20,
      graceMs: 100,
    });
    assert.equal(out, "rolled_back");
    assert.equal(await Deno.readTextFile(s.program), "old\n");
    assert.match((await loadUpdates(s.dir)).pending!.reason!, /within 0\.1 s/);
    assert.equal(s.started.length, 2);
  } finally {
    await s.close();
  }
});

Deno.test("update guard: a new version that confirms ends the watch, nothing touched", async () => {
  const s = await setup(60_000);
  try {
    const confirm =
      `sleep 0.2; printf '{"pending":null,"bad":[],"unreported":null}' > updates.json; sleep 30`;
    const out = await superviseUpdate({
      dataDir: s.dir,
      program: s.program,
      plan: s.plan(confirm),
      spawn: s.spawn,
      pollMs: 20,
    });
    assert.equal(out, "confirmed");
    assert.equal(await Deno.readTextFile(s.program), "new\n");
    assert.equal(s.started.length, 1);
    assert.equal(await updatePending(s.dir), false);
  } finally {
    await s.close();
  }
});
