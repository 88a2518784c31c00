/**
 * Client certificates in a store directory: every PEM certificate found in
 * its files, with subject, issuer, expiry and whether the store also holds
 * the matching private key (node:crypto's X509Certificate.checkPrivateKey
 * compares the key pair; no ASN.1 of our own). A certificate whose key is
 * missing proves nothing: anyone can copy a public certificate.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import type { CertificateFact } from "../policy/posture.ts";

/** Where a certificate check looks when it names no store. */
export const DEFAULT_CERT_STORE = "/etc/portcullis/certs";

/** Most files read from one store, and the largest read. */
const MAX_FILES = 200, MAX_FILE_BYTES = 1024 * 1024;

/** PEM blocks of a text, by string search (linear in the text, whatever it holds). */
export function pemBlocks(text: string): { label: string; pem: string }[] {
  const out: { label: string; pem: string }[] = [];
  let at = 0;
  while (out.length < 1024) {
    const begin = text.indexOf("-----BEGIN ", at);
    if (begin === -1) break;
    const labelEnd = text.indexOf("-----", begin + 11);
    if (labelEnd === -1 || labelEnd - begin > 60) {
      at = begin + 11;
      continue;
    }
    const label = text.slice(begin + 11, labelEnd);
    const endMark = `-----END ${label}-----`;
    const end = text.indexOf(endMark, labelEnd);
    if (end === -1) break;
    out.push({ label, pem: text.slice(begin, end + endMark.length) });
    at = end + endMark.length;
  }
  return out;
}

/** node prints a DN one attribute per line; the evaluator compares "A=b, C=d". */
const dn = (s: string) => s.split("\n").map((x) => x.trim()).filter(Boolean).join(", ");

/** Reads the certificates and keys of the PEM files in `dir` (not its subdirectories). */
export async function collectCertificates(dir: string): Promise<CertificateFact[]> {
  const certs: X509Certificate[] = [];
  const keys: KeyObject[] = [];
  let files = 0;
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || ++files > MAX_FILES) continue;
    const path = `${dir}/${e.name}`;
    const st = await Deno.stat(path).catch(() => null);
    if (!st || st.size > MAX_FILE_BYTES) continue;
    const text = await Deno.readTextFile(path).catch(() => "");
    for (const { label, pem } of pemBlocks(text)) {
      try {
        if (label === "CERTIFICATE") certs.push(new X509Certificate(pem));
        else if (label.endsWith("PRIVATE KEY") && !label.startsWith("ENCRYPTED")) {
          keys.push(createPrivateKey(pem));
        }
      } catch {
        // not a certificate or key node can read: it does not count
      }
    }
  }
  return certs.slice(0, 256).map((c) => ({
    subject: dn(c.subject),
    issuer: dn(c.issuer),
    notAfter: Date.parse(c.validTo),
    hasKey: keys.some((k) => {
      try {
        return c.checkPrivateKey(k);
      } catch {
        return false; // another key type
      }
    }),
    store: dir,
  }));
}
