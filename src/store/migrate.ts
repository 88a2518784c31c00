/**
 * The migration bookkeeping both databases share: which migrations a
 * database still lacks, and the row that records one as applied. Each
 * database applies the SQL itself (SQLite as written, PostgreSQL
 * translated) inside its own transaction.
 */
import { StoreError } from "./db.ts";
import type { Migration } from "./migrations.ts";
import type { SqlDatabase } from "./sql.ts";

/**
 * The migrations not applied to `db` yet, ascending. Every one missing, not
 * only those above the highest: numbers are reserved per feature, so one may
 * land after a higher one. Refuses a database newer than this program.
 */
export function pendingMigrations(db: SqlDatabase, migrations: readonly Migration[]): Migration[] {
  const current = db.schemaVersion();
  const latest = migrations.reduce((m, x) => Math.max(m, x.version), 0);
  if (current > latest) {
    throw new StoreError(
      `Cannot open database "${db.path}": schema version ${current} is newer than this program understands (${latest})`,
    );
  }
  const applied = new Set(
    db.all<{ version: number }>("SELECT version FROM schema_version").map((r) => Number(r.version)),
  );
  return migrations.filter((m) => !applied.has(m.version)).sort((a, b) => a.version - b.version);
}

/** Records `m` as applied (inside the transaction that applied it). */
export function recordMigration(db: SqlDatabase, m: Migration): void {
  db.run(
    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
    m.version,
    m.name,
    new Date().toISOString(),
  );
}
