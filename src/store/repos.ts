/**
 * Typed repositories over the edge database. Each maps snake_case rows to
 * camelCase records and back; SQL stays here so the rest of the program never
 * builds a query string. Every value is bound as a parameter, never
 * interpolated, so SQL metacharacters in input are just characters.
 */
import type { Database, SqlValue } from "./db.ts";

type Row = Record<string, SqlValue>;

const num = (v: SqlValue): number => Number(v);
const numOrNull = (v: SqlValue): number | null => (v === null ? null : Number(v));
const strOrNull = (v: SqlValue): string | null => (v === null ? null : String(v));
const str = (v: SqlValue): string => String(v);

/** Key/value settings (device network, policy revision, …). */
export class SettingsRepo {
  constructor(private db: Database) {}
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

/** A console/API user. */
export interface UserRecord {
  id: string;
  username: string;
  passwordHash: string;
  totpSecret: string;
  totpLastStep: number;
  role: "admin" | "user";
  groups: string[];
  createdAt: number;
}

/** Seals secrets before they are stored, opens them when read (identity passes them through). */
export interface Sealer {
  seal(clear: string): string;
  open(stored: string): string;
}

const CLEAR: Sealer = { seal: (s) => s, open: (s) => s };

function toUser(r: Row, sealer: Sealer): UserRecord {
  return {
    id: str(r.id),
    username: str(r.username),
    passwordHash: str(r.password_hash),
    totpSecret: sealer.open(str(r.totp_secret)),
    totpLastStep: num(r.totp_last_step),
    role: r.role === "admin" ? "admin" : "user",
    groups: JSON.parse(str(r.groups)),
    createdAt: num(r.created_at),
  };
}

/** Users with password hashes and TOTP secrets. */
export class UsersRepo {
  /** `sealer` protects TOTP seeds at rest (see src/identity/secret_box.ts). */
  constructor(private db: Database, private sealer: Sealer = CLEAR) {}
  /** Inserts a user. */
  insert(u: UserRecord): void {
    this.db.run(
      "INSERT INTO users (id, username, password_hash, totp_secret, totp_last_step, role, groups, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      u.id,
      u.username,
      u.passwordHash,
      this.sealer.seal(u.totpSecret),
      u.totpLastStep,
      u.role,
      JSON.stringify(u.groups),
      u.createdAt,
    );
  }
  /** Finds a user by name (case-insensitive). */
  byUsername(username: string): UserRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM users WHERE username = ?", username);
    return r && toUser(r, this.sealer);
  }
  /** Finds a user by id. */
  byId(id: string): UserRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM users WHERE id = ?", id);
    return r && toUser(r, this.sealer);
  }
  /** Every user, by name. */
  list(): UserRecord[] {
    return this.db.all<Row>("SELECT * FROM users ORDER BY username").map((r) =>
      toUser(r, this.sealer)
    );
  }
  /** Number of users. */
  count(): number {
    return num(this.db.get<Row>("SELECT COUNT(*) AS n FROM users")!.n);
  }
  /** Deletes a user (sessions and tokens cascade); returns whether it existed. */
  delete(id: string): boolean {
    return this.db.run("DELETE FROM users WHERE id = ?", id).changes === 1;
  }
  /**
   * Records `step` as the last TOTP step used, only if it is newer; returns
   * false when the step was already used (a replayed code).
   */
  claimTotpStep(id: string, step: number): boolean {
    return this.db.run(
      "UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?",
      step,
      id,
      step,
    ).changes === 1;
  }
}

/** A console session; only the hash of its id is stored. */
export interface SessionRecord {
  idHash: string;
  userId: string;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
  sourceIp: string;
}

function toSession(r: Row): SessionRecord {
  return {
    idHash: str(r.id_hash),
    userId: str(r.user_id),
    csrfToken: str(r.csrf_token),
    createdAt: num(r.created_at),
    lastSeenAt: num(r.last_seen_at),
    expiresAt: num(r.expires_at),
    sourceIp: str(r.source_ip),
  };
}

