import type { SqlDatabase } from "../sql.ts";
import { type Row, str } from "./row.ts";

/** Kinds of policy object the admin edits. */
export type PolicyKind =
  | "app_profile"
  | "forwarding_profile"
  | "posture_profile"
  | "segment"
  | "access_rule"
  | "client_to_client"
  | "url_rule";

/** Policy objects as validated JSON, ordered by position within a kind. */
export class PolicyRepo {
  constructor(private db: SqlDatabase) {}
  /** The stored bodies of `kind`, in position order. */
  list(kind: PolicyKind): unknown[] {
    return this.db.all<Row>(
      "SELECT body FROM policy_objects WHERE kind = ? ORDER BY position, name",
      kind,
    ).map((r) => JSON.parse(str(r.body)));
  }
  /** Replaces every object of `kind` (call inside a transaction). */
  replace(kind: PolicyKind, items: { name: string; body: unknown }[], at: number): void {
    this.db.run("DELETE FROM policy_objects WHERE kind = ?", kind);
    items.forEach((it, i) => {
      this.db.run(
        "INSERT INTO policy_objects (kind, name, position, body, updated_at) VALUES (?, ?, ?, ?, ?)",
        kind,
        it.name,
        i,
        JSON.stringify(it.body),
        at,
      );
    });
  }
}
