/**
 * The fleet's shared keys (migration 15): one row, written by the first edge
 * that starts on an empty shared database, read by every edge that joins
 * later. The data-sealing key is stored wrapped under the fleet join key
 * (src/fleet/join_key.ts), which stays with the operator; the CA's private
 * key is sealed with that data-sealing key; the CA certificate is public.
 * The key ids let an edge tell a wrong join key, or a data directory from
 * another fleet, from damage.
 *
 * The fleet's SSL inspection CA (migration 18) has a row of its own: fleets
 * from before it have their keys row already, and the first edge started
 * after the upgrade adds its inspection CA beside them.
 */
import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str } from "./row.ts";

/** The fleet's keys as stored. */
export interface FleetSecretsRecord {
  /** Id of the join key that wraps `sealingKey` (join_key.ts keyId). */
  joinKeyId: string;
  /** Id of the data-sealing key (to recognise an edge's own secret.key). */
  sealingKeyId: string;
  /** The data-sealing key, wrapped under the join key. */
  sealingKey: string;
  /** The fleet CA's certificate (PEM). */
  caCertPem: string;
  /** The fleet CA's private key (PEM), sealed with the data-sealing key. */
  caKeySealed: string;
  createdAt: number;
  /** Name of the edge that stored them. */
  createdBy: string;
}

/** The fleet's SSL inspection CA as stored. */
export interface FleetInspectionCaRecord {
  /** The certificate (PEM). */
  certPem: string;
  /** SHA-256 (hex) of the certificate's DER, to name it in messages. */
  certSha256: string;
  /** The private key (PKCS#8 PEM), sealed with the data-sealing key. */
  keySealed: string;
  createdAt: number;
  /** Name of the edge that stored it. */
  createdBy: string;
}

/** Any constant, shared by every edge: the session lock of the first start. */
const INIT_LOCK = 0x50434c46; // "PCLF"

function toRecord(r: Row): FleetSecretsRecord {
  return {
    joinKeyId: str(r.join_key_id),
    sealingKeyId: str(r.sealing_key_id),
    sealingKey: str(r.sealing_key),
    caCertPem: str(r.ca_cert_pem),
    caKeySealed: str(r.ca_key_sealed),
    createdAt: num(r.created_at),
    createdBy: str(r.created_by),
  };
}

/** The fleet's shared keys. */
export class FleetSecretsRepo {
  constructor(private db: SqlDatabase) {}

  /** The stored keys, if an edge stored them. */
  get(): FleetSecretsRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM fleet_secrets WHERE id = 1");
    return r && toRecord(r);
  }

  /** Stores the keys unless some edge did first; returns whether these were stored. */
  insert(rec: FleetSecretsRecord): boolean {
    return this.db.run(
      "INSERT INTO fleet_secrets (id, join_key_id, sealing_key_id, sealing_key, ca_cert_pem, ca_key_sealed, created_at, created_by) VALUES (1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
      rec.joinKeyId,
      rec.sealingKeyId,
      rec.sealingKey,
      rec.caCertPem,
      rec.caKeySealed,
      rec.createdAt,
      rec.createdBy,
    ).changes === 1;
  }

  /** The fleet's inspection CA, if an edge stored it. */
  inspectionCa(): FleetInspectionCaRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM fleet_inspection_ca WHERE id = 1");
    return r && {
      certPem: str(r.cert_pem),
      certSha256: str(r.cert_sha256),
      keySealed: str(r.key_sealed),
      createdAt: num(r.created_at),
      createdBy: str(r.created_by),
    };
  }

  /** Stores the inspection CA unless some edge did first; returns whether this one was stored. */
  insertInspectionCa(rec: FleetInspectionCaRecord): boolean {
    return this.db.run(
      "INSERT INTO fleet_inspection_ca (id, cert_pem, cert_sha256, key_sealed, created_at, created_by) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
      rec.certPem,
      rec.certSha256,
      rec.keySealed,
      rec.createdAt,
      rec.createdBy,
    ).changes === 1;
  }

  /**
   * Runs `fn` while no other edge runs it: on PostgreSQL under a session
   * advisory lock (edges starting together on an empty database take turns,
   * so exactly one makes the CA and the others join it; the lock goes with
   * the connection if the edge dies). SQLite has one edge per file.
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.db.dialect !== "postgres") return await fn();
    this.db.get("SELECT pg_advisory_lock(?) AS locked", INIT_LOCK);
    try {
      return await fn();
    } finally {
      this.db.get("SELECT pg_advisory_unlock(?) AS unlocked", INIT_LOCK);
    }
  }
}