/** Console sessions. */
export class SessionsRepo {
  constructor(private db: Database) {}
  /** Inserts a session. */
  insert(s: SessionRecord): void {
    this.db.run(
      "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, source_ip) VALUES (?, ?, ?, ?, ?, ?, ?)",
      s.idHash,
      s.userId,
      s.csrfToken,
      s.createdAt,
      s.lastSeenAt,
      s.expiresAt,
      s.sourceIp,
    );
  }
  /** Finds a session by the hash of its id. */
  byHash(idHash: string): SessionRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM sessions WHERE id_hash = ?", idHash);
    return r && toSession(r);
  }
  /** Updates the last-seen time. */
  touch(idHash: string, at: number): void {
    this.db.run("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", at, idHash);
  }
  /** Deletes one session. */
  delete(idHash: string): void {
    this.db.run("DELETE FROM sessions WHERE id_hash = ?", idHash);
  }
  /** Deletes sessions past their absolute expiry or idle for `idleMs`. */
  deleteStale(now: number, idleMs: number): number {
    return this.db.run(
      "DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?",
      now,
      now - idleMs,
    ).changes;
  }
  /** Number of sessions. */
  count(): number {
    return num(this.db.get<Row>("SELECT COUNT(*) AS n FROM sessions")!.n);
  }
}

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
  constructor(private db: Database) {}
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
  };
}

