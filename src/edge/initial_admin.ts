/**
 * The first administrator. On a fresh edge there is nobody to log in as, so
 * the first start creates user "admin" with a random password and TOTP
 * secret and writes them once to `<dataDir>/initial-admin.txt` (mode 0600).
 * The log says where the file is, never what is in it. Of edges starting
 * together on one shared database, the one that stores the user writes it.
 */
import type { Clock } from "../clock.ts";
import type { ScryptParams } from "../identity/password.ts";
import { randomToken } from "../identity/secrets.ts";
import { createUser } from "../identity/users.ts";
import { logger } from "../log.ts";
import type { Store } from "../store/mod.ts";

const log = logger("edge");

/** Creates the first admin when there are no users; returns the file path, or null. */
export async function ensureInitialAdmin(
  store: Store,
  clock: Clock,
  dataDir: string,
  scrypt?: ScryptParams,
): Promise<string | null> {
  if (store.users.count() > 0) return null;
  const password = randomToken(18);
  let created;
  try {
    created = await createUser(store, clock, {
      username: "admin",
      password,
      role: "admin",
    }, scrypt);
  } catch (err) {
    // Edges starting together on one empty database: another one was first,
    // and its data directory holds the file.
    if (store.users.byUsername("admin")) {
      log.info("initial admin created by another edge of the fleet");
      return null;
    }
    throw err;
  }
  const path = `${dataDir}/initial-admin.txt`;
  const text = [
    "Portcullis initial administrator. Log in, create your own admin, then delete this file.",
    `username: ${created.user.username}`,
    `password: ${password}`,
    `totp secret: ${created.totpSecret}`,
    `totp uri: ${created.otpauthUri}`,
    "",
  ].join("\n");
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, text, { mode: 0o600 });
  await Deno.chmod(tmp, 0o600);
  await Deno.rename(tmp, path);
  log.info(`initial admin credentials written to ${path}`, { path });
  return path;
}
