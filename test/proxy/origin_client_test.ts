/**
 * The inspector's HTTP/1.1 origin client against a scripted TLS origin on
 * loopback (a real TLS listener with a leaf from a CA of its own, answering
 * byte for byte what each case says): body framing of every kind, interim
 * answers, bodiless statuses, heads it must refuse, which connections go
 * back to the pool and which do not, and what is sent again after an origin
 * dropped an idle connection (an idempotent request, once) and what never
 * is (a POST).
 */
import assert from "node:assert/strict";
import { InspectionCa } from "../../src/proxy/inspection_ca.ts";
import { isCertificateError, originFailure } from "../../src/proxy/origin_reach.ts";
import { waitUntil } from "../e2e/netns.ts";
import { headEnd } from "../../src/proxy/http_head.ts";
import { readWholeBody } from "../../src/proxy/http_body.ts";
import {
  ClientGone,
  ClientLeft,
  FRESH_MS,
  OriginClient,
  OriginProtocolError,
  type OriginRequest,
} from "../../src/proxy/origin_client.ts";
import { PeekReader, writeAll } from "../../src/proxy/stream.ts";
import { STREAM_BATCH } from "../../src/proxy/origin_body.ts";
import { OriginReach } from "../../src/proxy/origin_reach.ts";

/** Origins in these tests listen on loopback, which the proxy refuses by default. */
const LOOPBACK = new OriginReach({ allow: ["127.0.0.0/8", "::1/128"] });

/** A request as the origin read it. */
interface Seen {
  conn: number;
  line: string;
  headers: Map<string, string>;
  body: Uint8Array;
}

/** What the origin does with a request: bytes to write, then whether to hang up. */
type Script = (req: Seen, n: number) => { write: string | Uint8Array; close?: boolean } | "drop";

const enc = new TextEncoder();

/** A TLS listener on loopback with a leaf for "localhost" from a CA of its own. */
async function tlsListener() {
  const ca = await InspectionCa.ephemeral("Test Origin CA");
  const leaf = await ca.issue("localhost");
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: leaf.cert,
    key: leaf.key,
    alpnProtocols: ["http/1.1"],
  });
  return { ca, listener };
}

/** A TLS origin on loopback that answers every request with `script`. */
async function scriptedOrigin(script: Script) {
  const { ca, listener } = await tlsListener();
  const seen: Seen[] = [];
  const open = new Set<Deno.Conn>();
  let conns = 0;
  const serveConn = async (c: Deno.TlsConn, id: number) => {
    const r = new PeekReader(c);
    try {
      for (;;) {
        let end = headEnd(r.buffered);
        while (end < 0) {
          if (!(await r.fill())) return;
          end = headEnd(r.buffered);
        }
        const text = new TextDecoder().decode(r.take(end));
        const [line, ...rest] = text.split("\r\n").filter(Boolean);
        const headers = new Map(
          rest.map((
            l,
          ) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
        );
        const cl = headers.get("content-length");
        const framing = headers.get("transfer-encoding") === "chunked"
          ? { chunked: true as const }
          : { length: Number(cl ?? 0) };
        const body = (await readWholeBody(r, framing, 1 << 26))!.bytes;
        const req = { conn: id, line, headers, body };
        seen.push(req);
        const out = script(req, seen.length);
        if (out === "drop") return;
        await writeAll(c, typeof out.write === "string" ? enc.encode(out.write) : out.write);
        if (out.close) return;
      }
    } catch {
      // the client hung up
    } finally {
      open.delete(c);
      try {
        c.close();
      } catch { /* closed */ }
    }
  };
  const accepting = (async () => {
    for await (const c of listener) {
      open.add(c);
      serveConn(c, ++conns);
    }
  })().catch(() => {});
  const port = listener.addr.port;
  return {
    ca,
    port,
    seen,
    get conns() {
      return conns;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of open) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
    },
  };
}

