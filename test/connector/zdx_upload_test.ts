import assert from "node:assert/strict";
import { ManualTimers } from "../../src/clock.ts";
import { BATCH, QUEUE_LIMIT, ZdxUploader } from "../../src/connector/zdx_upload.ts";
import type { EdgeApi } from "../../src/connector/edge_api.ts";
import type { ZdxReportItem, ZdxResult } from "../../src/zdx/runner.ts";

function result(at: number): ZdxResult {
  return {
    probe: "p",
    url: "https://p/",
    at,
    ok: true,
    status: 200,
    bytes: 1,
    address: "192.0.2.80:443",
    phases: { dns: 1, connect: 2, tls: 3, ttfb: 4, total: 10 },
    error: null,
    edgeRttMs: 1,
    score: 100,
    band: "good",
    z: null,
    worstHop: null,
    direct: null,
  };
}

/** An edge that records batches, or refuses while `down`. */
function edge() {
  const batches: ZdxReportItem[][] = [];
  const e = {
    down: false,
    batches,
    api: {
      reportZdx(results: ZdxReportItem[]) {
        if (e.down) return Promise.reject(new Error("edge unreachable"));
        batches.push(results);
        return Promise.resolve();
      },
    } as unknown as EdgeApi,
  };
  return e;
}

Deno.test("zdx upload: batches every interval, keeps results while the edge is away", async () => {
  const timers = new ManualTimers();
  const e = edge();
  const u = new ZdxUploader(() => e.api, 30_000, timers);
  u.start();
  for (let i = 0; i < BATCH + 5; i++) u.push(result(i));
  e.down = true;
  await timers.advance(30_000);
  assert.equal(e.batches.length, 0);
  assert.equal(u.pending, BATCH + 5);
  e.down = false;
  await timers.advance(30_000);
  assert.equal(e.batches[0].length, BATCH);
  assert.deepEqual(Object.keys(e.batches[0][0]).sort(), [
    "at",
    "edgeRttMs",
    "ok",
    "phases",
    "probe",
    "status",
    "url",
  ]);
  await timers.advance(30_000);
  assert.equal(e.batches[1].length, 5);
  assert.equal(u.pending, 0);
  u.stop();
  assert.equal(timers.pending, 0);
});

Deno.test("zdx upload: the queue is bounded, the oldest go first", () => {
  const u = new ZdxUploader(() => null);
  for (let i = 0; i < QUEUE_LIMIT + 10; i++) u.push(result(i));
  assert.equal(u.pending, QUEUE_LIMIT);
});
