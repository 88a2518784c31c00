/**
 * The PostgreSQL worker: the one place that runs the `postgres` client
 * (porsager) for the store's queries. The edge's repositories are
 * synchronous (see ../sql.ts), so the main thread posts a query here and
 * blocks on a shared flag until this worker has written the answer into a
 * shared buffer (bridge.ts). One connection: the main thread has at most one
 * query in flight, and a transaction must stay on one connection anyway.
 *
 * Answers are v8-serialised (rows keep numbers, strings, nulls and bytes).
 * int8 and numeric columns come back as numbers, as SQLite hands them: the
 * edge keeps counters, ids and millisecond timestamps there, all below 2^53.
 */
/// <reference lib="deno.worker" />
import type postgres from "postgres";
import { serialize } from "node:v8";
import { openClient } from "./client.ts";
import { type BridgeReply, type BridgeRequest, FLAG, LENGTH, READY } from "./protocol.ts";

let sql: postgres.Sql | undefined;
let ctrl: Int32Array;
let data: SharedArrayBuffer;

function reply(r: BridgeReply): void {
  const bytes = serialize(r);
  if (bytes.length > data.byteLength) {
    if (bytes.length > data.maxByteLength) {
      return reply({
        ok: false,
        message: `Result of ${bytes.length} bytes is too large`,
        code: "",
      });
    }
    data.grow(Math.min(data.maxByteLength, Math.max(bytes.length, data.byteLength * 2)));
  }
  new Uint8Array(data).set(bytes);
  Atomics.store(ctrl, LENGTH, bytes.length);
  Atomics.store(ctrl, FLAG, READY);
  Atomics.notify(ctrl, FLAG);
}

function failure(e: unknown): BridgeReply {
  const err = e as { message?: string; code?: string; detail?: string };
  return {
    ok: false,
    message: String(err.message ?? e) + (err.detail ? ` (${err.detail})` : ""),
    code: typeof err.code === "string" ? err.code : "",
  };
}

async function handle(req: BridgeRequest): Promise<BridgeReply> {
  switch (req.op) {
    case "open": {
      ctrl = new Int32Array(req.ctrl);
      data = req.data;
      sql = openClient(req.url, {
        application: req.application,
        connectTimeoutS: req.connectTimeoutS,
        statementTimeoutMs: req.statementTimeoutMs,
      });
      await sql.unsafe("SELECT 1");
      return { ok: true, rows: [], count: 0 };
    }
    case "query": {
      if (!sql) throw new Error("Database is not open");
      const r = req.params.length === 0 && req.simple
        ? await sql.unsafe(req.sql)
        : await sql.unsafe(req.sql, req.params as postgres.ParameterOrJSON<never>[], {
          prepare: true,
        });
      return { ok: true, rows: [...r], count: r.count ?? 0 };
    }
    case "close": {
      await sql?.end({ timeout: 2 });
      sql = undefined;
      return { ok: true, rows: [], count: 0 };
    }
  }
}

self.onmessage = async (e: MessageEvent<BridgeRequest>) => {
  let r: BridgeReply;
  try {
    r = await handle(e.data);
  } catch (err) {
    r = failure(err);
  }
  if (ctrl) reply(r);
};
