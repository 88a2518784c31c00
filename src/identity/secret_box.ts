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

/**
 * A sealer whose key arrives after the store is open: an edge joining a
 * fleet unwraps the fleet's key from that very store. Sealing or opening
 * before `setKey` is a programming error and throws.
 */
export class DeferredSealer implements SecretSealer {
  #box: SecretBox | null = null;
  /** Sets the key (32 bytes), once. */
  setKey(key: Uint8Array): void {
    if (this.#box) throw new Error("The sealing key is already set");
    this.#box = new SecretBox(key);
  }
  /** Whether the key is set. */
  get ready(): boolean {
    return this.#box !== null;
  }
  seal(clear: string): string {
    return this.#need().seal(clear);
  }
  open(stored: string): string {
    return this.#need().open(stored);
  }
  #need(): SecretBox {
    if (!this.#box) throw new Error("The sealing key is not loaded yet");
    return this.#box;
  }
}

/** The 32-byte key at `path`, or null when there is no such file. */
export async function readSecretKey(path: string): Promise<Uint8Array | null> {
  let b: Uint8Array;
  try {
    b = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  if (b.length !== 32) {
    throw new PortcullisError(
      "secret_key_invalid",
      `Cannot use secret key "${path}": expected 32 bytes, got ${b.length}`,
    );
  }
  return b;
}

/** Writes `key` to `path` (0600), never over an existing file. */
export async function writeSecretKey(path: string, key: Uint8Array): Promise<void> {
  await Deno.writeFile(path, key, { mode: 0o600, createNew: true });
}

/** Loads the 32-byte key at `path`, creating it (0600) on first use. */
export async function loadOrCreateSecretKey(path: string): Promise<Uint8Array> {
  const existing = await readSecretKey(path);
  if (existing) return existing;
  const key = new Uint8Array(randomBytes(32));
  await writeSecretKey(path, key);
  return key;
}
