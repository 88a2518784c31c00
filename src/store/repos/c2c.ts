import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str } from "./row.ts";

/** A client-to-client registration. */
export interface C2cRecord {
  deviceId: string;
  fqdn: string;
  valid: boolean;
  reason: string;
  registeredAt: number;
}

function toC2c(r: Row): C2cRecord {
  return {
    deviceId: str(r.device_id),
    fqdn: str(r.fqdn),
    valid: num(r.valid) === 1,
    reason: str(r.reason),
    registeredAt: num(r.registered_at),
  };
}

/** Client-to-client registrations, one per device. */
export class C2cRepo {
  constructor(private db: SqlDatabase) {}
  /** Stores (replacing) the registration of a device. */
  upsert(r: C2cRecord): void {
    this.db.run(
      `INSERT INTO c2c_registrations (device_id, fqdn, valid, reason, registered_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(device_id) DO UPDATE SET fqdn = excluded.fqdn, valid = excluded.valid,
         reason = excluded.reason, registered_at = excluded.registered_at`,
      r.deviceId,
      r.fqdn,
      r.valid ? 1 : 0,
      r.reason,
      r.registeredAt,
    );
  }
  /** The registration of a device. */
  get(deviceId: string): C2cRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM c2c_registrations WHERE device_id = ?", deviceId);
    return r && toC2c(r);
  }
  /** The device holding a valid registration for `fqdn`, if any. */
  validOwner(fqdn: string): string | null {
    const r = this.db.get<Row>(
      "SELECT device_id FROM c2c_registrations WHERE fqdn = ? AND valid = 1",
      fqdn,
    );
    return r ? str(r.device_id) : null;
  }
  /** Every registration. */
  list(): C2cRecord[] {
    return this.db.all<Row>("SELECT * FROM c2c_registrations ORDER BY fqdn").map(toC2c);
  }
}
