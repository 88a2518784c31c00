/**
 * The listeners' body discarding (src/serve.ts): what it reads, where
 * it stops. The end-to-end effect over HTTP/2 is in
 * test/e2e/http2_rejects_test.ts.
 */
import assert from "node:assert/strict";
import { answerAfterBody, discardUnreadBody } from "../src/serve.ts";

/** A streamed request body of `chunks` × `size` bytes that counts how much was pulled. */
function streamed(chunks: number, size: number, headers: Record<string, string> = {}) {
  let pulled = 0;
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (pulled >= chunks * size) return ctl.close();
      pulled += size;
      ctl.enqueue(new Uint8Array(size));
    },
    cancel() {
      cancelled = true;
    },
  });
  const req = new Request("http://local/", { method: "POST", body, headers });
  return { req, pulled: () => pulled, cancelled: () => cancelled };
}

Deno.test("discardUnreadBody: reads an unread body to its end", async () => {
  const s = streamed(10, 1000);
  assert.equal(await discardUnreadBody(s.req), true);
  assert.equal(s.pulled(), 10_000);
  assert.equal(s.cancelled(), false);
});

Deno.test("discardUnreadBody: a body already read, or none, costs nothing", async () => {
  const read = new Request("http://local/", { method: "POST", body: "hello" });
  await read.text();
  assert.equal(await discardUnreadBody(read), true);
  assert.equal(await discardUnreadBody(new Request("http://local/")), true);
});

Deno.test("discardUnreadBody: what a handler left after a partial read is discarded", async () => {
  const s = streamed(10, 1000);
  const reader = s.req.body!.getReader();
  await reader.read();
  reader.releaseLock();
  assert.equal(await discardUnreadBody(s.req), true);
  assert.equal(s.pulled(), 10_000);
});

Deno.test("discardUnreadBody: stops past maxBytes and cancels the rest", async () => {
  const s = streamed(100, 1000);
  assert.equal(await discardUnreadBody(s.req, { maxBytes: 5000 }), false);
  assert.ok(s.pulled() <= 7000, `pulled ${s.pulled()}`);
  assert.equal(s.cancelled(), true);
});

Deno.test("discardUnreadBody: a declared length over maxBytes is not read at all", async () => {
  const s = streamed(100, 1000, { "content-length": "100000" });
  assert.equal(await discardUnreadBody(s.req, { maxBytes: 5000 }), false);
  assert.ok(s.pulled() <= 1000, `pulled ${s.pulled()}`);
  assert.equal(s.cancelled(), true);
});

Deno.test("discardUnreadBody: a sender that stalls is cut off after timeoutMs", async () => {
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull: () => new Promise(() => {}), // never sends another byte
    cancel() {
      cancelled = true;
    },
  });
  const req = new Request("http://local/", { method: "POST", body });
  assert.equal(await discardUnreadBody(req, { timeoutMs: 50 }), false);
  assert.equal(cancelled, true);
});

Deno.test("discardUnreadBody: leaves a body that someone is still reading", async () => {
  const s = streamed(10, 1000);
  const reader = s.req.body!.getReader();
  assert.equal(await discardUnreadBody(s.req), true);
  assert.equal(s.pulled() <= 1000, true);
  reader.releaseLock();
});

Deno.test("answerAfterBody: the response comes after the body, also when the handler throws", async () => {
  const info = {} as Deno.ServeHandlerInfo<Deno.NetAddr>;
  const ok = streamed(10, 1000);
  const res = await answerAfterBody(() => new Response("no", { status: 401 }))(ok.req, info);
  assert.equal(res.status, 401);
  assert.equal(ok.pulled(), 10_000, "the whole body was read before the 401 was returned");

  const thrown = streamed(10, 1000);
  await assert.rejects(
    () =>
      answerAfterBody(() => {
        throw new Error("boom");
      })(thrown.req, info) as Promise<Response>,
    /boom/,
  );
  assert.equal(thrown.pulled(), 10_000);
});
