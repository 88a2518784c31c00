/**
 * The edge CA pin: an enrolment key carries the SHA-256 of the edge CA
 * certificate's DER, and the connector trusts exactly the one certificate
 * with that hash. Pure helpers over PEM text and DER bytes.
 */
import { InputError } from "../errors.ts";
import { fromBase64, sha256Hex, toBase64 } from "./identity.ts";

/** Decodes the first certificate of a PEM text to DER bytes. */
export function pemToDer(pem: string): Uint8Array {
  const m = pem.match(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/);
  if (!m) {
    throw new InputError("bad_ca_pem", "Cannot read the edge CA: no PEM certificate found");
  }
  return fromBase64(m[1].replace(/\s+/g, ""));
}

/** Encodes DER certificate bytes as one PEM block with 64-column lines. */
export function derToPem(der: Uint8Array): string {
  const b64 = toBase64(der);
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

/**
 * Returns the DER of the only certificate in a PEM text. A bootstrap answer
 * travels over plain HTTP, so anything beyond the one pinned certificate (a
 * second CA appended by a middlebox, a key, other PEM blocks) is refused
 * rather than trusted.
 */
export function singleCertDer(pem: string): Uint8Array {
  const blocks = pem.match(/-----BEGIN [A-Z0-9 ]+-----/g) ?? [];
  const certs = blocks.filter((b) => b === "-----BEGIN CERTIFICATE-----").length;
  if (blocks.length !== 1 || certs !== 1) {
    throw new InputError(
      "bad_ca_pem",
      `Cannot use the edge CA: the PEM must hold exactly one certificate, found ${certs} ` +
        `certificate(s) in ${blocks.length} PEM block(s)`,
    );
  }
  return pemToDer(pem);
}

/** SHA-256 hex of a PEM certificate's DER encoding (the pin in an enrolment key). */
export function caFingerprint(pem: string): Promise<string> {
  return sha256Hex(pemToDer(pem));
}

/** Constant-time comparison of two strings of equal length. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
