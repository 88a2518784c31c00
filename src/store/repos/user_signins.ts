import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str, strOrNull } from "./row.ts";

/** How a user signed in. */
export type SignInMethod = "oidc_code" | "oidc_device" | "saml" | "local";

/** A user's sign-in (the token itself is never stored, only its hash). */
export interface UserSignInRecord {
  tokenHash: string;
  userId: string;
  providerId: string | null;
  method: SignInMethod;
  /** The device it was used to enrol or is bound to; null until then. */
  deviceId: string | null;
  createdAt: number;
  expiresAt: number;
}

function toSignIn(r: Row): UserSignInRecord {
  return {
    tokenHash: str(r.token_hash),
    userId: str(r.user_id),
    providerId: strOrNull(r.provider_id),
    method: str(r.method) as SignInMethod,
    deviceId: strOrNull(r.device_id),
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
  };
}

/** Users' sign-ins on devices. */
export class UserSignInsRepo {
  constructor(private db: SqlDatabase) {}
  /** Inserts a sign-in. */
  insert(s: UserSignInRecord): void {
    this.db.run(
      "INSERT INTO user_signins (token_hash, user_id, provider_id, method, device_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      s.tokenHash,
      s.userId,
      s.providerId,
      s.method,
      s.deviceId,
      s.createdAt,
      s.expiresAt,
    );
  }
  /** One sign-in by token hash. */
  byHash(hash: string): UserSignInRecord | undefined {
    const r = this.db.get<Row>("SELECT * FROM user_signins WHERE token_hash = ?", hash);
    return r && toSignIn(r);
  }
  /** The newest sign-in bound to a device. */
  latestForDevice(deviceId: string): UserSignInRecord | undefined {
    const r = this.db.get<Row>(
      "SELECT * FROM user_signins WHERE device_id = ? ORDER BY created_at DESC, expires_at DESC LIMIT 1",
      deviceId,
    );
    return r && toSignIn(r);
  }
  /**
   * When the newest sign-in bound to each device was made, for a pass over
   * the whole fleet: one query, where `latestForDevice` for every device is
   * one per device (on PostgreSQL each a round trip on the edge's thread).
   */
  latestCreatedAtByDevice(): Map<string, number> {
    const m = new Map<string, number>();
    for (
      const r of this.db.all<Row>(
        "SELECT device_id, MAX(created_at) AS created_at FROM user_signins WHERE device_id IS NOT NULL GROUP BY device_id",
      )
    ) m.set(str(r.device_id), num(r.created_at));
    return m;
  }
  /** Binds a sign-in to a device; false when it is already bound elsewhere. */
  bind(hash: string, deviceId: string): boolean {
    return this.db.run(
      "UPDATE user_signins SET device_id = ? WHERE token_hash = ? AND (device_id IS NULL OR device_id = ?)",
      deviceId,
      hash,
      deviceId,
    ).changes === 1;
  }
  /** Every sign-in of a user. */
  forUser(userId: string): UserSignInRecord[] {
    return this.db.all<Row>(
      "SELECT * FROM user_signins WHERE user_id = ? ORDER BY created_at",
      userId,
    ).map(toSignIn);
  }
  /** Deletes every sign-in of a user; returns how many. */
  deleteForUser(userId: string): number {
    return Number(this.db.run("DELETE FROM user_signins WHERE user_id = ?", userId).changes);
  }
}
