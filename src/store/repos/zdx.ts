import type { SqlDatabase } from "../sql.ts";
import { num, numOrNull, type Row, str, strOrNull } from "./row.ts";

/** A stored digital-experience result. */
export interface ZdxRecord {
  id: number;
  deviceId: string;
  probe: string;
  url: string;
  at: number;
  ok: boolean;
  status: number | null;
  phases: { dns: number; connect: number; tls: number; ttfb: number; total: number } | null;
  edgeRttMs: number | null;
  score: number;
  z: number | null;
  worstHop: string | null;
  receivedAt: number;
}

/** The newest result of each device and probe, with the device's name. */
export interface ZdxLatest extends ZdxRecord {
  hostname: string;
}

/** Results kept per device and probe; older ones are pruned on insert. */
export const ZDX_KEEP_PER_PROBE = 2880;

function rec(r: Row): ZdxRecord {
  return {
    id: num(r.id),
    deviceId: str(r.device_id),
    probe: str(r.probe),
    url: str(r.url),
    at: num(r.at),
    ok: num(r.ok) === 1,
    status: numOrNull(r.status),
    phases: r.phases === null ? null : JSON.parse(str(r.phases)),
    edgeRttMs: numOrNull(r.edge_rtt_ms),
    score: num(r.score),
    z: numOrNull(r.z),
    worstHop: strOrNull(r.worst_hop),
    receivedAt: num(r.received_at),
  };
}

/** Digital-experience results of the fleet. */
export class ZdxRepo {
  constructor(private db: SqlDatabase) {}

  /** Stores one result and prunes that probe's oldest beyond the limit (call inside a transaction). */
  insert(r: Omit<ZdxRecord, "id">): number {
    const id = this.db.insert(
      `INSERT INTO zdx_results (device_id, probe, url, at, ok, status, phases, edge_rtt_ms, score, z,
        worst_hop, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      r.deviceId,
      r.probe,
      r.url,
      r.at,
      r.ok ? 1 : 0,
      r.status,
      r.phases === null ? null : JSON.stringify(r.phases),
      r.edgeRttMs,
      r.score,
      r.z,
      r.worstHop,
      r.receivedAt,
    );
    this.db.run(
      `DELETE FROM zdx_results WHERE device_id = ? AND probe = ? AND id NOT IN
        (SELECT id FROM zdx_results WHERE device_id = ? AND probe = ? ORDER BY at DESC, id DESC LIMIT ?)`,
      r.deviceId,
      r.probe,
      r.deviceId,
      r.probe,
      ZDX_KEEP_PER_PROBE,
    );
    return id;
  }

  /** The newest `limit` results of a device's probe, oldest first. */
  history(deviceId: string, probe: string, limit = 30): ZdxRecord[] {
    return this.db.all<Row>(
      `SELECT * FROM (SELECT * FROM zdx_results WHERE device_id = ? AND probe = ?
        ORDER BY at DESC, id DESC LIMIT ?) AS recent ORDER BY at, id`,
      deviceId,
      probe,
      Math.max(1, Math.min(ZDX_KEEP_PER_PROBE, limit)),
    ).map(rec);
  }

  /** The newest result of every device and probe seen since `since`. */
  latest(since: number): ZdxLatest[] {
    return this.db.all<Row>(
      `SELECT z.*, d.hostname AS hostname FROM zdx_results z JOIN devices d ON d.id = z.device_id
        WHERE z.id IN (SELECT MAX(id) FROM zdx_results WHERE at >= ? GROUP BY device_id, probe)
        ORDER BY z.score, d.hostname, z.probe`,
      since,
    ).map((r) => ({ ...rec(r), hostname: str(r.hostname) }));
  }

  /** Results since `since` of every device (for charts), oldest first, at most `limit`. */
  since(since: number, limit = 20_000): ZdxRecord[] {
    return this.db.all<Row>(
      "SELECT * FROM zdx_results WHERE at >= ? ORDER BY at, id LIMIT ?",
      since,
      limit,
    ).map(rec);
  }
}
