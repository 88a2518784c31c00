import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str, strOrNull } from "./row.ts";

/** A stored connector release (migration 13); its bytes are chunks (migration 17). */
export interface ReleaseRecord {
  version: string;
  sha256: string;
  size: number;
  keyId: string;
  /** The signed manifest's JSON text, served to devices as it was uploaded. */
  signedManifest: string;
  uploadedAt: number;
  uploadedBy: string;
}

/** A stored update rule (migration 13). */
export interface UpdateRuleRecord {
  id: string;
  name: string;
  group: string | null;
  percent: number;
  targetVersion: string;
  paused: boolean;
  rollback: boolean;
  /** The signed rollback authorisation's JSON text (a rollback rule's; null otherwise). */
  rollbackAuthorisation: string | null;
  position: number;
  createdAt: number;
  updatedAt: number;
}

/** What a device last reported about an update. */
export interface UpdateReportRecord {
  deviceId: string;
  version: string;
  outcome: "installed" | "rolled_back" | "refused" | "failed";
  reason: string;
  at: number;
}

function toRelease(r: Row): ReleaseRecord {
  return {
    version: str(r.version),
    sha256: str(r.sha256),
    size: num(r.size),
    keyId: str(r.key_id),
    signedManifest: str(r.signed_manifest),
    uploadedAt: num(r.uploaded_at),
    uploadedBy: str(r.uploaded_by),
  };
}

function toRule(r: Row): UpdateRuleRecord {
  return {
    id: str(r.id),
    name: str(r.name),
    group: strOrNull(r.group_name),
    percent: num(r.percent),
    targetVersion: str(r.target_version),
    paused: num(r.paused) === 1,
    rollback: num(r.rollback) === 1,
    rollbackAuthorisation: strOrNull(r.rollback_auth),
    position: num(r.position),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

/** Releases, update rules and devices' update reports. */
export class ReleasesRepo {
  constructor(private db: SqlDatabase) {}

  /** Adds a release; false when that version exists already. */
  insert(r: ReleaseRecord): boolean {
    return this.db.run(
      `INSERT INTO releases (version, sha256, size, key_id, signed_manifest, uploaded_at, uploaded_by)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (version) DO NOTHING`,
      r.version,
      r.sha256,
      r.size,
      r.keyId,
      r.signedManifest,
      r.uploadedAt,
      r.uploadedBy,
    ).changes === 1;
  }

  /** One release. */
  get(version: string): ReleaseRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM releases WHERE version = ?", version);
    return r && toRelease(r);
  }

  /** Every release, newest upload first. */
  list(): ReleaseRecord[] {
    return this.db.all<Row>("SELECT * FROM releases ORDER BY uploaded_at DESC, version")
      .map(toRelease);
  }

  /** Deletes a release; true when it existed. */
  delete(version: string): boolean {
    return this.db.run("DELETE FROM releases WHERE version = ?", version).changes === 1;
  }

  /** Rules targeting a version. */
  rulesTargeting(version: string): UpdateRuleRecord[] {
    return this.db.all<Row>("SELECT * FROM update_rules WHERE target_version = ?", version)
      .map(toRule);
  }

  /** Every rule, by position. */
  rules(): UpdateRuleRecord[] {
    return this.db.all<Row>("SELECT * FROM update_rules ORDER BY position, id").map(toRule);
  }

  /** One rule. */
  rule(id: string): UpdateRuleRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM update_rules WHERE id = ?", id);
    return r && toRule(r);
  }

  /** One rule by name (names are unique, case-sensitive). */
  ruleByName(name: string): UpdateRuleRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM update_rules WHERE name = ?", name);
    return r && toRule(r);
  }

  /** Adds a rule at the end of the order. */
  insertRule(r: Omit<UpdateRuleRecord, "position">): UpdateRuleRecord {
    return this.db.transaction(() => {
      const last = this.db.get<{ p: number | null }>(
        "SELECT MAX(position) AS p FROM update_rules",
      );
      const position = last?.p === null || last?.p === undefined ? 1 : Number(last.p) + 1;
      this.db.run(
        `INSERT INTO update_rules (id, name, group_name, percent, target_version, paused, rollback,
           rollback_auth, position, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        r.id,
        r.name,
        r.group,
        r.percent,
        r.targetVersion,
        r.paused ? 1 : 0,
        r.rollback ? 1 : 0,
        r.rollbackAuthorisation,
        position,
        r.createdAt,
        r.updatedAt,
      );
      return { ...r, position };
    });
  }

  /** Replaces a rule's settings; true when it existed. */
  updateRule(r: Omit<UpdateRuleRecord, "createdAt">): boolean {
    return this.db.run(
      `UPDATE update_rules SET name = ?, group_name = ?, percent = ?, target_version = ?, paused = ?,
         rollback = ?, rollback_auth = ?, position = ?, updated_at = ? WHERE id = ?`,
      r.name,
      r.group,
      r.percent,
      r.targetVersion,
      r.paused ? 1 : 0,
      r.rollback ? 1 : 0,
      r.rollbackAuthorisation,
      r.position,
      r.updatedAt,
      r.id,
    ).changes === 1;
  }

  /** Deletes a rule; true when it existed. */
  deleteRule(id: string): boolean {
    return this.db.run("DELETE FROM update_rules WHERE id = ?", id).changes === 1;
  }

  // ---- program bytes (migration 17) -------------------------------------------

  /** Stores chunk `seq` of the program with digest `sha256` (kept when it exists). */
  putChunk(sha256: string, seq: number, data: Uint8Array): void {
    this.db.run(
      `INSERT INTO release_chunks (sha256, seq, data) VALUES (?, ?, ?)
       ON CONFLICT (sha256, seq) DO NOTHING`,
      sha256,
      seq,
      data,
    );
  }

  /** Chunk `seq` of a program, or undefined. */
  chunk(sha256: string, seq: number): Uint8Array | undefined {
    const r = this.db.get<{ data: Uint8Array }>(
      "SELECT data FROM release_chunks WHERE sha256 = ? AND seq = ?",
      sha256,
      seq,
    );
    return r ? new Uint8Array(r.data) : undefined;
  }

  /** How many chunks of a program are stored. */
  chunkCount(sha256: string): number {
    const r = this.db.get<Row>(
      "SELECT COUNT(*) AS n FROM release_chunks WHERE sha256 = ?",
      sha256,
    );
    return r ? num(r.n) : 0;
  }

  /** Deletes a program's chunks. */
  deleteChunks(sha256: string): void {
    this.db.run("DELETE FROM release_chunks WHERE sha256 = ?", sha256);
  }

  /** Records a device's report (the last one per device is kept). */
  putReport(r: UpdateReportRecord): void {
    this.db.run(
      `INSERT INTO update_reports (device_id, version, outcome, reason, at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (device_id) DO UPDATE SET version = excluded.version, outcome = excluded.outcome,
         reason = excluded.reason, at = excluded.at`,
      r.deviceId,
      r.version,
      r.outcome,
      r.reason,
      r.at,
    );
  }

  /** Every device's last report. */
  reports(): UpdateReportRecord[] {
    return this.db.all<Row>("SELECT * FROM update_reports ORDER BY at DESC").map((r) => ({
      deviceId: str(r.device_id),
      version: str(r.version),
      outcome: str(r.outcome) as UpdateReportRecord["outcome"],
      reason: str(r.reason),
      at: num(r.at),
    }));
  }
}
