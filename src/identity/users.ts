/**
 * Local users: creation with a scrypt password hash and a TOTP secret, and
 * the login check (password, then TOTP with replay protection).
 */
import type { Clock } from "../clock.ts";
import { InputError } from "../errors.ts";
import type { Store, UserRecord } from "../store/mod.ts";
import { hashPassword, type ScryptParams, verifyPassword } from "./password.ts";
import { randomId } from "./secrets.ts";
import { generateTotpSecret, otpauthUri, verifyTotp } from "./totp.ts";

/** Issuer shown in authenticator apps. */
export const TOTP_ISSUER = "Portcullis";

/** A created user together with the one-time TOTP enrolment data. */
export interface CreatedUser {
  user: UserRecord;
  totpSecret: string;
  otpauthUri: string;
}

/** Creates a user; refuses a duplicate name with 409 `user_exists`. */
export async function createUser(
  store: Store,
  clock: Clock,
  input: { username: string; password: string; role: "admin" | "user"; groups?: string[] },
  scrypt?: ScryptParams,
): Promise<CreatedUser> {
  if (store.users.byUsername(input.username)) {
    throw new InputError("user_exists", `Cannot create user "${input.username}": name taken`, 409);
  }
  const passwordHash = await hashPassword(input.password, scrypt);
  const totpSecret = generateTotpSecret();
  const user: UserRecord = {
    id: randomId("usr"),
    username: input.username,
    passwordHash,
    totpSecret,
    totpLastStep: 0,
    role: input.role,
    groups: input.groups ?? [],
    createdAt: clock.now(),
    providerId: null,
    email: null,
    idpGroups: [],
    disabled: false,
    lastSignInAt: null,
  };
  // Re-check inside the transaction: the hash above awaited, another request may have won.
  store.transaction(() => {
    if (store.users.byUsername(input.username)) {
      throw new InputError(
        "user_exists",
        `Cannot create user "${input.username}": name taken`,
        409,
      );
    }
    store.users.insert(user);
  });
  return { user, totpSecret, otpauthUri: otpauthUri(TOTP_ISSUER, user.username, totpSecret) };
}

/** A dummy hash so unknown users cost the same time as known ones. */
let dummyHash: Promise<string> | undefined;

/**
 * Checks username, password and TOTP code. Returns the user, or null for any
 * failure (the caller answers with one generic message so names cannot be probed).
 */
export async function authenticate(
  store: Store,
  clock: Clock,
  username: string,
  password: string,
  totp: string,
): Promise<UserRecord | null> {
  const user = store.users.byUsername(username);
  if (!user) {
    dummyHash ??= hashPassword("portcullis-dummy");
    await verifyPassword(password, await dummyHash);
    return null;
  }
  if (!(await verifyPassword(password, user.passwordHash))) return null;
  if (user.disabled) return null;
  const fresh = store.users.byId(user.id);
  if (!fresh) return null;
  const step = verifyTotp(fresh.totpSecret, totp, clock.now(), fresh.totpLastStep);
  if (step === null) return null;
  // Claim atomically: a concurrent login with the same code loses.
  if (!store.users.claimTotpStep(user.id, step)) return null;
  return { ...fresh, totpLastStep: step };
}
