/**
 * The test command: prepares the machine, runs `deno test` over test/, then
 * the edge's feature tests (those built on the `fixture` of
 * test/http/helpers.ts or on `testStore`) a second time on PostgreSQL, as a fleet's shared
 * store (test/http/test_store.ts), and ends with the plain
 * "N passed, N failed" line CI reads, summed over both passes.
 *
 * Extra arguments are passed to `deno test` (e.g. a filter or a file), and
 * then only that one pass runs (set PORTCULLIS_TEST_STORE=postgres to make it
 * the PostgreSQL one).
 */
import { ensureDebianPackages } from "./prepare.ts";
import { pgBinDir } from "../src/store/pg/cluster.ts";
import { TEST_STORE_ENV } from "./http/test_store.ts";

const missing = await ensureDebianPackages();
if (missing.length) {
  console.log(`run: tests needing ${missing.join(", ")} will be skipped (not root)`);
}

/** Runs one `deno test`; returns its exit code and its counts (null if it printed none). */
async function pass(args: string[], env: Record<string, string> = {}) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-prompt", ...args],
    stdout: "piped",
    stderr: "inherit",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
  let tail = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
  }
  const { code } = await child.status;
  const m = tail.match(/(\d+) passed[^|]*\|\s*(\d+) failed/);
  return { code, counts: m ? [Number(m[1]), Number(m[2])] : null };
}

/**
 * Test files outside the lab (test/e2e) whose stores come from the test
 * backend: built with `fixture`, or taking a store from `testStore`.
 */
async function fixtureTests(dir = "test"): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory && path !== "test/e2e") out.push(...await fixtureTests(path));
    else if (e.isFile && e.name.endsWith("_test.ts")) {
      const text = await Deno.readTextFile(path);
      const fixture = /\bhelpers\.ts"/.test(text) && /\bfixture\(/.test(text);
      if (fixture || /\btestStore\(/.test(text)) out.push(path);
    }
  }
  return out.sort();
}

const runs = [];
if (Deno.args.length) runs.push(await pass(Deno.args));
else {
  runs.push(await pass(["test/"]));
  if (pgBinDir() === null) {
    console.log("\nrun: PostgreSQL is not installed; the PostgreSQL pass is skipped");
  } else {
    const files = await fixtureTests();
    console.log(
      `\nrun: the ${files.length} files of edge feature tests again, on PostgreSQL (${TEST_STORE_ENV}=postgres)`,
    );
    runs.push(await pass(files, { [TEST_STORE_ENV]: "postgres" }));
  }
}
const counted = runs.filter((r) => r.counts);
if (counted.length) {
  const passed = counted.reduce((n, r) => n + r.counts![0], 0);
  const failed = counted.reduce((n, r) => n + r.counts![1], 0);
  console.log(`\n${passed} passed, ${failed} failed`);
}
Deno.exit(runs.find((r) => r.code !== 0)?.code ?? 0);
