import type { SqlDatabase } from "../sql.ts";
import { num, numOrNull, type Row, str, strOrNull } from "./row.ts";

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
  constructor(private db: SqlDatabase) {}
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
  /** The device whose tunnel key is `wgPublicKey`. */
  byWgPublicKey(wgPublicKey: string): DeviceRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM devices WHERE wg_public_key = ?", wgPublicKey);
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
  /**
   * The devices whose user is disabled (one query, for a pass over the
   * whole fleet; the name is matched as `users.byUsername` matches it).
   */
  idsWithDisabledUser(): Set<string> {
    return new Set(
      this.db.all<Row>(
        "SELECT d.id AS id FROM devices d JOIN users u ON u.username = d.user_name COLLATE NOCASE WHERE u.disabled = 1",
      ).map((r) => str(r.id)),
    );
  }
  /** Number of devices. */
  count(): number {
    return num(this.db.get<Row>("SELECT COUNT(*) AS n FROM devices")!.n);
  }
  /** Sets the device's user (null: a machine device). */
  setUser(id: string, user: string | null): void {
    this.db.run("UPDATE devices SET user_name = ? WHERE id = ?", user, id);
  }
  /** Every device of a user (case-insensitive name). */
  byUser(user: string): DeviceRecord[] {
    return this.db.all<Row>(
      "SELECT * FROM devices WHERE user_name = ? COLLATE NOCASE ORDER BY hostname, id",
      user,
    ).map(toDevice);
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
  /** Records the connector version a device runs now (after an update). */
  setConnectorVersion(id: string, version: string): void {
    this.db.run("UPDATE devices SET connector_version = ? WHERE id = ?", version, id);
  }
  /** Records a heartbeat or any authenticated call. */
  touch(
    id: string,
    at: number,
    report?: {
      state: string;
      transport: string | null;
      clockSkewMs: number | null;
      connectorVersion?: string;
    },
  ): void {
    // The version a connector runs changes with updates: the heartbeat says which.
    if (report?.connectorVersion) this.setConnectorVersion(id, report.connectorVersion);
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
