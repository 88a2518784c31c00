/**
 * The fleet join key: 32 random bytes the operator holds (a file, 0600)
 * that let a new edge open the fleet's keys stored in the shared database.
 * Written as `pcfk1:` and base64url, so it survives being pasted.
 *
 * Wrapping is WebCrypto only: AES-256-GCM under a key derived with
 * HKDF-SHA-256 from the join key, a fresh salt per wrap, and the purpose
 * ("sealing_key") both in the HKDF info and as GCM's additional data, so a
 * wrapped value opens only with the right key and for the right purpose.
 * Key ids are HMAC-SHA-256 of a fixed label under the key: they name a key
 * without revealing it, so an edge can say "wrong join key" precisely.
 */
import { fromBase64, toBase64Url } from "../base64.ts";
import { InputError } from "../errors.ts";

const PREFIX = "pcfk1:";
const WRAPPED = "fw1:";
/** Bytes of a join key. */
export const JOIN_KEY_BYTES = 32;

const utf8 = (s: string) => new TextEncoder().encode(s);

function fromB64url(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return null;
  try {
    return fromBase64(s);
  } catch {
    return null;
  }
}

/** A new random join key. */
export function newJoinKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(JOIN_KEY_BYTES));
}

/** The text form of a join key (what the file holds). */
export function formatJoinKey(key: Uint8Array): string {
  return PREFIX + toBase64Url(key);
}

/** Reads a join key's text form; `source` names where it came from in the error. */
export function parseJoinKey(text: string, source: string): Uint8Array {
  const t = text.trim();
  const key = t.startsWith(PREFIX) ? fromB64url(t.slice(PREFIX.length)) : null;
  if (!key || key.length !== JOIN_KEY_BYTES) {
    throw new InputError(
      "fleet_key_invalid",
      `Cannot use fleet join key "${source}": expected "${PREFIX}" followed by ${JOIN_KEY_BYTES} bytes in base64url`,
    );
  }
  return key;
}

/** The join key in file `path`, or null when there is no such file. */
export async function readJoinKeyFile(path: string): Promise<Uint8Array | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new InputError(
      "fleet_key_unreadable",
      `Cannot read fleet join key "${path}": ${(e as Error).message}`,
    );
  }
  return parseJoinKey(text, path);
}

/** Writes a new join key to `path` (0600, never over an existing file) and returns it. */
export async function createJoinKeyFile(path: string): Promise<Uint8Array> {
  const key = newJoinKey();
  try {
    await Deno.writeTextFile(path, formatJoinKey(key) + "\n", { mode: 0o600, createNew: true });
  } catch (e) {
    throw new InputError(
      "fleet_key_unwritable",
      `Cannot write fleet join key "${path}": ${(e as Error).message}`,
    );
  }
  return key;
}

/** A short id of `key` (hex), the same for the same key and purpose. */
export async function keyId(key: Uint8Array, purpose: string): Promise<string> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", k, utf8(`portcullis key id ${purpose}`)),
  );
  return Array.from(mac.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function wrapKey(joinKey: Uint8Array, salt: Uint8Array, purpose: string): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey("raw", joinKey as BufferSource, "HKDF", false, [
    "deriveKey",
  ]);
  return crypto.subtle.deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: salt as BufferSource,
      info: utf8(`portcullis fleet wrap v1 ${purpose}`),
    },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** `clear` wrapped under `joinKey` for `purpose`: `fw1:` base64url(salt ‖ iv ‖ ciphertext ‖ tag). */
export async function wrap(
  joinKey: Uint8Array,
  clear: Uint8Array,
  purpose: string,
): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: utf8(purpose) },
      await wrapKey(joinKey, salt, purpose),
      clear as BufferSource,
    ),
  );
  const out = new Uint8Array(salt.length + iv.length + ct.length);
  out.set(salt, 0);
  out.set(iv, 16);
  out.set(ct, 28);
  return WRAPPED + toBase64Url(out);
}

/** Opens what `wrap` made; null when the key or purpose is wrong or the value was altered. */
export async function unwrap(
  joinKey: Uint8Array,
  wrapped: string,
  purpose: string,
): Promise<Uint8Array | null> {
  const raw = wrapped.startsWith(WRAPPED) ? fromB64url(wrapped.slice(WRAPPED.length)) : null;
  if (!raw || raw.length < 16 + 12 + 16) return null;
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt(
        {
          name: "AES-GCM",
          iv: raw.subarray(16, 28) as BufferSource,
          additionalData: utf8(purpose),
        },
        await wrapKey(joinKey, raw.subarray(0, 16), purpose),
        raw.subarray(28) as BufferSource,
      ),
    );
  } catch {
    return null;
  }
}
