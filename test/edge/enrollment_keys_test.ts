/** Enrolment key strings, durations and the CLI command. */
import { testStore } from "../http/test_store.ts";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/clock.ts";
import { runKeyCreate } from "../../src/edge/cli_key.ts";
import {
  decodeEnrollmentKey,
  encodeEnrollmentKey,
  usableKey,
} from "../../src/edge/enrollment_keys.ts";
import { parseDuration } from "../../src/duration.ts";

Deno.test("enrolment key: pc1.<base64url JSON> round trip and malformed keys", () => {
  const p = { u: "https://edge.example:8443", c: "0".repeat(64), s: "s".repeat(43) };
  const k = encodeEnrollmentKey(p);
  assert.match(k, /^pc1\.[A-Za-z0-9_-]+$/);
  assert.deepEqual(decodeEnrollmentKey(k), p);
  for (
    const bad of ["pc2.abc", "pc1.", "pc1.%%%", `pc1.${btoa("{}")}`, `pc1.${btoa("not json")}`]
  ) {
    assert.throws(() => decodeEnrollmentKey(bad), /Cannot read enrolment key/, bad);
  }
});

Deno.test("durations", () => {
  const table: [string, number | null][] = [
    ["90s", 90_000],
    ["30m", 1_800_000],
    ["24h", 86_400_000],
    ["7d", 604_800_000],
    ["never", null],
  ];
  for (const [t, want] of table) assert.equal(parseDuration(t), want, t);
  for (const bad of ["", "24", "1w", "-1h", "0h", "1.5h"]) {
    assert.throws(() => parseDuration(bad), bad);
  }
});

Deno.test("cli: edge key create prints the key once and stores only its hash", async () => {
  const store = await testStore();
  const clock = new ManualClock();
  const out: string[] = [];
  const key = await runKeyCreate({ reusable: true, expires: "1h", group: "eng" }, {
    store,
    clock,
    apiUrl: "https://edge.example:8443",
    caSha256: "f".repeat(64),
    print: (l) => out.push(l),
  });
  assert.equal(out[0], key);
  assert.match(out[1], /reusable, expires .*group eng/);
  const { s } = decodeEnrollmentKey(key);
  assert.ok(!JSON.stringify(store.enrollmentKeys.list()).includes(s));
  assert.equal(usableKey(store, s, clock.now()).group, "eng");
  assert.equal(usableKey(store, s, clock.now()).machine, true, "a machine key by default");
  const userKey = await runKeyCreate({ user: true }, {
    store,
    clock,
    apiUrl: "https://edge.example:8443",
    caSha256: "f".repeat(64),
    print: () => {},
  });
  assert.equal(usableKey(store, decodeEnrollmentKey(userKey).s, clock.now()).machine, false);
  clock.advance(3600_001);
  assert.throws(() => usableKey(store, s, clock.now()), /expired/);
  await assert.rejects(
    () =>
      runKeyCreate({ group: "bad group" }, {
        store,
        clock,
        apiUrl: "https://x",
        caSha256: "f".repeat(64),
        print: () => {},
      }),
    /Cannot use group/,
  );
});

Deno.test("cli: edge key create --key-file writes a new 0600 file and prints no key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc-keyfile-" });
  const store = await testStore();
  const clock = new ManualClock();
  const ctx = (out: string[]) => ({
    store,
    clock,
    apiUrl: "https://edge.example:8443",
    caSha256: "f".repeat(64),
    print: (l: string) => out.push(l),
  });
  try {
    const out: string[] = [];
    const path = `${dir}/ws.key`;
    const key = await runKeyCreate({ keyFile: path }, ctx(out));
    assert.equal(await Deno.readTextFile(path), key + "\n");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal(out.length, 1, "only the summary");
    assert.ok(!out[0].includes(key) && !out[0].includes("pc1."), "the key is not printed");
    assert.match(out[0], /Written to .*ws\.key \(mode 0600\), for: portcullis connect --key-file/);

    // An existing file is never overwritten, and no key is created for it.
    const before = store.enrollmentKeys.list().length;
    await assert.rejects(
      () => runKeyCreate({ keyFile: path }, ctx([])),
      /Cannot write the enrolment key to ".*ws\.key": the file exists/,
    );
    assert.equal(store.enrollmentKeys.list().length, before);
    assert.equal(await Deno.readTextFile(path), key + "\n", "the first key is untouched");
    // A key that cannot be created leaves no file behind.
    await assert.rejects(
      () => runKeyCreate({ keyFile: `${dir}/bad.key`, group: "bad group" }, ctx([])),
      /Cannot use group/,
    );
    assert.equal(await Deno.stat(`${dir}/bad.key`).then(() => true, () => false), false);
    await assert.rejects(
      () => runKeyCreate({ keyFile: `${dir}/no/such/dir.key` }, ctx([])),
      /Cannot write the enrolment key to ".*dir\.key": /,
    );
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
