/**
 * Connector protection settings of an app profile. Passwords (logout /
 * disable / exit / uninstall): the
 * admin types each once as plain text; here it becomes an scrypt hash in the
 * app profile, so only the hash is stored and shipped in the policy bundle,
 * and the plain text is dropped at once. The connector verifies against the
 * hash (src/identity/password.ts), rate-limited. Changing one password keeps
 * the others and every other profile setting; the change is one policy
 * revision, audited as any policy update. Also the sign-in clock tolerance,
 * which decides both what the edge accepts and when the connector warns.
 */
import { InputError, NotFoundError } from "../errors.ts";
import { hashPassword, type ScryptParams } from "../identity/password.ts";
import { AppProfile, PROTECTED_ACTIONS, type ProtectedAction } from "../policy/types.ts";
import { defaultAppProfile, type PolicyService } from "./policy.ts";

/** Shortest protection password (a PIN-like 4 is the commercial product's floor too). */
export const MIN_PROTECTION_PASSWORD = 4;

/** Per action: a new plain-text password, null to remove it, absent to keep it. */
export type PasswordChanges = Partial<Record<ProtectedAction, string | null>>;

/** Which actions of each app profile are guarded (never the hashes' content), and its clock tolerance. */
export interface ProtectionView {
  profile: string;
  guarded: Record<ProtectedAction, boolean>;
  clockSkewToleranceSec: number;
  /** Re-authentication every N hours on devices of this profile. */
  signInLifetimeHours: number;
}

function profiles(policy: PolicyService): AppProfile[] {
  const stored = policy.list("app-profiles").map((p) => AppProfile.parse(p));
  // No profile stored: the embedded default is the one in force, so it is the one shown.
  return stored.length ? stored : [defaultAppProfile()];
}

/** Every app profile with the actions it guards. */
export function protectionView(policy: PolicyService): ProtectionView[] {
  return profiles(policy).map((p) => ({
    profile: p.name,
    guarded: Object.fromEntries(
      PROTECTED_ACTIONS.map((a) => [a, p.passwords[a] !== undefined]),
    ) as Record<ProtectedAction, boolean>,
    clockSkewToleranceSec: p.clockSkewToleranceSec,
    signInLifetimeHours: p.signInLifetimeHours,
  }));
}

/** The index of profile `name` in `all`; a 404 naming it when there is none. */
function indexOf(all: AppProfile[], name: string): number {
  const i = all.findIndex((p) => p.name === name);
  if (i < 0) {
    throw new NotFoundError("not_found", `No app profile named "${name.slice(0, 100)}"`);
  }
  return i;
}

/**
 * Reads the profiles, changes profile `name` and stores them (one revision),
 * with no await in between, so a concurrent change is never lost to this one.
 */
function updateProfile(
  policy: PolicyService,
  name: string,
  change: (p: AppProfile) => AppProfile,
  actor: string,
): void {
  const all = profiles(policy);
  const i = indexOf(all, name);
  policy.replace("app-profiles", all.map((p, j) => (j === i ? change(p) : p)), actor);
}

/**
 * Hashes the given passwords into app profile `name` and stores the profiles
 * (one revision). Refuses an unknown profile or a too short/long password
 * before anything is hashed or written.
 */
export async function setProtectionPasswords(
  policy: PolicyService,
  name: string,
  changes: PasswordChanges,
  actor: string,
  scrypt?: ScryptParams,
): Promise<ProtectionView> {
  indexOf(profiles(policy), name);
  for (const a of PROTECTED_ACTIONS) {
    const v = changes[a];
    if (typeof v === "string" && (v.length < MIN_PROTECTION_PASSWORD || v.length > 1024)) {
      throw new InputError(
        "invalid_password",
        `The ${a} password must be ${MIN_PROTECTION_PASSWORD} to 1024 characters long`,
      );
    }
  }
  const hashed: Partial<Record<ProtectedAction, string>> = {};
  for (const a of PROTECTED_ACTIONS) {
    const v = changes[a];
    if (typeof v === "string") hashed[a] = await hashPassword(v, scrypt);
  }
  updateProfile(policy, name, (p) => {
    const passwords = { ...p.passwords, ...hashed };
    for (const a of PROTECTED_ACTIONS) if (changes[a] === null) delete passwords[a];
    return { ...p, passwords };
  }, actor);
  return protectionView(policy).find((v) => v.profile === name)!;
}

/**
 * Sets the sign-in clock tolerance (s) of app profile `name`: what the edge
 * allows when it validates tokens and assertions, and past which the
 * connector tells its user the clock is wrong. The schema bounds it (0–1800).
 */
export function setClockSkewTolerance(
  policy: PolicyService,
  name: string,
  toleranceSec: number,
  actor: string,
): ProtectionView {
  updateProfile(policy, name, (p) => ({ ...p, clockSkewToleranceSec: toleranceSec }), actor);
  return protectionView(policy).find((v) => v.profile === name)!;
}

/**
 * Sets how long a user's sign-in lasts on devices of app profile `name`
 * (re-authentication every N hours), read by the edge whenever a device
 * calls, so it applies to sign-ins made before. The schema bounds it (1–720).
 */
export function setSignInLifetime(
  policy: PolicyService,
  name: string,
  hours: number,
  actor: string,
): ProtectionView {
  updateProfile(policy, name, (p) => ({ ...p, signInLifetimeHours: hours }), actor);
  return protectionView(policy).find((v) => v.profile === name)!;
}
