import assert from "node:assert/strict";
import { caFingerprint } from "../../src/connector/ca_pin.ts";
import {
  CaPinMismatchError,
  EdgeApiError,
  EdgeTlsError,
  EdgeUnreachableError,
} from "../../src/connector/edge_api.ts";
import { bootstrapBase, parseEnrollmentKey } from "../../src/connector/enrollment_key.ts";
import { EdgeClient, fetchPinnedCa } from "../../src/http/edge_client.ts";
import { readSse, sseVersion } from "../../src/http/sse_read.ts";
import { fingerprintHash, generateDeviceKeys } from "../../src/connector/identity.ts";
import { FakeEdge, makeBundle, makeKey } from "../connector/fake_edge.ts";
import { makeCaAndServer } from "../connector/tls_fixture.ts";

const C = "a".repeat(64);
const S = "s".repeat(24);

Deno.test("parseEnrollmentKey: good keys and clear errors for bad ones", async (t) => {
  const good = makeKey({ u: "https://edge.example:8443", c: C, s: S });
  assert.deepEqual(parseEnrollmentKey(` ${good}\n`), {
    u: "https://edge.example:8443",
    c: C,
    s: S,
  });
  const table: [string, string, RegExp][] = [
    ["wrong prefix", "pc2.abc", /start with "pc1\."/],
    ["not base64url", "pc1.abc$def", /not base64url/],
    ["not json", "pc1." + btoa("hello").replace(/=+$/, ""), /not valid JSON/],
    ["missing secret", makeKey({ u: "https://e:1", c: C }), /s: /],
    ["bad hash", makeKey({ u: "https://e:1", c: "xyz", s: S }), /c: /],
    ["bad url", makeKey({ u: "not a url", c: C, s: S }), /u: /],
    ["http url", makeKey({ u: "http://e:1", c: C, s: S }), /must use https/],
    ["unknown field", makeKey({ u: "https://e:1", c: C, s: S, z: 1 }), /Cannot use enrolment key/],
    ["truncated", good.slice(0, good.length - 10), /JSON|base64url|Cannot/],
  ];
  for (const [name, key, re] of table) {
    await t.step(name, () => assert.throws(() => parseEnrollmentKey(key), re));
  }
});

Deno.test("bootstrapBase defaults to http://<host of u>:8081", () => {
  assert.equal(
    bootstrapBase({ u: "https://edge.example:8443/api/v1", c: C, s: S }),
    "http://edge.example:8081",
  );
  assert.equal(bootstrapBase({ u: "https://[::1]:8443", c: C, s: S }), "http://[::1]:8081");
  assert.equal(
    bootstrapBase({ u: "https://e:1", c: C, s: S, b: "http://10.0.0.1:9/" }),
    "http://10.0.0.1:9",
  );
});

Deno.test("SSE parsing and version extraction", async () => {
  const body = new Blob([
    ': comment\n\nevent: policy\ndata: {"version":"v2"}\n\nretry: 5\r\ndata: v3\r\n\r\ndata: {"x":1}\n\n',
  ]).stream();
  const evs = [];
  for await (const e of readSse(body)) evs.push(e);
  assert.deepEqual(evs.map((e) => e.event), ["policy", "message", "message"]);
  assert.deepEqual(evs.map((e) => sseVersion(e.data)), ["v2", "v3", null]);
});

/** A body that delivers `text` in the given chunk sizes (the network decides where TCP splits). */
function chunked(text: string, size: (i: number) => number): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      const n = Math.max(1, size(i++));
      c.enqueue(bytes.slice(at, at + n));
      at += n;
    },
  });
}

Deno.test("SSE parsing: events and lines split across chunks, even inside a CRLF or a UTF-8 character", async () => {
  const text = 'event: policy\r\ndata: {"version":"v2","note":"été"}\r\n\r\n: keepalive\n\n' +
    "id: 7\ndata: v3\ndata: more\n\n";
  for (
    const [name, size] of [
      ["one byte at a time", () => 1],
      ["seven bytes", () => 7],
      ["uneven", (i: number) => [3, 1, 12, 2, 40][i % 5]],
    ] as const
  ) {
    const evs = [];
    for await (const e of readSse(chunked(text, size))) evs.push(e);
    assert.deepEqual(evs, [
      { event: "policy", data: '{"version":"v2","note":"été"}', id: null },
      { event: "message", data: "v3\nmore", id: "7" },
    ], name);
  }
});

