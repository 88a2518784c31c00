/**
 * SHA-256 of files, cached by file identity (device, inode, size, mtime):
 * posture is looked at every few seconds, and an EDR binary or a checked file
 * must not be read in full each time when nothing changed.
 */
import { createHash } from "node:crypto";

const sha256Hex = (d: Uint8Array) => createHash("sha256").update(d).digest("hex");

/** Largest file hashed (256 MiB); a bigger one reports no hash, which fails a hash check. */
export const MAX_HASH_BYTES = 256 * 1024 * 1024;

const cache = new Map<string, { id: string; sha256: string }>();

/** The file's SHA-256 (hex), or undefined when it is too large. Throws when it cannot be read. */
export async function hashFileCached(path: string): Promise<string | undefined> {
  const st = await Deno.stat(path);
  if (!st.isFile || st.size > MAX_HASH_BYTES) return undefined;
  const id = `${st.dev}:${st.ino}:${st.size}:${st.mtime?.getTime()}`;
  const hit = cache.get(path);
  if (hit && hit.id === id) return hit.sha256;
  const sha256 = sha256Hex(await Deno.readFile(path));
  if (cache.size > 256) cache.clear();
  cache.set(path, { id, sha256 });
  return sha256;
}
