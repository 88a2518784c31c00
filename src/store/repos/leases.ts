import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str } from "./row.ts";

/** Address leases: host index inside the device network, one per device. */
export class LeasesRepo {
  constructor(private db: SqlDatabase) {}
  /** The host index leased to `deviceId`, or null. */
  hostOf(deviceId: string): number | null {
    const r = this.db.get<Row>("SELECT host FROM address_leases WHERE device_id = ?", deviceId);
    return r ? num(r.host) : null;
  }
  /** The device leasing host index `host`, or null. */
  deviceAt(host: number): string | null {
    const r = this.db.get<Row>("SELECT device_id FROM address_leases WHERE host = ?", host);
    return r ? str(r.device_id) : null;
  }
  /** Every lease as deviceId → host. */
  all(): Map<string, number> {
    const m = new Map<string, number>();
    for (const r of this.db.all<Row>("SELECT device_id, host FROM address_leases")) {
      m.set(str(r.device_id), num(r.host));
    }
    return m;
  }
  /**
   * Leases the lowest free host index (2…maxHost) to `deviceId`; returns it,
   * or null when the range is full. Must run inside the caller's transaction
   * so the lookup and the insert are one atomic step.
   */
  allocate(deviceId: string, at: number, maxHost: number): number | null {
    const free = this.db.get<Row>("SELECT MIN(host) AS h FROM address_free");
    let host: number | null;
    if (free?.h !== null && free?.h !== undefined) {
      host = num(free.h);
      this.db.run("DELETE FROM address_free WHERE host = ?", host);
    } else {
      const max = this.db.get<Row>("SELECT MAX(host) AS h FROM address_leases");
      host = max?.h === null || max?.h === undefined ? 2 : num(max.h) + 1;
    }
    if (host === null || host > maxHost) return null;
    this.db.run(
      "INSERT INTO address_leases (host, device_id, leased_at) VALUES (?, ?, ?)",
      host,
      deviceId,
      at,
    );
    return host;
  }
  /** Releases the lease of `deviceId`. */
  release(deviceId: string): void {
    this.db.run("DELETE FROM address_leases WHERE device_id = ?", deviceId);
  }
  /** Number of leases. */
  count(): number {
    return num(this.db.get<Row>("SELECT COUNT(*) AS n FROM address_leases")!.n);
  }
}
