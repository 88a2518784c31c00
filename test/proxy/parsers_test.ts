/**
 * The proxy's pure parsers on real and broken input: a ClientHello made by
 * OpenSSL's s_client (SNI and ALPN read, every truncation and a
 * flipped length give null, never an exception), request heads in their
 * three forms, Host and CONNECT authorities, and the head sent to origins
 * (hop-by-hop and Connection-named headers dropped). Table tests.
 */
import assert from "node:assert/strict";
import { parseClientHello, tlsRecordLength } from "../../src/proxy/sni.ts";
import { headEnd, originHead, parseHead, targetOf } from "../../src/proxy/http_head.ts";

/** The first bytes a TLS client sends for `name` (it never gets an answer). */
async function helloFrom(name: string, alpn: string[]) {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const got = (async () => {
    const c = await l.accept();
    const buf = new Uint8Array(16 * 1024);
    let n = 0;
    while (n < 5 || n < (tlsRecordLength(buf.subarray(0, n)) ?? 0)) {
      const r = await c.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    c.close();
    l.close();
    return buf.slice(0, n);
  })();
  const p = new Deno.Command("openssl", {
    args: [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-servername",
      name,
      "-alpn",
      alpn.join(","),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  got.finally(() => p.kill()).catch(() => {});
  await p.status.catch(() => {});
  return await got;
}

Deno.test("SNI and ALPN from real ClientHellos; truncations and garbage give null", async () => {
  for (const client of ["openssl s_client"]) {
    const hello = await helloFrom("Shop.Example.test", ["h2", "http/1.1"]);
    const info = parseClientHello(hello);
    assert.equal(info?.serverName, "shop.example.test", client);
    assert.deepEqual(info?.alpn, ["h2", "http/1.1"], client);
    for (let cut = 0; cut < hello.length; cut += 7) {
      assert.equal(parseClientHello(hello.subarray(0, cut)), null, `${client} cut at ${cut}`);
    }
    for (let i = 5; i < Math.min(hello.length, 200); i++) {
      const bad = hello.slice();
      bad[i] ^= 0xff;
      parseClientHello(bad); // must not throw
    }
  }
  const table: [Uint8Array, number | null][] = [
    [new Uint8Array([]), 5],
    [new Uint8Array([0x16]), 5],
    [new Uint8Array([0x47, 0x45, 0x54]), null], // "GET"
    [new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00]), 517],
    [new Uint8Array([0x16, 0x02, 0x01, 0x02, 0x00]), null],
  ];
  for (const [b, want] of table) assert.equal(tlsRecordLength(b), want, String(b));
  assert.equal(parseClientHello(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")), null);
});

Deno.test("request heads: three forms, bad lines refused with a code, table", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const ok: [string, Partial<ReturnType<typeof targetOf>>][] = [
    ["GET http://a.example/x?q=1 HTTP/1.1\r\nHost: ignored\r\n\r\n", {
      form: "absolute",
      host: "a.example",
      port: 80,
      path: "/x?q=1",
    }],
    ["GET https://a.example:8443/ HTTP/1.1\r\n\r\n", {
      form: "absolute",
      scheme: "https",
      port: 8443,
    }],
    ["CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", {
      form: "connect",
      host: "a.example",
      port: 443,
    }],
    ["CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n", { form: "connect", host: "2001:db8::1" }],
    ["GET /p HTTP/1.1\r\nHost: B.Example:8080\r\n\r\n", {
      form: "origin",
      host: "b.example",
      port: 8080,
      path: "/p",
    }],
    ["POST /up HTTP/1.0\r\nhost: c.example\r\n\r\n", {
      form: "origin",
      host: "c.example",
      port: 80,
    }],
  ];
  for (const [text, want] of ok) {
    const t = targetOf(parseHead(enc(text)));
    for (const [k, v] of Object.entries(want)) assert.equal((t as any)[k], v, `${text} ${k}`);
  }
  const bad: [string, string][] = [
    ["GET / HTTP/2.0\r\n\r\n", "bad_request_line"],
    ["GET  / HTTP/1.1\r\n\r\n", "bad_request_line"],
    ["G(T / HTTP/1.1\r\n\r\n", "bad_request_line"],
    ["GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", "bad_header"],
    ["GET / HTTP/1.1\r\n\r\n", "missing_host"],
    ["GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "bad_host"],
    ["CONNECT a.example:99999 HTTP/1.1\r\n\r\n", "bad_host"],
    ["GET * HTTP/1.1\r\nHost: a\r\n\r\n", "bad_target"],
    ["GET http://[::1/ HTTP/1.1\r\n\r\n", "bad_target"],
  ];
  for (const [text, code] of bad) {
    assert.throws(
      () => targetOf(parseHead(enc(text))),
      (e: { code?: string }) => e.code === code,
      text,
    );
  }
  assert.equal(headEnd(enc("GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY")), 27);
  assert.equal(headEnd(enc("GET / HTTP/1.1\r\nHost: a\r\n")), -1);
});

Deno.test("the head sent to origins: origin-form, hop-by-hop and Connection-named headers dropped", () => {
  const h = parseHead(new TextEncoder().encode(
    "GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\nProxy-Authorization: Basic x\r\n" +
      "Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nAccept: */*\r\n\r\n",
  ));
  const out = originHead(h, targetOf(h));
  assert.equal(
    out,
    "GET /x HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\nConnection: close\r\n\r\n",
  );
});
