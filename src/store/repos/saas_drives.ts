import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str, strOrNull } from "./row.ts";

/** Where one drive's delta query stands. */
export interface SaasDriveRecord {
  tenantRef: string;
  driveId: string;
  owner: string;
  /** The nextLink being worked through, or the deltaLink of the last complete pass. */
  cursor: string;
  cursorKind: "next" | "delta";
  quarantineFolderId: string | null;
  updatedAt: number;
}

function toDrive(r: Row): SaasDriveRecord {
  return {
    tenantRef: str(r.tenant_ref),
    driveId: str(r.drive_id),
    owner: str(r.owner),
    cursor: str(r.cursor),
    cursorKind: str(r.cursor_kind) === "next" ? "next" : "delta",
    quarantineFolderId: strOrNull(r.quarantine_folder_id),
    updatedAt: num(r.updated_at),
  };
}

/** Drive cursors per tenant. */
export class SaasDrivesRepo {
  constructor(private db: SqlDatabase) {}
  /** One drive's record. */
  get(tenantRef: string, driveId: string): SaasDriveRecord | undefined {
    const r = this.db.get<Row>(
      "SELECT * FROM saas_drives WHERE tenant_ref = ? AND drive_id = ?",
      tenantRef,
      driveId,
    );
    return r && toDrive(r);
  }
  /** Every drive of a tenant. */
  list(tenantRef: string): SaasDriveRecord[] {
    return this.db.all<Row>(
      "SELECT * FROM saas_drives WHERE tenant_ref = ? ORDER BY owner, drive_id",
      tenantRef,
    ).map(toDrive);
  }
  /** Saves a drive's cursor (creating the row on the first page). */
  saveCursor(
    tenantRef: string,
    d: { driveId: string; owner: string; cursor: string; cursorKind: "next" | "delta" },
    at: number,
  ): void {
    this.db.run(
      "INSERT INTO saas_drives (tenant_ref, drive_id, owner, cursor, cursor_kind, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(tenant_ref, drive_id) DO UPDATE SET owner = excluded.owner, cursor = excluded.cursor, cursor_kind = excluded.cursor_kind, updated_at = excluded.updated_at",
      tenantRef,
      d.driveId,
      d.owner,
      d.cursor,
      d.cursorKind,
      at,
    );
  }
  /** Remembers a drive's quarantine folder (the drive's row must exist or is created pending). */
  setQuarantineFolder(tenantRef: string, driveId: string, folderId: string): void {
    this.db.run(
      "UPDATE saas_drives SET quarantine_folder_id = ? WHERE tenant_ref = ? AND drive_id = ?",
      folderId,
      tenantRef,
      driveId,
    );
  }
  /** Forgets every cursor of a tenant (the next scan starts from scratch). */
  reset(tenantRef: string): number {
    return this.db.run("DELETE FROM saas_drives WHERE tenant_ref = ?", tenantRef).changes;
  }
}
