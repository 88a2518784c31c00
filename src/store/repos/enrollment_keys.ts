import type { SqlDatabase } from "../sql.ts";
import { num, numOrNull, type Row, str, strOrNull } from "./row.ts";

/** An enrolment key; only the hash of its secret is stored. */
export interface EnrollmentKeyRecord {
  id: string;
  secretHash: string;
  reusable: boolean;
  group: string | null;
  expiresAt: number | null;
  revokedAt: number | null;
  usedAt: number | null;
  useCount: number;
  createdBy: string;
  createdAt: number;
  /** A machine key enrols devices without a user; a user key needs a signed-in user. */
  machine: boolean;
}

function toKey(r: Row): EnrollmentKeyRecord {
  return {
    id: str(r.id),
    secretHash: str(r.secret_hash),
    reusable: num(r.reusable) === 1,
    group: strOrNull(r.group_name),
    expiresAt: numOrNull(r.expires_at),
    revokedAt: numOrNull(r.revoked_at),
    usedAt: numOrNull(r.used_at),
    useCount: num(r.use_count),
    createdBy: str(r.created_by),
    createdAt: num(r.created_at),
    machine: num(r.machine) === 1,
  };
}

/** Enrolment keys. */
export class EnrollmentKeysRepo {
  constructor(private db: SqlDatabase) {}
  /** Inserts a key (a machine key unless `machine` is false). */
  insert(k: Omit<EnrollmentKeyRecord, "machine"> & { machine?: boolean }): void {
    this.db.run(
      "INSERT INTO enrollment_keys (id, secret_hash, reusable, group_name, expires_at, revoked_at, used_at, use_count, created_by, created_at, machine) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      k.id,
      k.secretHash,
      k.reusable ? 1 : 0,
      k.group,
      k.expiresAt,
      k.revokedAt,
      k.usedAt,
      k.useCount,
      k.createdBy,
      k.createdAt,
      k.machine === false ? 0 : 1,
    );
  }
  /** Finds a key by the hash of its secret. */
  bySecretHash(hash: string): EnrollmentKeyRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM enrollment_keys WHERE secret_hash = ?", hash);
    return r && toKey(r);
  }
  /** Finds a key by id. */
  byId(id: string): EnrollmentKeyRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM enrollment_keys WHERE id = ?", id);
    return r && toKey(r);
  }
  /** Every key, newest first. */
  list(): EnrollmentKeyRecord[] {
    return this.db.all<Row>("SELECT * FROM enrollment_keys ORDER BY created_at DESC, id").map(
      toKey,
    );
  }
  /** Marks a key revoked; returns false if unknown or already revoked. */
  revoke(id: string, at: number): boolean {
    return this.db.run(
      "UPDATE enrollment_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
      at,
      id,
    ).changes === 1;
  }
  /**
   * Counts one use. A single-use key is claimed only if still unused, so two
   * enrolments racing for it cannot both win; returns whether the use counted.
   */
  claimUse(id: string, at: number): boolean {
    return this.db.run(
      "UPDATE enrollment_keys SET used_at = COALESCE(used_at, ?), use_count = use_count + 1 WHERE id = ? AND (reusable = 1 OR used_at IS NULL)",
      at,
      id,
    ).changes === 1;
  }
}