const get = (port: number, path = "/", extra: Partial<OriginRequest> = {}): OriginRequest => ({
  host: "localhost",
  port,
  method: "GET",
  path,
  headers: [["accept", "*/*"]],
  body: null,
  ...extra,
});

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("origin client: every body framing read whole and as a stream; keep-alive by the rules", async (t) => {
  const cases: {
    name: string;
    answer: string;
    body: string | null;
    reused: boolean;
    method?: string;
  }[] = [
    {
      name: "Content-Length",
      answer: "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
      body: "hello",
      reused: true,
    },
    {
      name: "chunked, with an extension and trailers",
      answer: "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" +
        "3;x=1\r\nhel\r\n2\r\nlo\r\n0\r\nx-trailer: 1\r\n\r\n",
      body: "hello",
      reused: true,
    },
    {
      name: "until the origin closes",
      answer: "HTTP/1.1 200 OK\r\n\r\nhello",
      body: "hello",
      reused: false,
    },
    {
      name: "Connection: close",
      answer: "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello",
      body: "hello",
      reused: false,
    },
    {
      name: "an HTTP/1.0 answer",
      answer: "HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello",
      body: "hello",
      reused: false,
    },
    {
      name: "Transfer-Encoding and Content-Length both (chunks win, never reused)",
      answer: "HTTP/1.1 200 OK\r\ncontent-length: 99\r\ntransfer-encoding: chunked\r\n\r\n" +
        "5\r\nhello\r\n0\r\n\r\n",
      body: "hello",
      reused: false,
    },
    {
      name: "100 Continue and 103 Early Hints before the answer",
      answer: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n" +
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
      body: "hello",
      reused: true,
    },
    {
      name: "204 has no body",
      answer: "HTTP/1.1 204 No Content\r\n\r\n",
      body: null,
      reused: true,
    },
    {
      name: "304 has no body, whatever its length says",
      answer: "HTTP/1.1 304 Not Modified\r\ncontent-length: 50\r\n\r\n",
      body: null,
      reused: true,
    },
    {
      name: "HEAD has no body",
      answer: "HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n",
      body: null,
      reused: true,
      method: "HEAD",
    },
  ];
  for (const c of cases) {
    for (const how of ["bytes", "stream"] as const) {
      await t.step(`${c.name} (${how})`, async () => {
        await using origin = await scriptedOrigin(() => ({ write: c.answer, close: !c.reused }));
        const client = new OriginClient({ reach: LOOPBACK, caCerts: [origin.ca.certPem] });
        const method = c.method ?? "GET";
        const status = Number([...c.answer.matchAll(/HTTP\/1\.[01] (\d{3})/g)].at(-1)![1]);
        try {
          const res = await client.request(get(origin.port, "/", { method }));
          assert.equal(res.status, status);
          assert.ok(!res.headers.some(([k]) => k === "link"), "interim headers are not passed on");
          if (c.body === null) assert.equal(res.body, null);
          else {
            assert.ok(res.body);
            const got = how === "bytes"
              ? await res.body.bytes()
              : new Uint8Array(await new Response(res.body.stream()).arrayBuffer());
            assert.equal(text(got), c.body);
            assert.equal(res.body.received, c.body.length);
          }
          assert.equal(client.idle, c.reused ? 1 : 0, "connections kept");
          const again = await client.request(get(origin.port, "/2", { method }));
          await again.body?.bytes();
          assert.equal(origin.conns, c.reused ? 1 : 2, "connections opened");
          assert.equal(client.opened, origin.conns);
        } finally {
          client.close();
        }
      });
    }
  }
});

Deno.test("origin client: what it sends is what it was given, framed", async (t) => {
  await using origin = await scriptedOrigin((req) => ({
    write: `HTTP/1.1 200 OK\r\ncontent-length: ${
      String(req.body.length).length
    }\r\n\r\n${req.body.length}`,
  }));
  const client = new OriginClient({ reach: LOOPBACK, caCerts: [origin.ca.certPem] });
  try {
    await t.step(
      "a GET: Host with the port, the given headers, no framing, nothing added",
      async () => {
        const res = await client.request(get(origin.port, "/a?b=c"));
        await res.body!.bytes();
        const s = origin.seen.at(-1)!;
        assert.equal(s.line, "GET /a?b=c HTTP/1.1");
        assert.deepEqual([...s.headers], [["host", `localhost:${origin.port}`], ["accept", "*/*"]]);
      },
    );
    await t.step("a small and a large body: Content-Length, bytes arrive whole", async () => {
      for (const size of [10, 16 * 1024 + 1, 3_000_000]) {
        const body = new Uint8Array(size).map((_, i) => i % 251);
        const res = await client.request(get(origin.port, "/up", { method: "POST", body }));
        assert.equal(text(await res.body!.bytes()), String(size));
        const s = origin.seen.at(-1)!;
        assert.equal(s.headers.get("content-length"), String(size));
        assert.deepEqual(s.body, body);
      }
    });
    await t.step("an empty POST says Content-Length: 0", async () => {
      const res = await client.request(get(origin.port, "/", { method: "POST" }));
      await res.body!.bytes();
      assert.equal(origin.seen.at(-1)!.headers.get("content-length"), "0");
    });
    await t.step("a streamed body goes chunked, on a connection of its own", async () => {
      const before = origin.conns;
      const body = new Blob([new Uint8Array(100_000).fill(7), new Uint8Array(5).fill(8)]).stream();
      const res = await client.request(get(origin.port, "/s", { method: "PUT", body }));
      assert.equal(text(await res.body!.bytes()), "100005");
      assert.equal(origin.seen.at(-1)!.headers.get("transfer-encoding"), "chunked");
      assert.equal(origin.conns, before + 1);
    });
    await t.step(
      "a path or method that would break the head is refused, nothing sent",
      async () => {
        const n = origin.seen.length;
        for (
          const bad of [{ path: "/a b" }, { path: "/a\r\nx: y" }, { path: "a" }, { method: "GE T" }]
        ) {
          await assert.rejects(client.request(get(origin.port, "/", bad)), OriginProtocolError);
        }
        assert.equal(origin.seen.length, n);
      },
    );
  } finally {
    client.close();
  }
});

