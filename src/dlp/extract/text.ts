/**
 * Plain text: bytes become a string when they look like text — a UTF-8 or
 * UTF-16 byte-order mark, or valid UTF-8 (Latin-1 as the fallback) with
 * almost no control characters. Anything else is binary and is not scanned
 * as text, so an image's bytes cannot produce "card numbers".
 */

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Lax = new TextDecoder("utf-8");
const latin1 = new TextDecoder("latin1");

/** Share of control characters above which bytes count as binary. */
const MAX_CONTROL_SHARE = 0.02;

function controlShare(s: string): number {
  const n = Math.min(s.length, 64 * 1024);
  if (n === 0) return 0;
  let bad = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if ((c < 32 && c !== 9 && c !== 10 && c !== 13 && c !== 12) || c === 0xfffd) bad++;
  }
  return bad / n;
}

/** Decodes `bytes` as text, or returns null when they look binary. */
export function decodeText(bytes: Uint8Array): string | null {
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) {
    return new TextDecoder("utf-16le").decode(bytes.subarray(2));
  }
  if (bytes.length >= 2 && bytes[0] === 0xfe && bytes[1] === 0xff) {
    return new TextDecoder("utf-16be").decode(bytes.subarray(2));
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    // Not valid UTF-8: a cut-off last character is still UTF-8; otherwise Latin-1.
    const lax = utf8Lax.decode(bytes);
    text = controlShare(lax) <= MAX_CONTROL_SHARE ? lax : latin1.decode(bytes);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return controlShare(text) <= MAX_CONTROL_SHARE ? text : null;
}
