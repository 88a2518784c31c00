/**
 * Runs a repository test on both store backends: the embedded SQLite
 * database and a real PostgreSQL server started for the test (initdb in a
 * temporary directory, Unix socket only, stopped and deleted afterwards).
 */
import { openStore, type Store } from "../../src/store/mod.ts";
import type {
  DeviceRecord,
  EnrollmentKeyRecord,
  NewUser,
  Sealer,
  WebLogRecord,
} from "../../src/store/repos/mod.ts";
import { pgBinDir, startPgCluster } from "../../src/store/pg/cluster.ts";

/** Opens a fresh, migrated store on the backend under test. */
export type OpenFresh = (opts?: { sealer?: Sealer }) => Store;

/** Registers `name` twice: "[sqlite] name" and "[postgres] name". */
export function storeTest(name: string, fn: (open: OpenFresh) => void | Promise<void>): void {
  Deno.test(`[sqlite] ${name}`, async () => {
    const opened: Store[] = [];
    try {
      await fn((o) => {
        const s = openStore(":memory:", o);
        opened.push(s);
        return s;
      });
    } finally {
      for (const s of opened) await s.close();
    }
  });
  Deno.test({
    name: `[postgres] ${name}`,
    ignore: pgBinDir() === null,
    async fn() {
      const cluster = await startPgCluster();
      const opened: Store[] = [];
      try {
        // Each open gets its own empty database, as ":memory:" does: the
        // cluster's own first, then one made through it.
        await fn((o) => {
          let url = cluster.url();
          if (opened.length > 0) {
            const name = `t${opened.length}`;
            opened[0].db.exec(`CREATE DATABASE ${name}`);
            url = cluster.url(name);
          }
          const s = openStore(url, o);
          opened.push(s);
          return s;
        });
      } catch (err) {
        console.error(cluster.log().slice(-4000));
        throw err;
      } finally {
        for (const s of opened) await s.close();
        await cluster.stop();
      }
    },
  });
}

/** A device row with every field filled from `id`. */
export function deviceRecord(id: string): DeviceRecord {
  return {
    id,
    fingerprint: `fp-${id}`,
    machineId: "m",
    macs: [],
    hostname: id,
    os: "linux",
    osVersion: "1",
    connectorVersion: "1",
    wgPublicKey: `wg-${id}`,
    signingPublicKey: `sg-${id}`,
    credentialHash: `c-${id}`,
    group: null,
    user: null,
    enrollmentKeyId: null,
    disabled: false,
    enrolledAt: 0,
    updatedAt: 0,
    lastSeenAt: null,
    reportedState: null,
    reportedTransport: null,
    clockSkewMs: null,
  };
}

/** A user row with no password or second factor (one who signs in at an IdP); `more` overrides. */
export function userRecord(id: string, username: string, more: Partial<NewUser> = {}): NewUser {
  return {
    id,
    username,
    passwordHash: "!",
    totpSecret: "",
    totpLastStep: 0,
    role: "user",
    groups: [],
    createdAt: 0,
    ...more,
  };
}

/** An unused, unexpired single-use enrolment key row. */
export function singleUseKey(id: string): Omit<EnrollmentKeyRecord, "machine"> {
  return {
    id,
    secretHash: `h-${id}`,
    reusable: false,
    group: null,
    expiresAt: null,
    revokedAt: null,
    usedAt: null,
    useCount: 0,
    createdBy: "t",
    createdAt: 0,
  };
}

/** Web log entry `i` (its fields vary with `i`, for filters to tell apart), with `over` on top. */
export const webLogEntry = (
  i: number,
  over: Partial<WebLogRecord> = {},
): Omit<WebLogRecord, "id"> => ({
  at: 1_000 + i,
  deviceId: "d1",
  deviceName: "ws-1",
  user: i % 2 ? "Ana" : "bob",
  src: "100.64.0.2",
  mode: "inspected",
  method: "GET",
  scheme: "https",
  host: `h${i}.example.test`,
  port: 443,
  path: `/p/${i}`,
  categories: i % 3 ? [] : ["news"],
  action: "allow",
  rule: null,
  reason: "allowed: no rule matched",
  status: 200,
  bytesUp: i,
  bytesDown: 2 * i,
  ...over,
});
