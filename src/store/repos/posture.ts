import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str } from "./row.ts";

/** A stored posture report. */
export interface PostureRecord {
  id: number;
  deviceId: string;
  collectedAt: string;
  receivedAt: number;
  passed: boolean;
  body: unknown;
}

/** One stored result of the edge's evaluation: a check of a profile, expected vs actual. */
export interface PostureResultRecord {
  profile: string;
  check: string;
  passed: boolean;
  expected: string;
  actual: string;
  evaluatedAt: number;
  expiresAt: number;
}

/** Posture reports (the newest `keep` per device are kept) and the edge's results. */
export class PostureRepo {
  constructor(private db: SqlDatabase) {}
  /** Stores a report and prunes old ones (call inside a transaction). */
  insert(
    deviceId: string,
    collectedAt: string,
    receivedAt: number,
    passed: boolean,
    body: unknown,
    keep = 20,
  ): number {
    const id = this.db.insert(
      "INSERT INTO posture_reports (device_id, collected_at, received_at, passed, body) VALUES (?, ?, ?, ?, ?)",
      deviceId,
      collectedAt,
      receivedAt,
      passed ? 1 : 0,
      JSON.stringify(body),
    );
    this.db.run(
      "DELETE FROM posture_reports WHERE device_id = ? AND id NOT IN (SELECT id FROM posture_reports WHERE device_id = ? ORDER BY id DESC LIMIT ?)",
      deviceId,
      deviceId,
      keep,
    );
    return id;
  }
  /** The newest report of a device. */
  latest(deviceId: string): PostureRecord | undefined {
    const r = this.db.get<Row>(
      "SELECT * FROM posture_reports WHERE device_id = ? ORDER BY id DESC LIMIT 1",
      deviceId,
    );
    return r && {
      id: num(r.id),
      deviceId: str(r.device_id),
      collectedAt: str(r.collected_at),
      receivedAt: num(r.received_at),
      passed: num(r.passed) === 1,
      body: JSON.parse(str(r.body)),
    };
  }
  /** Number of stored reports. */
  count(): number {
    return num(this.db.get<Row>("SELECT COUNT(*) AS n FROM posture_reports")!.n);
  }
  /** Replaces a device's evaluated results (call inside a transaction). */
  replaceResults(deviceId: string, results: readonly PostureResultRecord[]): void {
    this.db.run("DELETE FROM posture_results WHERE device_id = ?", deviceId);
    results.forEach((r, i) =>
      this.db.run(
        "INSERT INTO posture_results (device_id, profile, check_name, position, passed, expected, actual, evaluated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        deviceId,
        r.profile,
        r.check,
        i,
        r.passed ? 1 : 0,
        r.expected,
        r.actual,
        r.evaluatedAt,
        r.expiresAt,
      )
    );
  }
  /** A device's evaluated results, in evaluation order. */
  results(deviceId: string): PostureResultRecord[] {
    return this.db.all<Row>(
      "SELECT * FROM posture_results WHERE device_id = ? ORDER BY position",
      deviceId,
    ).map((r) => ({
      profile: str(r.profile),
      check: str(r.check_name),
      passed: num(r.passed) === 1,
      expected: str(r.expected),
      actual: str(r.actual),
      evaluatedAt: num(r.evaluated_at),
      expiresAt: num(r.expires_at),
    }));
  }
  /** Ids of devices with at least one report. */
  reportingDevices(): string[] {
    return this.db.all<Row>("SELECT DISTINCT device_id FROM posture_reports").map((r) =>
      str(r.device_id)
    );
  }
}
