import type { SqlDatabase } from "../sql.ts";
import { num, type Row, str } from "./row.ts";

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
  /** The identity provider the user signs in through; null for a local user. */
  providerId: string | null;
  email: string | null;
  /** Groups the provider gave at the last sign-in (already mapped). */
  idpGroups: string[];
  /** A disabled user cannot sign in and has no tunnel. */
  disabled: boolean;
  lastSignInAt: number | null;
}

/** What `insert` needs: the identity fields default to a local, enabled user. */
export type NewUser =
  & Omit<UserRecord, "providerId" | "email" | "idpGroups" | "disabled" | "lastSignInAt">
  & Partial<UserRecord>;

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
    providerId: r.provider_id === null ? null : str(r.provider_id),
    email: r.email === null ? null : str(r.email),
    idpGroups: JSON.parse(str(r.idp_groups)),
    disabled: num(r.disabled) === 1,
    lastSignInAt: r.last_sign_in_at === null ? null : num(r.last_sign_in_at),
  };
}

/** Users with password hashes and TOTP secrets. */
export class UsersRepo {
  /** `sealer` protects TOTP seeds at rest (see src/identity/secret_box.ts). */
  constructor(private db: SqlDatabase, private sealer: Sealer = CLEAR) {}
  /** Inserts a user. */
  insert(u: NewUser): void {
    this.db.run(
      "INSERT INTO users (id, username, password_hash, totp_secret, totp_last_step, role, groups, created_at, provider_id, email, idp_groups, disabled, last_sign_in_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      u.id,
      u.username,
      u.passwordHash,
      this.sealer.seal(u.totpSecret),
      u.totpLastStep,
      u.role,
      JSON.stringify(u.groups),
      u.createdAt,
      u.providerId ?? null,
      u.email ?? null,
      JSON.stringify(u.idpGroups ?? []),
      u.disabled ? 1 : 0,
      u.lastSignInAt ?? null,
    );
  }
  /** Records a provider sign-in: the provider, address and groups it gave. */
  recordSignIn(
    id: string,
    s: { providerId: string | null; email: string | null; idpGroups: string[]; at: number },
  ): void {
    this.db.run(
      "UPDATE users SET provider_id = ?, email = ?, idp_groups = ?, last_sign_in_at = ? WHERE id = ?",
      s.providerId,
      s.email,
      JSON.stringify(s.idpGroups),
      s.at,
      id,
    );
  }
  /** Disables or enables a user; returns whether it exists. */
  setDisabled(id: string, disabled: boolean): boolean {
    return this.db.run("UPDATE users SET disabled = ? WHERE id = ?", disabled ? 1 : 0, id)
      .changes === 1;
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