Deno.test("SSE parsing: a line that never ends is refused once it passes 1 MiB in total", async () => {
  // 20 chunks of 64 KiB with no line end: 1.25 MiB of one line, then the stream ends.
  let sent = 0;
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent++ === 20) return c.close();
      c.enqueue(new TextEncoder().encode("data: " + "x".repeat(64 * 1024)));
    },
  });
  await assert.rejects(async () => {
    for await (const _ of readSse(endless)) { /* nothing ends */ }
  }, /line over 1 MiB/);
});

async function enrolledClient(edge: FakeEdge) {
  const client = new EdgeClient({
    apiUrl: "https://edge.test:8443/api/v1/",
    caPem: "x",
    fetch: edge.fetch,
  });
  const k = await generateDeviceKeys();
  const res = await client.enroll({
    key: edge.secret,
    hostname: "ws1",
    os: "linux",
    osVersion: "12",
    connectorVersion: "0.1.0",
    fingerprint: { machineId: "m1", macs: ["02:00:00:00:00:01"] },
    wgPublicKey: k.wgPublicKey,
    signingPublicKey: k.signingPublicKey,
  });
  client.setCredentials(
    res.credential,
    await fingerprintHash({ machineId: "m1", macs: ["02:00:00:00:00:01"] }),
  );
  return { client, res };
}

Deno.test("EdgeClient against an in-process edge: enrol, policy ETag, errors, skew", async () => {
  const edge = new FakeEdge();
  edge.serverTimeOffsetMs = 120_000;
  const bad = new EdgeClient({ apiUrl: "https://edge.test:8443", caPem: "x", fetch: edge.fetch });
  const k = await generateDeviceKeys();
  await assert.rejects(
    () =>
      bad.enroll({
        key: "wrong-secret-123456",
        hostname: "ws1",
        os: "linux",
        osVersion: "12",
        connectorVersion: "0.1.0",
        fingerprint: { machineId: "m1", macs: [] },
        wgPublicKey: k.wgPublicKey,
        signingPublicKey: k.signingPublicKey,
      }),
    (e: unknown) => e instanceof EdgeApiError && e.code === "invalid_key" && e.status === 401,
  );
  const { client, res } = await enrolledClient(edge);
  assert.equal(res.deviceId, "dev-1");
  const skew = client.clockSkewMs!;
  assert.ok(Math.abs(skew - 120_000) < 5_000, `skew ${skew}`);
  const p1 = await client.fetchPolicy();
  assert.equal(p1.status, "updated");
  const etag = (p1 as { etag: string }).etag;
  assert.equal(etag, '"v1"');
  assert.deepEqual(await client.fetchPolicy(etag), { status: "unchanged" });
  edge.setPolicy(makeBundle("v2"));
  const p2 = await client.fetchPolicy(etag);
  assert.equal(p2.status === "updated" && p2.policy.version, "v2");
  await client.heartbeat({ state: "connected", transport: "udp", clockSkewMs: skew });
  assert.equal(edge.heartbeats.length, 1);
  await client.reportPosture({ payload: "{}", signature: `${"A".repeat(86)}==` });
  assert.equal(edge.postures.length, 1);
  const c2c = await client.registerC2c("ws1.clients.portcullis.internal");
  assert.equal(c2c.valid, true);
  await client.supportRequest("help", new Uint8Array([0x50, 0x4b, 3, 4, 1, 2, 3]));
  assert.deepEqual(edge.supports, [{ message: "help", size: 7 }]);
  // A wrong credential becomes a typed error carrying the edge's code.
  client.setCredentials("nope", "x");
  await assert.rejects(
    () => client.fetchPolicy(),
    (e: unknown) => e instanceof EdgeApiError && e.code === "unauthorized",
  );
  // An unreachable edge is its own error type.
  const dead = new EdgeClient({
    apiUrl: "https://127.0.0.1:1",
    caPem: "x",
    fetch: () => Promise.reject(new TypeError("error sending request: connection refused")),
  });
  await assert.rejects(() => dead.heartbeat({ state: "x", transport: null }), EdgeUnreachableError);
});

