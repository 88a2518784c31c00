import assert from "node:assert/strict";
import { parseCliArgs } from "../src/cli_args.ts";

Deno.test("cli args: flags, switches and positionals; bad flags named in our words", () => {
  const spec = { name: { type: "string" as const }, gateway: { type: "boolean" as const } };
  assert.deepEqual(parseCliArgs(["k1", "--name", "pc0", "--gateway"], spec, "portcullis x"), {
    values: { name: "pc0", gateway: true },
    positionals: ["k1"],
  });
  const cases: [string[], RegExp][] = [
    [["--bogus"], /^Unknown option "--bogus" for "portcullis x"\. Run "portcullis help"/],
    [["--name"], /^Option "--name" of "portcullis x" needs a value\./],
  ];
  for (const [args, want] of cases) {
    assert.throws(
      () => parseCliArgs(args, spec, "portcullis x"),
      (e: Error & { code?: string }) => {
        assert.match(e.message, want);
        assert.equal(e.code, "usage");
        return true;
      },
    );
  }
});
