/**
 * tiedCommand: a child started through it dies when its parent is killed
 * with SIGKILL (no cleanup runs); a child started plainly survives, which
 * shows the test can tell the two apart.
 */
import assert from "node:assert/strict";
import { tiedArgv } from "../../src/net/tied_command.ts";
import { waitUntil } from "../e2e/netns.ts";
import { alive } from "../e2e/procs.ts";

const TIED = new URL("../../src/net/tied_command.ts", import.meta.url).href;

/** Starts a Deno parent that spawns `sleep 300` (tied or not), prints its pid and waits. */
async function orphanAfterKill(tied: boolean): Promise<number> {
  const code = tied
    ? `import { tiedCommand } from ${JSON.stringify(TIED)};
       const c = tiedCommand("sleep", { args: ["300"], stdin: "null", stdout: "null" }).spawn();`
    : `const c = new Deno.Command("sleep", { args: ["300"], stdin: "null", stdout: "null" }).spawn();`;
  const parent = new Deno.Command(Deno.execPath(), {
    args: ["eval", `${code}\nconsole.log(c.pid); await c.status;`],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = parent.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const pid = Number(text.trim());
  assert.ok(pid > 0 && alive(pid), `child pid ${text}`);
  parent.kill("SIGKILL");
  await parent.status;
  reader.releaseLock();
  await parent.stdout.cancel().catch(() => {});
  return pid;
}

Deno.test({
  name: "tiedCommand: the child gets SIGKILL when its parent is killed -9",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const pid = await orphanAfterKill(true);
    await waitUntil(
      "the tied child to die with its parent",
      () => Promise.resolve(!alive(pid)),
      5000,
    );
  },
});

Deno.test({
  name: "tiedCommand: control — a plain child outlives a killed parent",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const pid = await orphanAfterKill(false);
    try {
      // The kernel sends the death signal before the parent's exit can be
      // waited for, so by now a tied child would already be marked for death.
      assert.ok(alive(pid), "a plain child survives, so the tied test can fail");
    } finally {
      Deno.kill(pid, "SIGKILL");
    }
  },
});

Deno.test("tiedArgv: wraps the program in setpriv --pdeathsig KILL", () => {
  const t = tiedArgv("ip", ["-o", "monitor"]);
  if (t.program === "ip") return; // no setpriv here: run as is
  assert.deepEqual(t.args, ["--pdeathsig", "KILL", "--", "ip", "-o", "monitor"]);
});