Deno.test("EdgeClient.followPolicy sees new versions and reconnects after a drop", async () => {
  const edge = new FakeEdge();
  const { client } = await enrolledClient(edge);
  const seen: string[] = [];
  const errors: string[] = [];
  const ac = new AbortController();
  let connects = 0;
  const done = client.followPolicy({
    signal: ac.signal,
    onVersion: (v) => seen.push(v),
    onError: (e) => errors.push(e.message),
    onConnected: () => connects++,
    minBackoffMs: 20,
    maxBackoffMs: 50,
  });
  const waitFor = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(cond());
  };
  await waitFor(() => seen.includes("v1"));
  edge.setPolicy(makeBundle("v2"));
  await waitFor(() => seen.includes("v2"));
  edge.down = true; // the stream ends and reconnects fail with 503
  await waitFor(() => errors.length >= 2);
  edge.down = false;
  edge.setPolicy(makeBundle("v3"));
  await waitFor(() => seen.includes("v3"));
  assert.ok(connects >= 2);
  ac.abort();
  await done;
});

Deno.test("EdgeClient.followPolicy stops on a refused credential", async () => {
  const edge = new FakeEdge();
  const { client } = await enrolledClient(edge);
  client.setCredentials("bad", "bad");
  await assert.rejects(
    () => client.followPolicy({ signal: new AbortController().signal, onVersion: () => {} }),
    (e: unknown) => e instanceof EdgeApiError && e.status === 401,
  );
});

Deno.test("real HTTPS: pinned CA works; a re-signing middlebox is refused", async () => {
  const good = await makeCaAndServer("Portcullis edge CA");
  const evil = await makeCaAndServer("Inspecting proxy CA");
  const edge = new FakeEdge();
  edge.caPem = good.caPem;
  const ac = new AbortController();
  const serve = (cert: string, key: string) =>
    Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert, key, signal: ac.signal, onListen() {} },
      edge.app.fetch,
    );
  const real = serve(good.certPem, good.keyPem);
  const mitm = serve(evil.certPem, evil.keyPem);
  const boot = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
    edge.app.fetch,
  );
  const bootUrl = `http://127.0.0.1:${boot.addr.port}`;
  try {
    const pin = await caFingerprint(good.caPem);
    // Bootstrap: fetch the CA over plain HTTP and check it against the pin.
    const payload = parseEnrollmentKey(
      makeKey({ u: `https://127.0.0.1:${real.addr.port}`, c: pin, s: edge.secret, b: bootUrl }),
    );
    const caPem = await fetchPinnedCa(payload);
    assert.equal(await caFingerprint(caPem), pin);
    assert.equal(caPem.match(/BEGIN CERTIFICATE/g)?.length, 1);
    // The real CA with a second CA appended (an on-path attacker) is refused.
    edge.caPem = good.caPem + evil.caPem;
    await assert.rejects(() => fetchPinnedCa(payload), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /exactly one certificate, found 2/);
      return true;
    });
    // So is the real CA followed by a private key block.
    edge.caPem = good.caPem + good.keyPem;
    await assert.rejects(() => fetchPinnedCa(payload), /exactly one certificate/);
    // A bootstrap answer with another CA is refused naming both hashes.
    edge.caPem = evil.caPem;
    const evilPin = await caFingerprint(evil.caPem);
    await assert.rejects(() => fetchPinnedCa(payload), (e: unknown) => {
      assert.ok(e instanceof CaPinMismatchError);
      assert.match(e.message, new RegExp(pin));
      assert.match(e.message, new RegExp(evilPin));
      assert.match(e.message, /middlebox/);
      return true;
    });
    edge.caPem = good.caPem;

    const client = new EdgeClient({ apiUrl: payload.u, caPem });
    const k = await generateDeviceKeys();
    const res = await client.enroll({
      key: edge.secret,
      hostname: "ws1",
      os: "linux",
      osVersion: "12",
      connectorVersion: "0.1.0",
      fingerprint: { machineId: "m1", macs: [] },
      wgPublicKey: k.wgPublicKey,
      signingPublicKey: k.signingPublicKey,
    });
    assert.equal(res.deviceId, "dev-1");
    assert.notEqual(client.clockSkewMs, null);
    client.close();

    // The same pinned client pointed at a server whose certificate another CA signed.
    const intercepted = new EdgeClient({ apiUrl: `https://127.0.0.1:${mitm.addr.port}`, caPem });
    await assert.rejects(
      () => intercepted.heartbeat({ state: "connecting", transport: null }),
      (e: unknown) => {
        assert.ok(e instanceof EdgeTlsError, String(e));
        assert.equal(e.code, "edge_tls_untrusted");
        assert.match(e.message, /not signed by the pinned edge CA/);
        assert.match(e.message, /middlebox/);
        assert.match(e.message, /UnknownIssuer|certificate/i);
        return true;
      },
    );
    intercepted.close();
  } finally {
    ac.abort();
    await Promise.all([real.finished, mitm.finished, boot.finished]);
  }
});
