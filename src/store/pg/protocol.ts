/**
 * The messages between the store's main thread and its PostgreSQL worker
 * (worker.ts). Requests travel by postMessage; the reply is written into a
 * shared buffer and signalled on a shared flag, because the main thread is
 * blocked in Atomics.wait and cannot receive messages while it waits.
 */
import type { SqlValue } from "../sql.ts";

/** Index of the flag in the control array: 0 while waiting, READY when a reply is written. */
export const FLAG = 0;
/** Index of the reply's byte length in the control array. */
export const LENGTH = 1;
/** The flag's value once a reply is in the data buffer. */
export const READY = 1;

/** What the main thread asks. */
export type BridgeRequest =
  | {
    op: "open";
    url: string;
    ctrl: SharedArrayBuffer;
    data: SharedArrayBuffer;
    application: string;
    connectTimeoutS: number;
    statementTimeoutMs: number;
  }
  | { op: "query"; sql: string; params: SqlValue[]; simple: boolean }
  | { op: "close" };

/** What the worker answers. */
export type BridgeReply =
  | { ok: true; rows: Record<string, unknown>[]; count: number }
  | { ok: false; message: string; code: string };
