/**
 * Where `portcullis connect` takes its enrolment key from
 * (src/connector/key_source.ts): each source, the refusals, the warning.
 * The real files and standard input are exercised through the CLI at the
 * end; the lab check that no command line holds a key is in
 * test/e2e/lab_test.ts.
 */
import assert from "node:assert/strict";
import {
  ARGUMENT_WARNING,
  KEY_ENV,
  type KeySourceIo,
  resolveEnrollmentKey,
} from "../../src/connector/key_source.ts";

/** A syntactically valid key (the connector checks the shape before using it). */
function makeKey(): string {
  const payload = { u: "https://edge.example:8443", c: "a".repeat(64), s: "s".repeat(32) };
  const b64 = btoa(JSON.stringify(payload)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
  return `pc1.${b64}`;
}

function fakeIo(o: {
  env?: Record<string, string>;
  files?: Record<string, { text: string; mode: number; isFile?: boolean }>;
  stdin?: string;
}) {
  const env = { ...o.env };
  const warnings: string[] = [];
  let stdinReads = 0;
  const io: KeySourceIo = {
    env: { get: (n) => env[n], delete: (n) => void delete env[n] },
    stat: (p) => {
      const f = o.files?.[p];
      if (!f) return Promise.reject(new Error("No such file or directory (os error 2)"));
      return Promise.resolve({ isFile: f.isFile ?? true, mode: f.mode });
    },
    readTextFile: (p) => Promise.resolve(o.files![p].text),
    readStdin: () => {
      stdinReads++;
      return Promise.resolve(o.stdin ?? "");
    },
    warn: (l) => warnings.push(l),
  };
  return { io, env, warnings, stdinReads: () => stdinReads };
}

Deno.test("key source: a file readable by its owner only", async () => {
  const key = makeKey();
  const f = fakeIo({ files: { "/k": { text: `\n  ${key}  \nsecond line\n`, mode: 0o100600 } } });
  assert.deepEqual(await resolveEnrollmentKey({ keyFile: "/k" }, f.io), {
    key,
    source: 'the file "/k"',
  });
  assert.deepEqual(f.warnings, []);
  for (const mode of [0o100400, 0o100700]) {
    const g = fakeIo({ files: { "/k": { text: key, mode } } });
    assert.equal((await resolveEnrollmentKey({ keyFile: "/k" }, g.io))?.key, key);
  }
});

Deno.test("key source: a file group or others can read is refused, naming the fix", async () => {
  for (
    const [mode, shown] of [[0o100644, "0644"], [0o100640, "0640"], [0o100604, "0604"]] as const
  ) {
    const f = fakeIo({ files: { "/etc/pc.key": { text: makeKey(), mode } } });
    await assert.rejects(
      () => resolveEnrollmentKey({ keyFile: "/etc/pc.key" }, f.io),
      (e: Error) => {
        assert.equal(
          e.message,
          `Refusing the enrolment key file "/etc/pc.key": it is readable by group or others (mode ${shown}), so the key may have leaked. Make it private with: chmod 600 "/etc/pc.key"`,
        );
        return true;
      },
    );
  }
});

Deno.test("key source: unusable files and contents say which and never echo the key", async () => {
  const secret = "pc1.not-base64url!!" + "x".repeat(40);
  const table: [Record<string, { text: string; mode: number; isFile?: boolean }>, RegExp][] = [
    [{}, /^Cannot read the enrolment key file "\/k": No such file/],
    [{ "/k": { text: "", mode: 0o100600, isFile: false } }, /it is not a regular file$/],
    [
      { "/k": { text: "\n \n", mode: 0o100600 } },
      /^No enrolment key in the file "\/k": it is empty$/,
    ],
    [
      { "/k": { text: secret, mode: 0o100600 } },
      /^The enrolment key from the file "\/k" is not usable: /,
    ],
  ];
  for (const [files, want] of table) {
    const f = fakeIo({ files });
    await assert.rejects(() => resolveEnrollmentKey({ keyFile: "/k" }, f.io), (e: Error) => {
      assert.match(e.message, want);
      assert.ok(!e.message.includes(secret.slice(4, 20)), "the key is not in the message");
      return true;
    });
  }
});

Deno.test("key source: standard input only when asked with --key-file -", async () => {
  const key = makeKey();
  const f = fakeIo({ stdin: `${key}\n` });
  assert.deepEqual(await resolveEnrollmentKey({ keyFile: "-" }, f.io), {
    key,
    source: "standard input",
  });
  const none = fakeIo({ stdin: `${key}\n` });
  assert.equal(await resolveEnrollmentKey({}, none.io), null, "no key given: none taken");
  assert.equal(none.stdinReads(), 0, "standard input is not touched");
  await assert.rejects(
    () => resolveEnrollmentKey({ keyFile: "-" }, fakeIo({ stdin: "" }).io),
    /No enrolment key in standard input: it is empty$/,
  );
});

Deno.test("key source: the environment variable, removed once read", async () => {
  const key = makeKey();
  const f = fakeIo({ env: { [KEY_ENV]: ` ${key}\n` } });
  assert.deepEqual(await resolveEnrollmentKey({}, f.io), {
    key,
    source: `the ${KEY_ENV} environment variable`,
  });
  assert.equal(f.env[KEY_ENV], undefined, "children do not inherit it");
  assert.deepEqual(f.warnings, []);
});

Deno.test("key source: the argument still works, with a warning naming the risk and the ways out", async () => {
  const key = makeKey();
  const f = fakeIo({});
  assert.deepEqual(await resolveEnrollmentKey({ argument: key }, f.io), {
    key,
    source: "the command-line argument",
  });
  assert.deepEqual(f.warnings, [ARGUMENT_WARNING]);
  assert.match(
    ARGUMENT_WARNING,
    /visible to every user of this machine \(ps, \/proc\/<pid>\/cmdline\)/,
  );
  assert.match(ARGUMENT_WARNING, /--key-file FILE .*--key-file - .*PORTCULLIS_ENROLLMENT_KEY/);
  assert.ok(!ARGUMENT_WARNING.includes("pc1."));
});

Deno.test("key source: two sources at once are refused", async () => {
  const key = makeKey();
  const table: [Parameters<typeof resolveEnrollmentKey>[0], Record<string, string>, string][] = [
    [{ argument: key, keyFile: "/k" }, {}, "--key-file and the command-line argument"],
    [{ keyFile: "-" }, { [KEY_ENV]: key }, `--key-file - and ${KEY_ENV}`],
    [{ argument: key }, { [KEY_ENV]: key }, `${KEY_ENV} and the command-line argument`],
  ];
  for (const [input, env, named] of table) {
    const f = fakeIo({ env, files: { "/k": { text: key, mode: 0o100600 } }, stdin: key });
    await assert.rejects(
      () => resolveEnrollmentKey(input, f.io),
      (e: Error) => e.message === `Give the enrolment key one way only, not with ${named}`,
    );
    assert.equal(f.stdinReads(), 0);
  }
});

Deno.test("key source: through the real CLI, bad keys stop the connector before it starts", async () => {
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ prefix: "pc-keysrc-" });
  const run = async (args: string[], stdin?: string, env: Record<string, string> = {}) => {
    const p = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "connect", ...args, "--data-dir", `${dir}/data`],
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      env,
    }).spawn();
    if (stdin !== undefined) {
      const w = p.stdin.getWriter();
      await w.write(new TextEncoder().encode(stdin));
      await w.close();
    }
    const o = await p.output();
    return { code: o.code, err: new TextDecoder().decode(o.stderr) };
  };
  try {
    const open = `${dir}/open.key`;
    await Deno.writeTextFile(open, makeKey() + "\n", { mode: 0o644 });
    await Deno.chmod(open, 0o644);
    const r1 = await run(["--key-file", open]);
    assert.equal(r1.code, 2);
    assert.match(r1.err, /Refusing the enrolment key file ".*open\.key": .*mode 0644.*chmod 600/);
    const r2 = await run(["--key-file", "-"], "not a key\n");
    assert.equal(r2.code, 2);
    assert.match(r2.err, /The enrolment key from standard input is not usable/);
    const r3 = await run([], undefined, { [KEY_ENV]: "garbage" });
    assert.equal(r3.code, 2);
    assert.match(r3.err, new RegExp(`The enrolment key from the ${KEY_ENV} environment variable`));
    const r4 = await run(["pc1.garbage"]);
    assert.equal(r4.code, 2);
    assert.ok(r4.err.includes(ARGUMENT_WARNING), "the warning comes first");
    assert.equal(
      await Deno.stat(`${dir}/data`).then(() => true, () => false),
      false,
      "nothing was set up",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
