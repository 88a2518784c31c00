import type { Database } from "../db.ts";
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

/** Posture reports; the newest `keep` per device are kept. */
export class PostureRepo {
  constructor(private db: Database) {}
  /** Stores a report and prunes old ones (call inside a transaction). */
  insert(
    deviceId: string,
    collectedAt: string,
    receivedAt: number,
    passed: boolean,
    body: unknown,
    keep = 20,
  ): number {
    const { lastInsertRowid } = this.db.run(
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
    return lastInsertRowid;
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
}
