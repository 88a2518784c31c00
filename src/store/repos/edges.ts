import type { TunnelEndpoint } from "../../net/endpoint.ts";
import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str } from "./row.ts";

/** What an edge stores about itself (migration 12). */
export type EdgeStatus = "up" | "unhealthy" | "stopped";

/** One registered edge. */
export interface EdgeRecord {
  id: string;
  name: string;
  region: string;
  wgPublicKey: string;
  endpoints: TunnelEndpoint[];
  apiUrl: string;
  bootstrapUrl: string;
  caPem: string;
  version: string;
  startedAt: number;
  heartbeatAt: number;
  status: EdgeStatus;
  devicesConnected: number;
}

function toEdge(r: Row): EdgeRecord {
  return {
    id: str(r.id),
    name: str(r.name),
    region: str(r.region),
    wgPublicKey: str(r.wg_public_key),
    endpoints: JSON.parse(str(r.endpoints)) as TunnelEndpoint[],
    apiUrl: str(r.api_url),
    bootstrapUrl: str(r.bootstrap_url),
    caPem: str(r.ca_pem),
    version: str(r.version),
    startedAt: num(r.started_at),
    heartbeatAt: num(r.heartbeat_at),
    status: str(r.status) as EdgeStatus,
    devicesConnected: num(r.devices_connected),
  };
}

/**
 * The edge registry's rows. Status changes are conditional updates, so when
 * several edges notice the same lapse only one of them gets `true` back
 * (and raises the notification): the database decides, not a race.
 */
export class EdgesRepo {
  constructor(private db: SqlDatabase) {}

  /** Inserts or refreshes an edge's row at start (status up, heartbeat now). */
  register(e: Omit<EdgeRecord, "status" | "devicesConnected">): void {
    this.db.run(
      `INSERT INTO edges (id, name, region, wg_public_key, endpoints, api_url, bootstrap_url, ca_pem,
         version, started_at, heartbeat_at, status, devices_connected)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'up', 0)
       ON CONFLICT(id) DO UPDATE SET name = excluded.name, region = excluded.region,
         wg_public_key = excluded.wg_public_key, endpoints = excluded.endpoints,
         api_url = excluded.api_url, bootstrap_url = excluded.bootstrap_url,
         ca_pem = excluded.ca_pem, version = excluded.version, started_at = excluded.started_at,
         heartbeat_at = excluded.heartbeat_at, status = 'up', devices_connected = 0`,
      e.id,
      e.name,
      e.region,
      e.wgPublicKey,
      JSON.stringify(e.endpoints),
      e.apiUrl,
      e.bootstrapUrl,
      e.caPem,
      e.version,
      e.startedAt,
      e.heartbeatAt,
    );
  }

  /**
   * Records a heartbeat; returns "recovered" when the edge had been marked
   * unhealthy (this call brought it back), "ok" otherwise, "unknown" when the
   * row is gone (an admin removed it: the caller registers again).
   */
  heartbeat(id: string, at: number, devicesConnected: number): "ok" | "recovered" | "unknown" {
    const back = this.db.run(
      "UPDATE edges SET status = 'up' WHERE id = ? AND status <> 'up'",
      id,
    ).changes;
    const n = this.db.run(
      "UPDATE edges SET heartbeat_at = ?, devices_connected = ? WHERE id = ?",
      at,
      devicesConnected,
      id,
    ).changes;
    if (n === 0) return "unknown";
    return back ? "recovered" : "ok";
  }

  /**
   * Marks edge `id` unhealthy if it is up and its last heartbeat is older
   * than `before`; true when this call changed it (exactly one caller wins).
   */
  markUnhealthy(id: string, before: number): boolean {
    return this.db.run(
      "UPDATE edges SET status = 'unhealthy' WHERE id = ? AND status = 'up' AND heartbeat_at < ?",
      id,
      before,
    ).changes === 1;
  }

  /** Marks an edge stopped (clean shutdown). */
  markStopped(id: string, at: number): void {
    this.db.run(
      "UPDATE edges SET status = 'stopped', heartbeat_at = ?, devices_connected = 0 WHERE id = ?",
      at,
      id,
    );
  }

  /** One edge. */
  get(id: string): EdgeRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM edges WHERE id = ?", id);
    return r && toEdge(r);
  }

  /** Every registered edge, by name. */
  list(): EdgeRecord[] {
    return this.db.all<Row>("SELECT * FROM edges ORDER BY name, id").map(toEdge);
  }

  /** Removes an edge's row (an admin forgets a decommissioned edge); true when it existed. */
  delete(id: string): boolean {
    return this.db.run("DELETE FROM edges WHERE id = ?", id).changes === 1;
  }
}
