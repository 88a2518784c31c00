import assert from "node:assert/strict";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function doctor(args: string[]) {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "doctor", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: o.code,
    out: new TextDecoder().decode(o.stdout),
    err: new TextDecoder().decode(o.stderr),
  };
}

/** A loopback port nobody listens on. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("doctor CLI: no connector answering is a service fault (exit 1), in text and JSON", async () => {
  const port = freePort();
  const text = await doctor(["--console", `127.0.0.1:${port}`]);
  assert.equal(text.code, 1, text.err);
  assert.match(text.out, /FAULT service/);
  assert.match(text.out, /fix: Start the connector/);
  const json = await doctor(["--json", "--console", `127.0.0.1:${port}`]);
  assert.equal(json.code, 1);
  const r = JSON.parse(json.out);
  assert.equal(r.overall, "fault");
  assert.equal(r.firstFault, "service");
  assert.equal(r.verdicts[0].cause, "service_not_running");
});

Deno.test("doctor CLI: a connector's report is printed and its exit code returned", async () => {
  const report = {
    overall: "healthy",
    exitCode: 0,
    firstFault: null,
    verdicts: [{ hop: "service", status: "ok", cause: "ok", evidence: "Running.", fix: null }],
    checkedAt: new Date().toISOString(),
    durationMs: 5,
  };
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) =>
      new URL(req.url).pathname === "/api/v1/diagnose"
        ? Response.json(report)
        : new Response("no", { status: 404 }),
  );
  const r = await doctor(["--console", `127.0.0.1:${server.addr.port}`]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /All hops healthy/);
});

Deno.test("doctor CLI: a bad --console value is named (exit 2)", async () => {
  const r = await doctor(["--console", "not a host"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /Invalid --console "not a host"/);
  const extra = await doctor(["now"]);
  assert.equal(extra.code, 2);
  assert.match(extra.err, /Unexpected argument "now"/);
});
