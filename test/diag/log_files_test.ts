/**
 * Rotating log files: bounded by keep × maxBytes, newest records kept,
 * secrets stripped on the way in, files 0600, cleared on request, and part
 * of the export bundle.
 */
import assert from "node:assert/strict";
import { unzipSync } from "fflate";
import { attachLogFiles, RotatingLogFiles } from "../../src/diag/log_files.ts";
import { buildBundle } from "../../src/diag/export_bundle.ts";
import { logger, type LogRecord, setLogSinks } from "../../src/log.ts";

setLogSinks([]);

const rec = (i: number, extra: Record<string, unknown> = {}): LogRecord => ({
  ts: new Date(1_700_000_000_000 + i).toISOString(),
  level: "info",
  component: "test",
  msg: `record ${i} ${"x".repeat(100)}`,
  ...extra,
});

Deno.test("RotatingLogFiles: rotation keeps the newest records within keep × maxBytes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pclogs" });
  try {
    const f = new RotatingLogFiles({
      dir: `${dir}/logs`,
      name: "connector",
      maxBytes: 4096,
      keep: 3,
    });
    for (let i = 0; i < 500; i++) f.write(rec(i));
    const names = [...Deno.readDirSync(`${dir}/logs`)].map((e) => e.name).sort();
    assert.deepEqual(names, ["connector.log", "connector.log.1", "connector.log.2"]);
    let total = 0;
    for (const n of names) {
      const st = Deno.statSync(`${dir}/logs/${n}`);
      assert.ok(st.size <= 4096, `${n} is ${st.size} bytes`);
      assert.equal(st.mode! & 0o777, 0o600, n);
      total += st.size;
    }
    assert.ok(total <= 3 * 4096);
    assert.equal(Deno.statSync(`${dir}/logs`).mode! & 0o777, 0o700);
    const files = f.read();
    assert.deepEqual(files.map((x) => x.name), [
      "connector.log.2",
      "connector.log.1",
      "connector.log",
    ]);
    const lines = files.flatMap((x) => x.text.trim().split("\n")).map((l) => JSON.parse(l));
    // Oldest first, contiguous, ending with the last record written.
    assert.equal(lines.at(-1).msg.split(" ")[1], "499");
    for (let i = 1; i < lines.length; i++) {
      assert.equal(Number(lines[i].msg.split(" ")[1]), Number(lines[i - 1].msg.split(" ")[1]) + 1);
    }
    assert.ok(lines.length < 500, "old records were dropped");

    // A new instance appends to what is there (a restart keeps the history).
    f.close();
    const g = new RotatingLogFiles({
      dir: `${dir}/logs`,
      name: "connector",
      maxBytes: 4096,
      keep: 3,
    });
    g.write(rec(500));
    assert.match(g.read().at(-1)!.text, /record 500/);

    g.clear();
    assert.deepEqual([...Deno.readDirSync(`${dir}/logs`)].map((e) => e.name), ["connector.log"]);
    assert.equal(Deno.statSync(`${dir}/logs/connector.log`).size, 0);
    g.write(rec(501));
    assert.match(Deno.readTextFileSync(`${dir}/logs/connector.log`), /record 501/);
    g.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RotatingLogFiles: no secret reaches the disk or the bundle", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pclogs" });
  try {
    const f = new RotatingLogFiles({ dir, name: "edge" });
    const key = "pc1.eyJhbGciOiJFZERTQSJ9abcdefghijklmnop";
    const cred = "pcd_AAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    f.write(rec(1, { password: "hunter2-hunter2", token: "t0k3n-value-123" }));
    f.write(rec(2, { msg: `enrolling with ${key} and credential ${cred}` }));
    f.write(rec(3, { detail: "-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----" }));
    const disk = Deno.readTextFileSync(`${dir}/edge.log`);
    for (const secret of ["hunter2-hunter2", "t0k3n-value-123", key, cred, "MIIEv"]) {
      assert.ok(!disk.includes(secret), `${secret} on disk`);
    }
    assert.match(disk, /\[redacted\]/);
    const zip = unzipSync(buildBundle({
      role: "edge",
      version: "t",
      logs: [],
      state: {},
      config: {},
      notifications: [],
      logFiles: f.read(),
    }));
    const text = new TextDecoder().decode(zip["logs/edge.log"]);
    assert.match(text, /enrolling with \[redacted\]/);
    for (const secret of ["hunter2-hunter2", key, cred]) assert.ok(!text.includes(secret));
    const manifest = JSON.parse(new TextDecoder().decode(zip["manifest.json"]));
    assert.deepEqual(manifest.logFiles, ["logs/edge.log"]);
    f.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("attachLogFiles: records reach the file until detached; an unusable directory is survived", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pclogs" });
  try {
    const a = attachLogFiles({ dir: `${dir}/logs`, name: "edge" });
    assert.ok(a.files);
    logger("test").warn("through the sink");
    a.detach();
    a.detach();
    logger("test").warn("after detach");
    const text = Deno.readTextFileSync(`${dir}/logs/edge.log`);
    assert.match(text, /through the sink/);
    assert.doesNotMatch(text, /after detach/);
    // A file where the directory should be: no files, no exception.
    Deno.writeTextFileSync(`${dir}/blocker`, "");
    const b = attachLogFiles({ dir: `${dir}/blocker/logs`, name: "edge" });
    assert.equal(b.files, null);
    b.detach();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
