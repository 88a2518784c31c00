/**
 * Base64 as keys, signatures and tokens are written here: standard (as
 * WireGuard writes keys) and unpadded base64url (JWK, enrolment and join
 * keys). At the bottom of the layers so every part encodes the same way.
 */

/** Encodes bytes as standard base64. */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** Encodes bytes as unpadded base64url. */
export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes standard or URL-safe base64, padded or not (throws on bad input). */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  let t = text.replace(/-/g, "+").replace(/_/g, "/");
  while (t.length % 4) t += "=";
  const s = atob(t);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
