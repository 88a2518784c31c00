/**
 * Connector protection passwords (logout / disable / exit / uninstall): the
 * admin types each once as plain text; here it becomes an scrypt hash in the
 * app profile, so only the hash is stored and shipped in the policy bundle,
 * and the plain text is dropped at once. The connector verifies against the
 * hash (src/identity/password.ts), rate-limited. Changing one password keeps
 * the others and every other profile setting; the change is one policy
 * revision, audited as any policy update.
 */
import { InputError, NotFoundError } from "../errors.ts";
import { hashPassword, type ScryptParams } from "../identity/password.ts";
import { AppProfile, PROTECTED_ACTIONS, type ProtectedAction } from "../policy/types.ts";
import { defaultAppProfile, type PolicyService } from "./policy.ts";

/** Shortest protection password (a PIN-like 4 is the commercial product's floor too). */
export const MIN_PROTECTION_PASSWORD = 4;

/** Per action: a new plain-text password, null to remove it, absent to keep it. */
export type PasswordChanges = Partial<Record<ProtectedAction, string | null>>;

/** Which actions of each app profile are guarded (never the hashes' content). */
export interface ProtectionView {
  profile: string;
  guarded: Record<ProtectedAction, boolean>;
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
  }));
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
  const known = (all: AppProfile[]) => {
    const i = all.findIndex((p) => p.name === name);
    if (i < 0) {
      throw new NotFoundError("not_found", `No app profile named "${name.slice(0, 100)}"`);
    }
    return i;
  };
  known(profiles(policy));
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
  // Read, change and store with no await between, so a concurrent change to
  // the profiles (or another password) is not lost to this one.
  const all = profiles(policy);
  const i = known(all);
  const passwords = { ...all[i].passwords, ...hashed };
  for (const a of PROTECTED_ACTIONS) if (changes[a] === null) delete passwords[a];
  const next = all.map((p, j) => (j === i ? { ...p, passwords } : p));
  policy.replace("app-profiles", next, actor);
  return protectionView(policy).find((v) => v.profile === name)!;
}
