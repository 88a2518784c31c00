/**
 * The SharePoint private-key JSON file of the connector guide (its step 5):
 * `{"private_key": "<PEM>", "public_cert": "<PEM>"}`, with "\n" for line
 * breaks. The key signs the client assertions MSAL sends instead of a
 * secret (certificate credentials), so it must be an unencrypted RSA key
 * and the certificate must be the one uploaded to the app registration:
 * the pair has to match, or Entra would refuse every assertion.
 *
 * Errors name the problem, never the key or certificate text.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { InputError } from "../errors.ts";
import { KEY_FILE_LIMIT } from "./fields.ts";

/** A validated key pair. */
export interface SharePointKey {
  /** The private key as PKCS#8 PEM (sealed at rest). */
  privateKeyPem: string;
  /** The certificate as PEM (public). */
  certificatePem: string;
  /** Hex SHA-256 of the certificate's DER, as MSAL's `thumbprintSha256` wants it. */
  thumbprintSha256: string;
  /** The certificate's subject, for the console. */
  subject: string;
  /** End of the certificate's validity (ms). */
  notAfter: number;
}

const fail = (why: string): never => {
  throw new InputError(
    "sharepoint_key_invalid",
    `Cannot use the SharePoint private-key file: ${why}`,
  );
};

/**
 * The first PEM block labelled one of `labels` in `text`, re-wrapped at 64
 * characters. Text around it (openssl's "Bag Attributes") is ignored.
 * String search, not a regular expression: the input is an upload.
 */
function pemBlock(text: string, labels: readonly string[]): string | null {
  for (const label of labels) {
    const begin = `-----BEGIN ${label}-----`;
    const end = `-----END ${label}-----`;
    const i = text.indexOf(begin);
    if (i < 0) continue;
    const j = text.indexOf(end, i + begin.length);
    if (j < 0) continue;
    const body = text.slice(i + begin.length, j).replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) continue;
    const lines = body.match(/.{1,64}/g) ?? [];
    return `${begin}\n${lines.join("\n")}\n${end}\n`;
  }
  return null;
}

function loadKey(text: string): KeyObject {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text)) {
    fail(
      "private_key is encrypted; export it without a passphrase (openssl pkcs12 -in CERT.pfx -nocerts -nodes)",
    );
  }
  const pem = pemBlock(text, ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]);
  if (!pem) fail("private_key is not a PEM private key (-----BEGIN PRIVATE KEY-----)");
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem!, format: "pem" });
  } catch {
    return fail("private_key is not a readable PEM private key");
  }
  if (key.asymmetricKeyType !== "rsa") {
    fail(
      `private_key is a ${
        key.asymmetricKeyType ?? "unknown"
      } key; Entra certificate credentials need RSA`,
    );
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 2048) fail(`private_key is a ${bits}-bit RSA key; at least 2048 bits are needed`);
  return key;
}

function loadCert(text: string): X509Certificate {
  const pem = pemBlock(text, ["CERTIFICATE"]);
  if (!pem) fail("public_cert is not a PEM certificate (-----BEGIN CERTIFICATE-----)");
  try {
    return new X509Certificate(pem!);
  } catch {
    return fail("public_cert is not a readable X.509 certificate");
  }
}

/** Parses and checks the uploaded file's text. */
export function parseSharePointKey(text: string): SharePointKey {
  if (new TextEncoder().encode(text).length > KEY_FILE_LIMIT) {
    fail(`it is larger than ${KEY_FILE_LIMIT} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch {
    fail("it is not valid JSON");
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    fail('expected a JSON object with "private_key" and "public_cert"');
  }
  const obj = json as Record<string, unknown>;
  const extra = Object.keys(obj).filter((k) => k !== "private_key" && k !== "public_cert");
  if (extra.length) {
    fail(
      `unknown field ${
        extra.slice(0, 3).map((k) => JSON.stringify(k.slice(0, 40))).join(", ")
      }; expected only "private_key" and "public_cert"`,
    );
  }
  if (typeof obj.private_key !== "string" || obj.private_key === "") {
    fail('"private_key" is missing or not a string');
  }
  if (typeof obj.public_cert !== "string" || obj.public_cert === "") {
    fail('"public_cert" is missing or not a string');
  }
  const key = loadKey(obj.private_key as string);
  const cert = loadCert(obj.public_cert as string);
  if (!cert.checkPrivateKey(key)) {
    fail(
      `the private key does not belong to the certificate (${cert.subject.replace(/\n/g, ", ")}, ` +
        `SHA-256 thumbprint ${cert.fingerprint256.replace(/:/g, "")})`,
    );
  }
  return {
    privateKeyPem: key.export({ format: "pem", type: "pkcs8" }) as string,
    certificatePem: cert.toString(),
    thumbprintSha256: cert.fingerprint256.replace(/:/g, "").toLowerCase(),
    subject: cert.subject.replace(/\n/g, ", "),
    notAfter: Date.parse(cert.validTo),
  };
}

/** What may be shown of a stored key: never the key. */
export function describeCertificate(k: Pick<SharePointKey, "subject" | "thumbprintSha256">) {
  return { subject: k.subject, thumbprintSha256: k.thumbprintSha256 };
}