/** Enrolment keys. */
export class EnrollmentKeysRepo {
  constructor(private db: Database) {}
  /** Inserts a key. */
  insert(k: EnrollmentKeyRecord): void {
    this.db.run(
      "INSERT INTO enrollment_keys (id, secret_hash, reusable, group_name, expires_at, revoked_at, used_at, use_count, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

/** An enrolled device. */
export interface DeviceRecord {
  id: string;
  fingerprint: string;
  machineId: string;
  macs: string[];
  hostname: string;
  os: string;
  osVersion: string;
  connectorVersion: string;
  wgPublicKey: string;
  signingPublicKey: string;
  credentialHash: string;
  group: string | null;
  user: string | null;
  enrollmentKeyId: string | null;
  disabled: boolean;
  enrolledAt: number;
  updatedAt: number;
  lastSeenAt: number | null;
  reportedState: string | null;
  reportedTransport: string | null;
  clockSkewMs: number | null;
}

function toDevice(r: Row): DeviceRecord {
  return {
    id: str(r.id),
    fingerprint: str(r.fingerprint),
    machineId: str(r.machine_id),
    macs: JSON.parse(str(r.macs)),
    hostname: str(r.hostname),
    os: str(r.os),
    osVersion: str(r.os_version),
    connectorVersion: str(r.connector_version),
    wgPublicKey: str(r.wg_public_key),
    signingPublicKey: str(r.signing_public_key),
    credentialHash: str(r.credential_hash),
    group: strOrNull(r.group_name),
    user: strOrNull(r.user_name),
    enrollmentKeyId: strOrNull(r.enrollment_key_id),
    disabled: num(r.disabled) === 1,
    enrolledAt: num(r.enrolled_at),
    updatedAt: num(r.updated_at),
    lastSeenAt: numOrNull(r.last_seen_at),
    reportedState: strOrNull(r.reported_state),
    reportedTransport: strOrNull(r.reported_transport),
    clockSkewMs: numOrNull(r.clock_skew_ms),
  };
}

/** Enrolled devices. */
export class DevicesRepo {
  constructor(private db: Database) {}
  /** Inserts a device. */
  insert(d: DeviceRecord): void {
    this.db.run(
      `INSERT INTO devices (id, fingerprint, machine_id, macs, hostname, os, os_version, connector_version,
        wg_public_key, signing_public_key, credential_hash, group_name, user_name, enrollment_key_id,
        disabled, enrolled_at, updated_at, last_seen_at, reported_state, reported_transport, clock_skew_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      d.id,
      d.fingerprint,
      d.machineId,
      JSON.stringify(d.macs),
      d.hostname,
      d.os,
      d.osVersion,
      d.connectorVersion,
      d.wgPublicKey,
      d.signingPublicKey,
      d.credentialHash,
      d.group,
      d.user,
      d.enrollmentKeyId,
      d.disabled ? 1 : 0,
      d.enrolledAt,
      d.updatedAt,
      d.lastSeenAt,
      d.reportedState,
      d.reportedTransport,
      d.clockSkewMs,
    );
  }
  /** Replaces the keys, credential and reported facts of a re-enrolling device. */
  reenroll(
    id: string,
    d: Pick<
      DeviceRecord,
      | "machineId"
      | "macs"
      | "hostname"
      | "os"
      | "osVersion"
      | "connectorVersion"
      | "wgPublicKey"
      | "signingPublicKey"
      | "credentialHash"
      | "group"
      | "enrollmentKeyId"
      | "updatedAt"
    >,
  ): void {
    this.db.run(
      `UPDATE devices SET machine_id = ?, macs = ?, hostname = ?, os = ?, os_version = ?, connector_version = ?,
        wg_public_key = ?, signing_public_key = ?, credential_hash = ?, group_name = ?, enrollment_key_id = ?,
        updated_at = ?, enrolled_at = ? WHERE id = ?`,
      d.machineId,
      JSON.stringify(d.macs),
      d.hostname,
      d.os,
      d.osVersion,
      d.connectorVersion,
      d.wgPublicKey,
      d.signingPublicKey,
      d.credentialHash,
      d.group,
      d.enrollmentKeyId,
      d.updatedAt,
      d.updatedAt,
      id,
    );
  }
  /** Finds a device by id. */
  byId(id: string): DeviceRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM devices WHERE id = ?", id);
    return r && toDevice(r);
  }
  /** Finds a device by hardware fingerprint hash. */
  byFingerprint(fp: string): DeviceRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM devices WHERE fingerprint = ?", fp);
    return r && toDevice(r);
  }
  /** Finds a device by the hash of its credential. */
  byCredentialHash(hash: string): DeviceRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM devices WHERE credential_hash = ?", hash);
    return r && toDevice(r);
  }
  /** Devices holding either public key. */
  byPublicKeys(wgPublicKey: string, signingPublicKey: string): DeviceRecord[] {
    return this.db.all<Row>(
      "SELECT * FROM devices WHERE wg_public_key = ? OR signing_public_key = ? OR wg_public_key = ? OR signing_public_key = ?",
      wgPublicKey,
      signingPublicKey,
      signingPublicKey,
      wgPublicKey,
    ).map(toDevice);
  }
  /** Every device, by hostname. */
  list(): DeviceRecord[] {
    return this.db.all<Row>("SELECT * FROM devices ORDER BY hostname, id").map(toDevice);
  }
  /** Number of devices. */
  count(): number {
    return num(this.db.get<Row>("SELECT COUNT(*) AS n FROM devices")!.n);
  }
  /** Sets or clears the disabled flag; returns whether the device exists. */
  setDisabled(id: string, disabled: boolean, at: number): boolean {
    return this.db.run(
      "UPDATE devices SET disabled = ?, updated_at = ? WHERE id = ?",
      disabled ? 1 : 0,
      at,
      id,
    ).changes === 1;
  }
  /** Deletes a device (its lease, posture and registration cascade). */
  delete(id: string): boolean {
    return this.db.run("DELETE FROM devices WHERE id = ?", id).changes === 1;
  }
  /** Records a heartbeat or any authenticated call. */
  touch(
    id: string,
    at: number,
    report?: { state: string; transport: string | null; clockSkewMs: number | null },
  ): void {
    if (report) {
      this.db.run(
        "UPDATE devices SET last_seen_at = ?, reported_state = ?, reported_transport = ?, clock_skew_ms = ? WHERE id = ?",
        at,
        report.state,
        report.transport,
        report.clockSkewMs,
        id,
      );
    } else {
      this.db.run("UPDATE devices SET last_seen_at = ? WHERE id = ?", at, id);
    }
  }
}

/** Address leases: host index inside the device network, one per device. */
export class LeasesRepo {
  constructor(private db: Database) {}
  /** The host index leased to `deviceId`, or null. */
  hostOf(deviceId: string): number | null {
    const r = this.db.get<Row>("SELECT host FROM address_leases WHERE device_id = ?", deviceId);
    return r ? num(r.host) : null;
  }
  /** The device leasing host index `host`, or null. */
  deviceAt(host: number): string | null {
    const r = this.db.get<Row>("SELECT device_id FROM address_leases WHERE host = ?", host);
    return r ? str(r.device_id) : null;
  }
  /** Every lease as deviceId → host. */
  all(): Map<string, number> {
    const m = new Map<string, number>();
    for (const r of this.db.all<Row>("SELECT device_id, host FROM address_leases")) {
      m.set(str(r.device_id), num(r.host));
    }
    return m;
  }
  /**
   * Leases the lowest free host index (2…maxHost) to `deviceId`; returns it,
   * or null when the range is full. Must run inside the caller's transaction
   * so the lookup and the insert are one atomic step.
   */
  allocate(deviceId: string, at: number, maxHost: number): number | null {
    const free = this.db.get<Row>("SELECT MIN(host) AS h FROM address_free");
    let host: number | null;
    if (free?.h !== null && free?.h !== undefined) {
      host = num(free.h);
      this.db.run("DELETE FROM address_free WHERE host = ?", host);
    } else {
      const max = this.db.get<Row>("SELECT MAX(host) AS h FROM address_leases");
      host = max?.h === null || max?.h === undefined ? 2 : num(max.h) + 1;
    }
    if (host === null || host > maxHost) return null;
    this.db.run(
      "INSERT INTO address_leases (host, device_id, leased_at) VALUES (?, ?, ?)",
      host,
      deviceId,
      at,
    );
    return host;
  }
  /** Releases the lease of `deviceId`. */
  release(deviceId: string): void {
    this.db.run("DELETE FROM address_leases WHERE device_id = ?", deviceId);
  }
  /** Number of leases. */
  count(): number {
    return num(this.db.get<Row>("SELECT COUNT(*) AS n FROM address_leases")!.n);
  }
}

/** Kinds of policy object the admin edits. */
export type PolicyKind =
  | "app_profile"
  | "forwarding_profile"
  | "posture_profile"
  | "segment"
  | "access_rule"
  | "client_to_client";

/** Policy objects as validated JSON, ordered by position within a kind. */
export class PolicyRepo {
  constructor(private db: Database) {}
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

/** A stored posture report. */
export interface PostureRecord {
  id: number;
  deviceId: string;
  collectedAt: string;
  receivedAt: number;
  passed: boolean;
  body: unknown;
}

/** Posture reports; the newest `keep` per device are kept. */
export class PostureRepo {
  constructor(private db: Database) {}
  /** Stores a report and prunes old ones (call inside a transaction). */
  insert(
    deviceId: string,
    collectedAt: string,
    receivedAt: number,
    passed: boolean,
    body: unknown,
    keep = 20,
  ): number {
    const { lastInsertRowid } = this.db.run(
      "INSERT INTO posture_reports (device_id, collected_at, received_at, passed, body) VALUES (?, ?, ?, ?, ?)",
      deviceId,
      collectedAt,
      receivedAt,
      passed ? 1 : 0,
      JSON.stringify(body),
    );
    this.db.run(
      "DELETE FROM posture_reports WHERE device_id = ? AND id NOT IN (SELECT id FROM posture_reports WHERE device_id = ? ORDER BY id DESC LIMIT ?)",
      deviceId,
      deviceId,
      keep,
    );
    return lastInsertRowid;
  }
  /** The newest report of a device. */
  latest(deviceId: string): PostureRecord | undefined {
    const r = this.db.get<Row>(
      "SELECT * FROM posture_reports WHERE device_id = ? ORDER BY id DESC LIMIT 1",
      deviceId,
    );
    return r && {
      id: num(r.id),
      deviceId: str(r.device_id),
      collectedAt: str(r.collected_at),
      receivedAt: num(r.received_at),
      passed: num(r.passed) === 1,
      body: JSON.parse(str(r.body)),
    };
  }
  /** Number of stored reports. */
  count(): number {
    return num(this.db.get<Row>("SELECT COUNT(*) AS n FROM posture_reports")!.n);
  }
}

/** A client-to-client registration. */
export interface C2cRecord {
  deviceId: string;
  fqdn: string;
  valid: boolean;
  reason: string;
  registeredAt: number;
}

function toC2c(r: Row): C2cRecord {
  return {
    deviceId: str(r.device_id),
    fqdn: str(r.fqdn),
    valid: num(r.valid) === 1,
    reason: str(r.reason),
    registeredAt: num(r.registered_at),
  };
}

/** Client-to-client registrations, one per device. */
export class C2cRepo {
  constructor(private db: Database) {}
  /** Stores (replacing) the registration of a device. */
  upsert(r: C2cRecord): void {
    this.db.run(
      `INSERT INTO c2c_registrations (device_id, fqdn, valid, reason, registered_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(device_id) DO UPDATE SET fqdn = excluded.fqdn, valid = excluded.valid,
         reason = excluded.reason, registered_at = excluded.registered_at`,
      r.deviceId,
      r.fqdn,
      r.valid ? 1 : 0,
      r.reason,
      r.registeredAt,
    );
  }
  /** The registration of a device. */
  get(deviceId: string): C2cRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM c2c_registrations WHERE device_id = ?", deviceId);
    return r && toC2c(r);
  }
  /** The device holding a valid registration for `fqdn`, if any. */
  validOwner(fqdn: string): string | null {
    const r = this.db.get<Row>(
      "SELECT device_id FROM c2c_registrations WHERE fqdn = ? AND valid = 1",
      fqdn,
    );
    return r ? str(r.device_id) : null;
  }
  /** Every registration. */
  list(): C2cRecord[] {
    return this.db.all<Row>("SELECT * FROM c2c_registrations ORDER BY fqdn").map(toC2c);
  }
}

/** A stored notification. */
export interface NotificationRecord {
  id: number;
  kind: string;
  severity: "info" | "warning" | "critical";
  message: string;
  data: Record<string, unknown>;
  createdAt: number;
  readAt: number | null;
}

function toNotification(r: Row): NotificationRecord {
  return {
    id: num(r.id),
    kind: str(r.kind),
    severity: str(r.severity) as NotificationRecord["severity"],
    message: str(r.message),
    data: JSON.parse(str(r.data)),
    createdAt: num(r.created_at),
    readAt: numOrNull(r.read_at),
  };
}

/** Notifications for administrators. */
export class NotificationsRepo {
  constructor(private db: Database) {}
  /** Stores a notification; returns its id. */
  insert(n: Omit<NotificationRecord, "id" | "readAt">): number {
    return this.db.run(
      "INSERT INTO notifications (kind, severity, message, data, created_at) VALUES (?, ?, ?, ?, ?)",
      n.kind,
      n.severity,
      n.message,
      JSON.stringify(n.data),
      n.createdAt,
    ).lastInsertRowid;
  }
  /** Notifications newer than `afterId`, oldest first, at most `limit`. */
  list(opts: { afterId?: number; limit?: number; kind?: string } = {}): NotificationRecord[] {
    return this.db.all<Row>(
      "SELECT * FROM notifications WHERE id > ? AND (? IS NULL OR kind = ?) ORDER BY id DESC LIMIT ?",
      opts.afterId ?? 0,
      opts.kind ?? null,
      opts.kind ?? null,
      opts.limit ?? 100,
    ).map(toNotification).reverse();
  }
  /** Marks one read; returns whether it existed. */
  markRead(id: number, at: number): boolean {
    return this.db.run(
      "UPDATE notifications SET read_at = COALESCE(read_at, ?) WHERE id = ?",
      at,
      id,
    ).changes === 1;
  }
  /** Number of notifications (optionally of one kind). */
  count(kind?: string): number {
    return num(
      this.db.get<Row>(
        "SELECT COUNT(*) AS n FROM notifications WHERE (? IS NULL OR kind = ?)",
        kind ?? null,
        kind ?? null,
      )!.n,
    );
  }
}

/** An audit log entry. */
export interface AuditRecord {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  detail: Record<string, unknown>;
}

/** The append-only audit log. */
export class AuditRepo {
  constructor(private db: Database) {}
  /** Appends an entry. */
  insert(e: Omit<AuditRecord, "id">): void {
    this.db.run(
      "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
      e.at,
      e.actor,
      e.action,
      e.target,
      JSON.stringify(e.detail),
    );
  }
  /** The newest `limit` entries before `beforeId`, newest first. */
  list(opts: { beforeId?: number; limit?: number; action?: string } = {}): AuditRecord[] {
    return this.db.all<Row>(
      "SELECT * FROM audit_log WHERE id < ? AND (? IS NULL OR action = ?) ORDER BY id DESC LIMIT ?",
      opts.beforeId ?? Number.MAX_SAFE_INTEGER,
      opts.action ?? null,
      opts.action ?? null,
      opts.limit ?? 100,
    ).map((r) => ({
      id: num(r.id),
      at: num(r.at),
      actor: str(r.actor),
      action: str(r.action),
      target: strOrNull(r.target),
      detail: JSON.parse(str(r.detail)),
    }));
  }
  /** Number of entries (optionally for one action). */
  count(action?: string): number {
    return num(
      this.db.get<Row>(
        "SELECT COUNT(*) AS n FROM audit_log WHERE (? IS NULL OR action = ?)",
        action ?? null,
        action ?? null,
      )!.n,
    );
  }
}

/** A support request (the bundle itself is loaded only on download). */
export interface SupportRecord {
  id: string;
  deviceId: string | null;
  hostname: string;
  message: string;
  bundleSize: number;
  bundleSha256: string;
  createdAt: number;
}

/** Support requests with their zip bundles. */
export class SupportRepo {
  constructor(private db: Database) {}
  /** Stores a request with its bundle. */
  insert(r: Omit<SupportRecord, "bundleSize">, bundle: Uint8Array): void {
    this.db.run(
      "INSERT INTO support_requests (id, device_id, hostname, message, bundle, bundle_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      r.id,
      r.deviceId,
      r.hostname,
      r.message,
      bundle,
      r.bundleSha256,
      r.createdAt,
    );
  }
  /** Every request without bundles, newest first. */
  list(): SupportRecord[] {
    return this.db.all<Row>(
      "SELECT id, device_id, hostname, message, length(bundle) AS size, bundle_sha256, created_at FROM support_requests ORDER BY created_at DESC, id",
    ).map((r) => ({
      id: str(r.id),
      deviceId: strOrNull(r.device_id),
      hostname: str(r.hostname),
      message: str(r.message),
      bundleSize: num(r.size),
      bundleSha256: str(r.bundle_sha256),
      createdAt: num(r.created_at),
    }));
  }
  /** The bundle bytes of one request. */
  bundle(id: string): Uint8Array | undefined {
    const r = this.db.get<Row>("SELECT bundle FROM support_requests WHERE id = ?", id);
    return r ? (r.bundle as Uint8Array) : undefined;
  }
}
