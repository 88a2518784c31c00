import type { SqlDatabase } from "../sql.ts";
import { num, numOrNull, type Row, str, strOrNull } from "./row.ts";
import type { Sealer } from "./users.ts";

/** A stored DLP dictionary: its definition (JSON) and, for EDM, the index and sealed key. */
export interface DlpDictionaryRecord {
  name: string;
  position: number;
  /** The validated definition, as JSON. */
  def: unknown;
  /** The EDM index without its key (JSON), or null. */
  edmIndex: unknown | null;
  /** The EDM HMAC key, opened (base64), or null. */
  edmKey: string | null;
  edmUploadedAt: number | null;
  updatedAt: number;
}

const CLEAR: Sealer = { seal: (s) => s, open: (s) => s };

/** DLP dictionaries; the EDM key is sealed at rest by the store's sealer. */
export class DlpDictionariesRepo {
  constructor(private db: SqlDatabase, private sealer: Sealer = CLEAR) {}

  #map(r: Row, withIndex: boolean): DlpDictionaryRecord {
    return {
      name: str(r.name),
      position: num(r.position),
      def: JSON.parse(str(r.def)),
      edmIndex: withIndex && r.edm_index !== null ? JSON.parse(str(r.edm_index)) : null,
      edmKey: withIndex && r.edm_key !== null ? this.sealer.open(str(r.edm_key)) : null,
      edmUploadedAt: numOrNull(r.edm_uploaded_at),
      updatedAt: num(r.updated_at),
    };
  }

  /** Every dictionary in position order; EDM indexes only with `withIndex`. */
  list(withIndex = false): DlpDictionaryRecord[] {
    const cols = withIndex
      ? "*"
      : "name, position, def, NULL AS edm_index, NULL AS edm_key, edm_uploaded_at, updated_at";
    return this.db.all<Row>(`SELECT ${cols} FROM dlp_dictionaries ORDER BY position, name`)
      .map((r) => this.#map(r, withIndex));
  }

  /** One dictionary with its index, or undefined. */
  get(name: string): DlpDictionaryRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM dlp_dictionaries WHERE name = ?", name);
    return r && this.#map(r, true);
  }

  /** Inserts or replaces the definition, keeping an uploaded EDM index. */
  upsert(name: string, def: unknown, at: number): void {
    const pos = this.db.get<Row>(
      "SELECT COALESCE(MAX(position) + 1, 0) AS p FROM dlp_dictionaries",
    )!.p;
    this.db.run(
      "INSERT INTO dlp_dictionaries (name, position, def, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET def = excluded.def, updated_at = excluded.updated_at",
      name,
      num(pos),
      JSON.stringify(def),
      at,
    );
  }

  /** Stores an EDM index (without key) and its key, sealed. */
  setEdm(name: string, index: unknown, key: string, at: number): boolean {
    return this.db.run(
      "UPDATE dlp_dictionaries SET edm_index = ?, edm_key = ?, edm_uploaded_at = ?, updated_at = ? WHERE name = ?",
      JSON.stringify(index),
      this.sealer.seal(key),
      at,
      at,
      name,
    ).changes === 1;
  }

  /** Deletes a dictionary; returns whether it existed. */
  delete(name: string): boolean {
    return this.db.run("DELETE FROM dlp_dictionaries WHERE name = ?", name).changes === 1;
  }

  /** The stored sealed key as it is at rest (tests check it is not the clear key). */
  sealedKey(name: string): string | null {
    const r = this.db.get<Row>("SELECT edm_key FROM dlp_dictionaries WHERE name = ?", name);
    return r ? strOrNull(r.edm_key) : null;
  }
}
