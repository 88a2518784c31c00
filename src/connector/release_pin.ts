/**
 * The release public key a connector trusts, pinned in its data directory
 * at install (the first run given `--release-key`): updates are verified
 * against this copy only. The edge never supplies it, so an edge that is
 * taken over cannot bring its own key; a later run naming another key is
 * refused rather than silently re-pinned (remove the pinned file to change
 * keys on purpose).
 */
import { InputError } from "../errors.ts";
import { keyIdOf, parsePublicKeyFile, publicKeyFileText } from "../fleet/release.ts";

/** Where the pinned key lives. */
export function pinnedKeyPath(dataDir: string): string {
  return `${dataDir}/release-key.pub`;
}

/** The pinned key (base64) and its id, or null when updates have no key. */
export interface PinnedReleaseKey {
  publicKey: string;
  keyId: string;
  path: string;
}

/**
 * Pins `configured` (a .pub file) when nothing is pinned yet, and returns
 * the pinned key; null when neither exists. InputError when `configured`
 * names another key than the pinned one, or a file that is not a key.
 */
export async function pinReleaseKey(
  dataDir: string,
  configured: string | undefined,
): Promise<PinnedReleaseKey | null> {
  const path = pinnedKeyPath(dataDir);
  let pinned: string | null = null;
  try {
    pinned = parsePublicKeyFile(await Deno.readTextFile(path), path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  let given: string | null = null;
  if (configured) {
    let text: string;
    try {
      text = await Deno.readTextFile(configured);
    } catch (e) {
      throw new InputError(
        "invalid_release_key",
        `Cannot read release key "${configured}": ${(e as Error).message}`,
      );
    }
    given = parsePublicKeyFile(text, configured);
  }
  if (pinned && given && pinned !== given) {
    throw new InputError(
      "release_key_mismatch",
      `Cannot use release key "${configured}" (${keyIdOf(given)}): this connector pinned key ${
        keyIdOf(pinned)
      } in ${path}; remove that file to pin another key`,
    );
  }
  if (!pinned && given) {
    await Deno.writeTextFile(path, publicKeyFileText(given), { mode: 0o600 });
    pinned = given;
  }
  return pinned ? { publicKey: pinned, keyId: keyIdOf(pinned), path } : null;
}
