import type { SqlDatabase } from "../sql.ts";
import { num, type Row } from "./row.ts";

/** Files scanned per tenant and drive, with the content tag they had. */
export class SaasItemsRepo {
  constructor(private db: SqlDatabase) {}
  /** The tag an item had when it was last scanned, or null. */
  tag(tenantRef: string, driveId: string, itemId: string): string | null {
    const r = this.db.get<Row>(
      "SELECT ctag FROM saas_items WHERE tenant_ref = ? AND drive_id = ? AND item_id = ?",
      tenantRef,
      driveId,
      itemId,
    );
    return r ? String(r.ctag) : null;
  }
  /** Records a scanned item. */
  put(
    tenantRef: string,
    driveId: string,
    item: { id: string; tag: string; verdict: string },
    at: number,
  ): void {
    this.db.run(
      "INSERT INTO saas_items (tenant_ref, drive_id, item_id, ctag, verdict, scanned_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(tenant_ref, drive_id, item_id) DO UPDATE SET ctag = excluded.ctag, verdict = excluded.verdict, scanned_at = excluded.scanned_at",
      tenantRef,
      driveId,
      item.id,
      item.tag,
      item.verdict,
      at,
    );
  }
  /** Forgets an item deleted in the drive. */
  delete(tenantRef: string, driveId: string, itemId: string): void {
    this.db.run(
      "DELETE FROM saas_items WHERE tenant_ref = ? AND drive_id = ? AND item_id = ?",
      tenantRef,
      driveId,
      itemId,
    );
  }
  /** Items of a tenant by verdict. */
  counts(tenantRef: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (
      const r of this.db.all<Row>(
        "SELECT verdict, COUNT(*) AS n FROM saas_items WHERE tenant_ref = ? GROUP BY verdict",
        tenantRef,
      )
    ) out[String(r.verdict)] = num(r.n);
    return out;
  }
  /** Forgets every item of a tenant (a full rescan). */
  reset(tenantRef: string): number {
    return this.db.run("DELETE FROM saas_items WHERE tenant_ref = ?", tenantRef).changes;
  }
}
