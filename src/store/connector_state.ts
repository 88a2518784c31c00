/**
 * The connector's persistent state: its sealed device identity, its
 * enrolment, the last policy bundle and the notification log. One SQLite
 * database under the connector's data directory; writes that belong together
 * (discarding an identity and its enrolment) happen in one transaction.
 *
 * Secrets never appear here in clear: the identity row holds only ciphertext
 * sealed to this machine (see src/connector/identity.ts); public keys are
 * kept beside it so status pages can show them without unsealing.
 */
import { Database } from "./db.ts";
import { CONNECTOR_MIGRATIONS } from "./connector_migrations.ts";
import type { TunnelEndpoint } from "../net/endpoint.ts";

/** The sealed identity row: ciphertext bound to one machine and fingerprint. */
export interface SealedIdentityRow {
  fingerprintHash: string;
  /** Base64 HKDF salt. */
  salt: string;
  /** Base64 AES-GCM nonce. */
  iv: string;
  /** Base64 AES-GCM ciphertext (with tag). */
  ciphertext: string;
  wgPublicKey: string;
  signingPublicKey: string;
  createdAt: number;
}

/** What the connector keeps from a successful enrolment (the credential is sealed apart). */
export interface StoredEnrollment {
  deviceId: string;
  /** The edge API base URL from the enrolment key. */
  apiUrl: string;
  /** The edge's plain-HTTP bootstrap URL from the key (captive probe, egress); older rows lack it. */
  bootstrapUrl?: string;
  /** The pinned edge CA certificate (PEM). */
  caPem: string;
  address: string;
  network: string;
  edgeAddress: string;
  edgePublicKey: string;
  endpoints: TunnelEndpoint[];
  user: string | null;
  group: string | null;
  enrolledAt: number;
}

/** The last policy bundle received, as JSON text plus its version and ETag. */
export interface StoredPolicy {
  version: string;
  etag: string | null;
  /** The bundle as received (JSON); parse with PolicyBundle before use. */
  bundle: unknown;
  updatedAt: number;
}

/** Severity of a notification. */
export type NotificationSeverity = "info" | "warn" | "error";

/** A notification as stored and shown by the local console. */
export interface Notification {
  id: number;
  ts: number;
  type: string;
  severity: NotificationSeverity;
  message: string;
  data: Record<string, unknown>;
}

/** Query for listNotifications. */
export interface NotificationQuery {
  type?: string;
  /** Only notifications with an id above this one. */
  afterId?: number;
  /** Newest first, at most this many (default 100, max 1000). */
  limit?: number;
}

/** Notifications kept at most; older ones are pruned on insert. */
export const MAX_NOTIFICATIONS = 2000;

/** Typed repository over the connector database. */
export class ConnectorState {
  readonly db: Database;

  private constructor(db: Database) {
    this.db = db;
  }

  /** Opens (creating and migrating) the connector database at `path` (":memory:" in tests). */
  static open(path: string): ConnectorState {
    return new ConnectorState(Database.open(path, { migrations: CONNECTOR_MIGRATIONS }));
  }

  /**
   * `PRAGMA integrity_check`: the problems SQLite finds in the file (pages,
   * indexes, constraints), empty when the database is sound.
   */
  integrityCheck(): string[] {
    const rows = this.db.all<{ integrity_check: string }>("PRAGMA integrity_check");
    const problems = rows.map((r) => String(r.integrity_check));
    return problems.length === 1 && problems[0] === "ok" ? [] : problems;
  }

  /** Rebuilds every index from its table (what integrity problems in indexes need). */
  reindex(): void {
    this.db.exec("REINDEX");
  }

  /** Returns the sealed identity, or null before the first run. */
  getIdentity(): SealedIdentityRow | null {
    const r = this.db.get<Record<string, string | number>>("SELECT * FROM identity WHERE id = 1");
    if (!r) return null;
    return {
      fingerprintHash: String(r.fingerprint_hash),
      salt: String(r.salt),
      iv: String(r.iv),
      ciphertext: String(r.ciphertext),
      wgPublicKey: String(r.wg_public_key),
      signingPublicKey: String(r.signing_public_key),
      createdAt: Number(r.created_at),
    };
  }

  /** Stores (replacing) the sealed identity. */
  putIdentity(row: SealedIdentityRow): void {
    this.db.run(
      `INSERT INTO identity (id, fingerprint_hash, salt, iv, ciphertext, wg_public_key, signing_public_key, created_at)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET fingerprint_hash = excluded.fingerprint_hash, salt = excluded.salt,
         iv = excluded.iv, ciphertext = excluded.ciphertext, wg_public_key = excluded.wg_public_key,
         signing_public_key = excluded.signing_public_key, created_at = excluded.created_at`,
      row.fingerprintHash,
      row.salt,
      row.iv,
      row.ciphertext,
      row.wgPublicKey,
      row.signingPublicKey,
      row.createdAt,
    );
  }

