import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str, strOrNull } from "./row.ts";

/** A support request (the bundle itself is loaded only on download). */
export interface SupportRecord {
  id: string;
  deviceId: string | null;
  hostname: string;
  message: string;
  bundleSize: number;
  bundleSha256: string;
  createdAt: number;
}

/** Support requests with their zip bundles. */
export class SupportRepo {
  constructor(private db: SqlDatabase) {}
  /** Stores a request with its bundle. */
  insert(r: Omit<SupportRecord, "bundleSize">, bundle: Uint8Array): void {
    this.db.run(
      "INSERT INTO support_requests (id, device_id, hostname, message, bundle, bundle_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      r.id,
      r.deviceId,
      r.hostname,
      r.message,
      bundle,
      r.bundleSha256,
      r.createdAt,
    );
  }
  /** Every request without bundles, newest first. */
  list(): SupportRecord[] {
    return this.db.all<Row>(
      "SELECT id, device_id, hostname, message, length(bundle) AS size, bundle_sha256, created_at FROM support_requests ORDER BY created_at DESC, id",
    ).map((r) => ({
      id: str(r.id),
      deviceId: strOrNull(r.device_id),
      hostname: str(r.hostname),
      message: str(r.message),
      bundleSize: num(r.size),
      bundleSha256: str(r.bundle_sha256),
      createdAt: num(r.created_at),
    }));
  }
  /** The bundle bytes of one request. */
  bundle(id: string): Uint8Array | undefined {
    const r = this.db.get<Row>("SELECT bundle FROM support_requests WHERE id = ?", id);
    return r ? (r.bundle as Uint8Array) : undefined;
  }
}
