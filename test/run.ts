/**
 * The test command: prepares the machine, runs `deno test` over test/, and
 * ends with the plain "N passed, N failed" line CI reads.
 *
 * Extra arguments are passed to `deno test` (e.g. a filter or a file).
 */
import { ensureDebianPackages } from "./prepare.ts";

const missing = await ensureDebianPackages();
if (missing.length) {
  console.log(`run: tests needing ${missing.join(", ")} will be skipped (not root)`);
}

const args = Deno.args.length ? Deno.args : ["test/"];
const child = new Deno.Command(Deno.execPath(), {
  args: ["test", "-A", "--no-prompt", ...args],
  stdout: "piped",
  stderr: "inherit",
  env: { NO_COLOR: "1" },
}).spawn();

let tail = "";
const decoder = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
}
const { code } = await child.status;
const m = tail.match(/(\d+) passed[^|]*\|\s*(\d+) failed/);
if (m) console.log(`\n${m[1]} passed, ${m[2]} failed`);
Deno.exit(code);