  /**
   * Forgets the device identity and everything bound to it (enrolment and
   * policy) in one transaction, so a half-discarded identity cannot remain.
   */
  discardIdentity(): void {
    this.db.transaction(() => {
      this.db.run("DELETE FROM identity");
      this.db.run("DELETE FROM enrollment");
      this.db.run("DELETE FROM policy");
    });
  }

  /** Returns the stored enrolment, or null when not enrolled. */
  getEnrollment(): StoredEnrollment | null {
    const r = this.db.get<Record<string, string | number>>(
      "SELECT * FROM enrollment WHERE id = 1",
    );
    if (!r) return null;
    const details = JSON.parse(String(r.details));
    return {
      ...details,
      deviceId: String(r.device_id),
      apiUrl: String(r.api_url),
      caPem: String(r.ca_pem),
      enrolledAt: Number(r.enrolled_at),
    };
  }

  /**
   * Stores an enrolment together with the sealed identity that now carries
   * its credential and the first policy, in one transaction.
   */
  putEnrollment(e: StoredEnrollment, identity: SealedIdentityRow, policy?: StoredPolicy): void {
    const { deviceId, apiUrl, caPem, enrolledAt, ...details } = e;
    this.db.transaction(() => {
      this.putIdentity(identity);
      this.db.run(
        `INSERT INTO enrollment (id, device_id, api_url, ca_pem, details, enrolled_at) VALUES (1, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, api_url = excluded.api_url,
           ca_pem = excluded.ca_pem, details = excluded.details, enrolled_at = excluded.enrolled_at`,
        deviceId,
        apiUrl,
        caPem,
        JSON.stringify(details),
        enrolledAt,
      );
      if (policy) this.putPolicy(policy);
    });
  }

  /** Forgets the enrolment and policy (logout, or a credential the edge refused). */
  clearEnrollment(): void {
    this.db.transaction(() => {
      this.db.run("DELETE FROM enrollment");
      this.db.run("DELETE FROM policy");
    });
  }

  /** Returns the last policy received, or null. */
  getPolicy(): StoredPolicy | null {
    const r = this.db.get<Record<string, string | number | null>>(
      "SELECT * FROM policy WHERE id = 1",
    );
    if (!r) return null;
    return {
      version: String(r.version),
      etag: r.etag === null ? null : String(r.etag),
      bundle: JSON.parse(String(r.bundle)),
      updatedAt: Number(r.updated_at),
    };
  }

  /** Stores (replacing) the current policy. */
  putPolicy(p: StoredPolicy): void {
    this.db.run(
      `INSERT INTO policy (id, version, etag, bundle, updated_at) VALUES (1, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET version = excluded.version, etag = excluded.etag,
         bundle = excluded.bundle, updated_at = excluded.updated_at`,
      p.version,
      p.etag,
      JSON.stringify(p.bundle),
      p.updatedAt,
    );
  }

  /** Appends a notification and prunes the oldest beyond MAX_NOTIFICATIONS. */
  addNotification(n: Omit<Notification, "id">): Notification {
    const id = this.db.insert(
      "INSERT INTO notifications (ts, type, severity, message, data) VALUES (?, ?, ?, ?, ?)",
      n.ts,
      n.type,
      n.severity,
      n.message,
      JSON.stringify(n.data),
    );
    if (id % 100 === 0) {
      this.db.run("DELETE FROM notifications WHERE id <= ?", id - MAX_NOTIFICATIONS);
    }
    return { ...n, id: id };
  }

  /** Lists notifications newest first, optionally by type or after an id. */
  listNotifications(q: NotificationQuery = {}): Notification[] {
    const limit = Math.max(1, Math.min(1000, Math.trunc(q.limit ?? 100)));
    const rows = this.db.all<Record<string, string | number>>(
      `SELECT * FROM notifications WHERE (CAST(? AS TEXT) IS NULL OR type = ?) AND id > ? ORDER BY id DESC LIMIT ?`,
      q.type ?? null,
      q.type ?? null,
      Math.trunc(q.afterId ?? 0),
      limit,
    );
    return rows.map((r) => ({
      id: Number(r.id),
      ts: Number(r.ts),
      type: String(r.type),
      severity: String(r.severity) as NotificationSeverity,
      message: String(r.message),
      data: JSON.parse(String(r.data)),
    }));
  }

  /** Reads a small JSON value by key. */
  getMeta<T>(key: string): T | null {
    const r = this.db.get<{ value: string }>("SELECT value FROM meta WHERE key = ?", key);
    return r ? JSON.parse(r.value) as T : null;
  }

  /** Writes a small JSON value by key. */
  setMeta(key: string, value: unknown): void {
    this.db.run(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key,
      JSON.stringify(value),
    );
  }

  /** Closes the database. */
  close(): void {
    this.db.close();
  }
}
