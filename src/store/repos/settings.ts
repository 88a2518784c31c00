import type { SqlDatabase } from "../sql.ts";
import type { Row } from "./row.ts";

/** Key/value settings (device network, policy revision, …). */
export class SettingsRepo {
  constructor(private db: SqlDatabase) {}
  /** Returns the value for `key` or null. */
  get(key: string): string | null {
    return this.db.get<Row>("SELECT value FROM settings WHERE key = ?", key)?.value as
      | string
      | null ?? null;
  }
  /** Sets `key` to `value`. */
  set(key: string, value: string): void {
    this.db.run(
      "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      key,
      value,
    );
  }
}