Deno.test("origin client: answers it must refuse, and bodies that end early", async (t) => {
  const bad = [
    ["not HTTP", "SSH-2.0-OpenSSH_9.6\r\n\r\n"],
    ["a bad status", "HTTP/1.1 2000 OK\r\n\r\n"],
    ["HTTP/2 text", "HTTP/2 200\r\n\r\n"],
    ["a header without a name", "HTTP/1.1 200 OK\r\n: x\r\n\r\n"],
    ["a folded header", "HTTP/1.1 200 OK\r\nx: a\r\n b\r\n\r\n"],
    ["a control byte in a value", "HTTP/1.1 200 OK\r\nx: a\x01b\r\n\r\n"],
    ["two lengths", "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello"],
    ["a bad length", "HTTP/1.1 200 OK\r\ncontent-length: -5\r\n\r\n"],
    ["101 unasked", "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"],
    ["a head past 64 KiB", `HTTP/1.1 200 OK\r\nx: ${"a".repeat(70_000)}\r\n\r\n`],
    ["a head cut short", "HTTP/1.1 200 OK\r\ncontent-le"],
  ];
  for (const [name, answer] of bad) {
    await t.step(name, async () => {
      await using origin = await scriptedOrigin(() => ({ write: answer, close: true }));
      const client = new OriginClient({ reach: LOOPBACK, caCerts: [origin.ca.certPem] });
      try {
        await assert.rejects(client.request(get(origin.port)), OriginProtocolError);
        assert.equal(client.idle, 0);
      } finally {
        client.close();
      }
    });
  }
  const short = [
    ["a length not reached", "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello"],
    ["a chunk not finished", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\na\r\nhello"],
    ["a bad chunk size", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n"],
    ["no last chunk", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n"],
  ];
  for (const [name, answer] of short) {
    for (const how of ["bytes", "stream"] as const) {
      await t.step(`${name} (${how})`, async () => {
        await using origin = await scriptedOrigin(() => ({ write: answer, close: true }));
        const client = new OriginClient({ reach: LOOPBACK, caCerts: [origin.ca.certPem] });
        try {
          const res = await client.request(get(origin.port));
          await assert.rejects(
            how === "bytes" ? res.body!.bytes() : new Response(res.body!.stream()).arrayBuffer(),
          );
          assert.equal(client.idle, 0);
        } finally {
          client.close();
        }
      });
    }
  }
  await t.step("an origin whose certificate does not verify", async () => {
    await using origin = await scriptedOrigin(() => ({ write: "HTTP/1.1 200 OK\r\n\r\n" }));
    const client = new OriginClient({ reach: LOOPBACK, caCerts: [] });
    try {
      const e = await client.request(get(origin.port)).catch((e) => e);
      assert.ok(isCertificateError(e), `a certificate error: ${e}`);
      assert.equal(origin.seen.length, 0);
    } finally {
      client.close();
    }
  });
  await t.step("a body given up unread closes its connection", async () => {
    await using origin = await scriptedOrigin(() => ({
      write: "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
    }));
    const client = new OriginClient({ reach: LOOPBACK, caCerts: [origin.ca.certPem] });
    try {
      const res = await client.request(get(origin.port));
      res.body!.cancel();
      assert.equal(client.idle, 0);
      await (await client.request(get(origin.port))).body!.bytes();
      assert.equal(origin.conns, 2);
    } finally {
      client.close();
    }
  });
});

Deno.test("origin client: an idle connection the origin dropped", async (t) => {
  // The origin answers the first request, then drops the connection on the
  // next request without a byte (as a server does whose idle timeout fired
  // just as the request went out).
  const dropSecond: Script = (req) =>
    req.conn === 1 && req.line.includes("/second")
      ? "drop"
      : { write: "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok" };
  await t.step("a GET is sent again, once, on a new connection", async () => {
    await using origin = await scriptedOrigin(dropSecond);
    const client = new OriginClient({ reach: LOOPBACK, caCerts: [origin.ca.certPem] });
    try {
      await (await client.request(get(origin.port, "/first"))).body!.bytes();
      const res = await client.request(get(origin.port, "/second"));
      assert.equal(text(await res.body!.bytes()), "ok");
      assert.deepEqual(origin.seen.map((s) => [s.conn, s.line]), [
        [1, "GET /first HTTP/1.1"],
        [1, "GET /second HTTP/1.1"],
        [2, "GET /second HTTP/1.1"],
      ]);
    } finally {
      client.close();
    }
  });
  await t.step("a POST is never sent twice: it fails, the origin saw it once", async () => {
    await using origin = await scriptedOrigin(dropSecond);
    const client = new OriginClient({ reach: LOOPBACK, caCerts: [origin.ca.certPem] });
    try {
      await (await client.request(get(origin.port, "/first"))).body!.bytes();
      const body = enc.encode("pay once");
      await assert.rejects(
        client.request(get(origin.port, "/second", { method: "POST", body })),
        OriginProtocolError,
      );
      assert.equal(origin.seen.filter((s) => s.line.startsWith("POST")).length, 1);
    } finally {
      client.close();
    }
  });
  await t.step(`a POST takes only a connection idle under ${FRESH_MS} ms`, async () => {
    await using origin = await scriptedOrigin(() => ({
      write: "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    }));
    const client = new OriginClient({ reach: LOOPBACK, caCerts: [origin.ca.certPem], freshMs: 0 });
    try {
      await (await client.request(get(origin.port, "/first"))).body!.bytes();
      await (await client.request(get(origin.port, "/p", { method: "POST" }))).body!.bytes();
      assert.equal(origin.conns, 2, "freshMs 0: the POST opened its own connection");
      await (await client.request(get(origin.port, "/g"))).body!.bytes();
      assert.equal(origin.conns, 2, "a GET reuses a kept connection");
    } finally {
      client.close();
    }
  });
});

Deno.test("origin client: a slow stream is passed on as it comes; a fast one in batches", async (t) => {
  const { ca, listener } = await tlsListener();
  const port = listener.addr.port;
  const client = new OriginClient({ reach: LOOPBACK, caCerts: [ca.certPem] });
  /** Serves one request with `answer`, which writes the response. */
  const serveOne = async (answer: (c: Deno.TlsConn) => Promise<void>) => {
    const c = await listener.accept();
    const r = new PeekReader(c);
    while (headEnd(r.buffered) < 0) if (!(await r.fill())) return;
    await answer(c);
    c.close();
  };
  try {
    await t.step("the first chunk arrives before the origin sends the second", async () => {
      let got!: () => void;
      const gotFirst = new Promise<void>((r) => (got = r));
      const origin = serveOne(async (c) => {
        await writeAll(
          c,
          enc.encode("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n"),
        );
        await gotFirst; // a client that waited for more would wait forever
        await writeAll(c, enc.encode("6\r\nsecond\r\n0\r\n\r\n"));
      });
      const res = await client.request(get(port));
      const reader = res.body!.stream().getReader();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const a = await Promise.race([
        reader.read(),
        new Promise<never>((_, no) => {
          timer = setTimeout(() => no(new Error("the first chunk was held back")), 10_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.equal(text(a.value!), "first");
      got();
      let rest = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        rest += text(value);
      }
      assert.equal(rest, "second");
      await origin;
    });
    await t.step(
      "3 MB sent at once comes in batches of up to 256 KiB, whole and in order",
      async () => {
        const body = new Uint8Array(3_000_000).map((_, i) => i % 251);
        const origin = serveOne(async (c) => {
          await writeAll(
            c,
            enc.encode(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`),
          );
          await writeAll(c, body);
        });
        const res = await client.request(get(port));
        const pieces: Uint8Array<ArrayBuffer>[] = [];
        for await (const p of res.body!.stream()) pieces.push(p as Uint8Array<ArrayBuffer>);
        await origin;
        const got = new Uint8Array(await new Blob(pieces).arrayBuffer());
        assert.deepEqual(got, body);
        assert.ok(pieces.every((p) => p.length <= STREAM_BATCH));
        // A TLS read returns one record (16 KiB); what was there by the next turn came with it.
        assert.ok(pieces.some((p) => p.length > 16 * 1024), `${pieces.length} pieces`);
      },
    );
    await t.step("a batch's array is no larger than what is left of the body", async () => {
      // Each batch's array is zeroed at its full size: 256 KiB for a 1 KiB
      // answer cut an HTTP/1.1 client's inspected requests to a third.
      const body = new Uint8Array(1024).fill(7);
      const origin = serveOne(async (c) => {
        await writeAll(c, enc.encode(`HTTP/1.1 200 OK\r\ncontent-length: 1024\r\n\r\n`));
        await writeAll(c, body);
      });
      const res = await client.request(get(port));
      const pieces: Uint8Array[] = [];
      for await (const p of res.body!.stream()) pieces.push(p);
      await origin;
      assert.deepEqual(pieces.map((p) => [p.length, p.buffer.byteLength]), [[1024, 1024]]);
    });
    await t.step(
      "a body sent a piece at a time, each after the last arrived, comes whole and in order",
      async () => {
        // Every batch then ends with a read still waiting, whose bytes land
        // behind the batch handed on and start the next one.
        const piece = 10_000, count = 40;
        const body = new Uint8Array(piece * count).map((_, i) => (i * 7) % 253);
        let received = 0;
        let progress = () => {};
        const arrived = (n: number) =>
          new Promise<void>((r) => {
            const check = () => (received >= n ? r() : (progress = check));
            check();
          });
        const origin = serveOne(async (c) => {
          await writeAll(
            c,
            enc.encode(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`),
          );
          for (let i = 0; i < count; i++) {
            await arrived(i * piece);
            await writeAll(c, body.subarray(i * piece, (i + 1) * piece));
          }
        });
        const res = await client.request(get(port));
        const pieces: Uint8Array<ArrayBuffer>[] = [];
        for await (const p of res.body!.stream()) {
          pieces.push((p as Uint8Array<ArrayBuffer>).slice());
          received += p.length;
          progress();
        }
        await origin;
        assert.deepEqual(new Uint8Array(await new Blob(pieces).arrayBuffer()), body);
        assert.ok(pieces.length >= count, `${pieces.length} pieces`);
      },
    );
  } finally {
    client.close();
    listener.close();
  }
});

Deno.test("origin client: a client that went away ends its request (ClientLeft, not an origin failure)", async (t) => {
  // An origin that reads requests and never answers.
  const { ca, listener } = await tlsListener();
  const held: Deno.Conn[] = [];
  let reads = 0;
  const accepting = (async () => {
    for await (const c of listener) {
      held.push(c);
      (async () => {
        const b = new Uint8Array(4096);
        while ((await c.read(b)) !== null) reads++;
      })().catch(() => {});
    }
  })().catch(() => {});
  const client = new OriginClient({ reach: LOOPBACK, caCerts: [ca.certPem] });
  const ask = (gone: ClientGone) =>
    client.request({
      host: "localhost",
      port: listener.addr.port,
      method: "GET",
      path: "/",
      headers: [],
      body: null,
      gone,
    });
  try {
    await t.step("gone while it waits for the head", async () => {
      const gone = new ClientGone();
      const p = ask(gone).catch((e) => e);
      await waitUntil("the origin read the request", () => Promise.resolve(reads > 0), 5000, 5);
      gone.end();
      const e = await p;
      assert.ok(e instanceof ClientLeft, `${e}`);
      assert.equal(originFailure(e).code, "origin_unreachable", "never shown: nobody to show it");
    });
    await t.step("gone before it starts: nothing is opened", async () => {
      const gone = new ClientGone();
      gone.end();
      const opened = client.opened;
      const e = await ask(gone).catch((e) => e);
      assert.ok(e instanceof ClientLeft, `${e}`);
      assert.equal(client.opened, opened);
    });
  } finally {
    client.close();
    listener.close();
    for (const c of held) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await accepting;
  }
});
