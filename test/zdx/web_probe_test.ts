import assert from "node:assert/strict";
import { probeWeb } from "../../src/zdx/web_probe.ts";
import { makeCaAndServer } from "../connector/tls_fixture.ts";

Deno.test("web probe: phases from a real HTTPS server, TTFB includes the server's think time", async () => {
  const tls = await makeCaAndServer("ZDX test CA");
  const body = "x".repeat(5000);
  await using server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: tls.certPem,
    key: tls.keyPem,
    onListen: () => {},
  }, async (req) => {
    if (new URL(req.url).pathname === "/slow") await new Promise((r) => setTimeout(r, 150));
    return new Response(body, { status: new URL(req.url).pathname === "/gone" ? 404 : 200 });
  });
  const base = `https://localhost:${server.addr.port}`;
  // localhost resolves through the system resolver to 127.0.0.1 here; use the address form too.
  const url = `https://127.0.0.1:${server.addr.port}`;
  const fast = await probeWeb({ url: `${url}/`, caCerts: [tls.caPem] });
  assert.equal(fast.ok, true, fast.error ?? "");
  assert.equal(fast.status, 200);
  assert.equal(fast.bytes, 5000);
  assert.equal(fast.address, `127.0.0.1:${server.addr.port}`);
  const p = fast.phases!;
  assert.equal(p.dns, 0, "an address needs no lookup");
  assert.ok(p.tls > 0, "a TLS handshake took time");
  assert.ok(p.total >= p.dns + p.connect + p.tls + p.ttfb - 0.5, JSON.stringify(p));

  const slow = await probeWeb({ url: `${url}/slow`, caCerts: [tls.caPem] });
  assert.ok(slow.phases!.ttfb >= 150, `ttfb ${slow.phases!.ttfb}`);
  assert.ok(slow.phases!.ttfb > p.ttfb);

  const gone = await probeWeb({ url: `${url}/gone`, caCerts: [tls.caPem] });
  assert.equal(gone.status, 404);
  assert.equal(gone.ok, false);

  // Without the CA the certificate is refused: a failed probe, not a throw.
  const untrusted = await probeWeb({ url: `${base}/`, timeoutMs: 3000 });
  assert.equal(untrusted.ok, false);
  assert.ok(untrusted.error);
});

Deno.test("web probe: plain HTTP, refused port and unresolvable name fail cleanly", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("hello"),
  );
  const ok = await probeWeb({ url: `http://127.0.0.1:${server.addr.port}/` });
  assert.equal(ok.status, 200);
  assert.equal(ok.bytes, 5);
  assert.equal(ok.phases!.tls, 0);
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const refused = await probeWeb({ url: `http://127.0.0.1:${port}/` });
  assert.equal(refused.ok, false);
  assert.match(refused.error!, /refused/i);
  const bad = await probeWeb({ url: "http://no-such-host.invalid/", timeoutMs: 2000 });
  assert.equal(bad.ok, false);
  assert.match(bad.error!, /cannot resolve/);
  const scheme = await probeWeb({ url: "ftp://127.0.0.1/" });
  assert.match(scheme.error!, /unsupported scheme/);
});
