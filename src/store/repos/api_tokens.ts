import type { SqlDatabase } from "../sql.ts";
import { num, numOrNull, type Row, str } from "./row.ts";

/** An admin API token; only its hash is stored. */
export interface ApiTokenRecord {
  id: string;
  tokenHash: string;
  name: string;
  userId: string;
  createdAt: number;
  lastUsedAt: number | null;
}

function toToken(r: Row): ApiTokenRecord {
  return {
    id: str(r.id),
    tokenHash: str(r.token_hash),
    name: str(r.name),
    userId: str(r.user_id),
    createdAt: num(r.created_at),
    lastUsedAt: numOrNull(r.last_used_at),
  };
}

/** Admin API tokens. */
export class ApiTokensRepo {
  constructor(private db: SqlDatabase) {}
  /** Inserts a token. */
  insert(t: ApiTokenRecord): void {
    this.db.run(
      "INSERT INTO api_tokens (id, token_hash, name, user_id, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?)",
      t.id,
      t.tokenHash,
      t.name,
      t.userId,
      t.createdAt,
      t.lastUsedAt,
    );
  }
  /** Finds a token by hash. */
  byHash(hash: string): ApiTokenRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM api_tokens WHERE token_hash = ?", hash);
    return r && toToken(r);
  }
  /** Every token (hashes included; callers must not expose them). */
  list(): ApiTokenRecord[] {
    return this.db.all<Row>("SELECT * FROM api_tokens ORDER BY created_at").map(toToken);
  }
  /** Deletes a token; returns whether it existed. */
  delete(id: string): boolean {
    return this.db.run("DELETE FROM api_tokens WHERE id = ?", id).changes === 1;
  }
  /** Records a use. */
  touch(id: string, at: number): void {
    this.db.run("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", at, id);
  }
}
