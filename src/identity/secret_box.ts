/**
 * Secrets at rest: values the edge must read back in clear (TOTP seeds) are
 * stored sealed with AES-256-GCM under a key kept in its own file (mode
 * 0600) beside the database. A copied database, a backup or an exported
 * bundle then holds no usable seed without that file.
 *
 * Sealed text is `sb1:<base64(iv ‖ ciphertext ‖ tag)>`; anything without the
 * prefix is read as clear text (rows written before sealing existed).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { PortcullisError } from "../errors.ts";

const PREFIX = "sb1:";

/** Seals and opens short secrets. */
export interface SecretSealer {
  seal(clear: string): string;
  open(stored: string): string;
}

/** AES-256-GCM sealer over a 32-byte key. */
export class SecretBox implements SecretSealer {
  readonly #key: Uint8Array;
  /** `key` must be 32 random bytes. */
  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError("SecretBox key must be 32 bytes");
    this.#key = key;
  }
  /** Returns the sealed form of `clear`. */
  seal(clear: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", this.#key, iv);
    const ct = Buffer.concat([c.update(clear, "utf8"), c.final()]);
    return PREFIX + Buffer.concat([iv, ct, c.getAuthTag()]).toString("base64");
  }
  /** Opens a sealed value (clear text without the prefix passes through). */
  open(stored: string): string {
    if (!stored.startsWith(PREFIX)) return stored;
    const raw = Buffer.from(stored.slice(PREFIX.length), "base64");
    if (raw.length < 28) {
      throw new PortcullisError("secret_unreadable", "Cannot open a sealed secret: too short");
    }
    const d = createDecipheriv("aes-256-gcm", this.#key, raw.subarray(0, 12));
    d.setAuthTag(raw.subarray(raw.length - 16));
    try {
      return Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString(
        "utf8",
      );
    } catch {
      throw new PortcullisError(
        "secret_unreadable",
        "Cannot open a sealed secret: the key file does not match this database",
      );
    }
  }
}

/** Loads the 32-byte key at `path`, creating it (0600) on first use. */
export async function loadOrCreateSecretKey(path: string): Promise<Uint8Array> {
  try {
    const b = await Deno.readFile(path);
    if (b.length !== 32) {
      throw new PortcullisError(
        "secret_key_invalid",
        `Cannot use secret key "${path}": expected 32 bytes, got ${b.length}`,
      );
    }
    return b;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const key = randomBytes(32);
  await Deno.writeFile(path, key, { mode: 0o600, createNew: true });
  return new Uint8Array(key);
}
