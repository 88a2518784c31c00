import type { SqlDatabase } from "../sql.ts";
import { type Row, str } from "./row.ts";

/** DLP rules as validated JSON, in evaluation order. */
export class DlpRulesRepo {
  constructor(private db: SqlDatabase) {}
  /** The stored rules in order. */
  list(): unknown[] {
    return this.db.all<Row>("SELECT body FROM dlp_rules ORDER BY position, name")
      .map((r) => JSON.parse(str(r.body)));
  }
  /** Replaces every rule (call inside a transaction). */
  replace(items: { name: string; body: unknown }[], at: number): void {
    this.db.run("DELETE FROM dlp_rules");
    items.forEach((it, i) => {
      this.db.run(
        "INSERT INTO dlp_rules (name, position, body, updated_at) VALUES (?, ?, ?, ?)",
        it.name,
        i,
        JSON.stringify(it.body),
        at,
      );
    });
  }
}
