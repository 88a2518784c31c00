import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str } from "./row.ts";

/** Where a device's tunnel terminates (migration 16). */
export interface DeviceLocation {
  deviceId: string;
  /** The edge that saw its latest handshake. */
  edgeId: string;
  /** Wall-clock ms of that handshake. */
  handshakeAt: number;
}

function toLocation(r: Row): DeviceLocation {
  return { deviceId: str(r.device_id), edgeId: str(r.edge_id), handshakeAt: num(r.handshake_at) };
}

/**
 * The device locations the edge mesh routes by. A claim only wins when its
 * handshake is newer than the recorded one: the database orders concurrent
 * claims from two edges, and a late claim from the edge a device left
 * cannot take it back.
 */
export class DeviceLocationsRepo {
  constructor(private db: SqlDatabase) {}

  /** Records that `edgeId` saw `deviceId`'s handshake at `at`; true when this is now the newest. */
  claim(deviceId: string, edgeId: string, at: number): boolean {
    return this.db.run(
      `INSERT INTO device_locations (device_id, edge_id, handshake_at) VALUES (?, ?, ?)
       ON CONFLICT(device_id) DO UPDATE SET edge_id = excluded.edge_id,
         handshake_at = excluded.handshake_at
       WHERE excluded.handshake_at > device_locations.handshake_at`,
      deviceId,
      edgeId,
      at,
    ).changes === 1;
  }

  /** One device's location. */
  get(deviceId: string): DeviceLocation | undefined {
    const r = this.db.get<Row>("SELECT * FROM device_locations WHERE device_id = ?", deviceId);
    return r && toLocation(r);
  }

  /** Locations whose handshake is at or after `since` (older ones are not live tunnels). */
  since(since: number): DeviceLocation[] {
    return this.db.all<Row>(
      "SELECT * FROM device_locations WHERE handshake_at >= ? ORDER BY device_id",
      since,
    ).map(toLocation);
  }
}
