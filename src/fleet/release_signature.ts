/**
 * Ed25519 signatures of the release key (WebCrypto), over a domain string
 * and the signed text: manifests and rollback authorisations use their own
 * domain, so a signature made for one can never pass as the other.
 */

import { fromBase64, toBase64 } from "../base64.ts";

const enc = new TextEncoder();

/** Signs `domain + text` with the PKCS#8 private key (base64); returns the base64 signature. */
export async function signDomain(
  domain: string,
  text: string,
  privateKeyB64: string,
): Promise<string> {
  const priv = await crypto.subtle.importKey(
    "pkcs8",
    fromBase64(privateKeyB64),
    { name: "Ed25519" },
    false,
    ["sign"],
  );
  return toBase64(
    new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, priv, enc.encode(domain + text))),
  );
}

/** True when `signatureB64` signs `domain + text` under the raw public key (false on malformed input). */
export async function verifyDomain(
  domain: string,
  text: string,
  signatureB64: string,
  publicKeyB64: string,
): Promise<boolean> {
  try {
    const pub = await crypto.subtle.importKey(
      "raw",
      fromBase64(publicKeyB64),
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    return await crypto.subtle.verify(
      { name: "Ed25519" },
      pub,
      fromBase64(signatureB64),
      enc.encode(domain + text),
    );
  } catch {
    return false;
  }
}
