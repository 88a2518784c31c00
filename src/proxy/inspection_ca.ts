/**
 * The SSL inspection CA: its own P-256 key and certificate, separate from
 * the control-plane CA (a device pins the control CA; trusting the
 * inspection CA is a separate, consented step), the private key sealed at
 * rest with the edge's SecretBox. Leaf certificates are issued per server
 * name on the fly with @peculiar/x509 (one P-256 key for all leaves of a
 * process, generated at start: a leaf costs one signature, not a key
 * generation) and cached, so a page of fifty requests to one host costs
 * one issuance.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createHash } from "node:crypto";
import type { SecretSealer } from "../identity/secret_box.ts";
import { logger } from "../log.ts";

x509.cryptoProvider.set(crypto);

const log = logger("proxy.ca");

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** Leaf certificates live 7 days (renewed from the cache after 6). */
export const LEAF_DAYS = 7;

/** A certificate and its key, PEM. */
export interface CertKeyPem {
  cert: string;
  key: string;
}

function pemOf(label: string, der: ArrayBuffer): string {
  const b64 = btoa(String.fromCharCode(...new Uint8Array(der)));
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;
}

function derOf(pem: string): Uint8Array<ArrayBuffer> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function serial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] &= 0x7f;
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/** A new self-signed inspection CA (P-256, ten years), PEM. */
export async function newInspectionCaPem(
  name: string,
): Promise<{ certPem: string; keyPem: string }> {
  const keys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `O=Portcullis, CN=${name} ${crypto.randomUUID().slice(0, 8)}`,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 10 * 365 * 86400_000),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certPem: cert.toString("pem") + "\n",
    keyPem: pemOf("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", keys.privateKey)),
  };
}

const CRT_FILE = "inspection-ca.crt";
const KEY_FILE = "inspection-ca.key.sealed";

/** SHA-256 (hex) of a PEM certificate's DER: how bundles and messages name a CA. */
export function certSha256(certPem: string): string {
  return createHash("sha256").update(derOf(certPem)).digest("hex");
}

/** What `<dir>` holds: the certificate, and its key if the key file opens with `sealer`. */
export interface InspectionCaFiles {
  certPem: string;
  /** Null when the key file is missing or does not open with the sealer. */
  keyPem: string | null;
}

/** Reads the CA files in `dir`; null when there is no certificate. */
export async function readInspectionCaFiles(
  dir: string,
  sealer: SecretSealer,
): Promise<InspectionCaFiles | null> {
  let certPem: string;
  try {
    certPem = await Deno.readTextFile(`${dir}/${CRT_FILE}`);
  } catch {
    return null;
  }
  if (!certPem.includes("-----BEGIN CERTIFICATE-----")) return null;
  let keyPem: string | null = null;
  try {
    keyPem = sealer.open((await Deno.readTextFile(`${dir}/${KEY_FILE}`)).trim());
  } catch {
    keyPem = null;
  }
  return { certPem, keyPem };
}

/** Writes the CA into `dir` (0700): the key sealed (0600) first, then the certificate. */
export async function writeInspectionCaFiles(
  dir: string,
  sealer: SecretSealer,
  pair: { certPem: string; keyPem: string },
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const keyPath = `${dir}/${KEY_FILE}`, crtPath = `${dir}/${CRT_FILE}`;
  await Deno.writeTextFile(`${keyPath}.tmp`, sealer.seal(pair.keyPem) + "\n", { mode: 0o600 });
  await Deno.rename(`${keyPath}.tmp`, keyPath);
  await Deno.writeTextFile(`${crtPath}.tmp`, pair.certPem);
  await Deno.rename(`${crtPath}.tmp`, crtPath);
}

/** The inspection CA with its leaf cache. */
export class InspectionCa {
  readonly certPem: string;
  /** SHA-256 (hex) of the CA certificate's DER. */
  readonly sha256: string;
  readonly #caCert: x509.X509Certificate;
  readonly #caKey: CryptoKey;
  readonly #leafPublic: x509.PublicKey;
  readonly #leafKeyPem: string;
  /** The extensions every leaf has (only the name differs), built once. */
  readonly #fixed: x509.Extension[];
  readonly #cache = new Map<string, { pem: CertKeyPem; renewAt: number }>();
  readonly #pending = new Map<string, Promise<CertKeyPem>>();
  /** Leaves issued (not from the cache). */
  issued = 0;

  private constructor(
    cert: x509.X509Certificate,
    key: CryptoKey,
    leafPublic: x509.PublicKey,
    leafPem: string,
    aki: x509.AuthorityKeyIdentifierExtension,
  ) {
    this.#caCert = cert;
    this.#caKey = key;
    this.#leafPublic = leafPublic;
    this.#leafKeyPem = leafPem;
    this.#fixed = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      aki,
    ];
    this.certPem = cert.toString("pem") + "\n";
    this.sha256 = createHash("sha256").update(new Uint8Array(cert.rawData)).digest("hex");
  }

  /**
   * Loads the CA from `dir` (inspection-ca.crt, inspection-ca.key.sealed),
   * creating it on first use; the key file holds the PKCS#8 PEM sealed.
   */
  static async loadOrCreate(
    dir: string,
    sealer: SecretSealer,
    name = "Portcullis Inspection CA",
  ): Promise<InspectionCa> {
    const local = await readInspectionCaFiles(dir, sealer);
    let pair = local?.keyPem ? { certPem: local.certPem, keyPem: local.keyPem } : null;
    if (!pair) {
      pair = await newInspectionCaPem(name);
      await writeInspectionCaFiles(dir, sealer, pair);
      log.info("Created the SSL inspection CA", { path: `${dir}/${CRT_FILE}` });
    }
    return await InspectionCa.fromPem(pair.certPem, pair.keyPem);
  }

  /** A CA that lives in memory only (tests, the benchmark). */
  static async ephemeral(name = "Portcullis Inspection CA"): Promise<InspectionCa> {
    const { certPem, keyPem } = await newInspectionCaPem(name);
    return await InspectionCa.fromPem(certPem, keyPem);
  }

  static async fromPem(certPem: string, keyPem: string): Promise<InspectionCa> {
    const cert = new x509.X509Certificate(certPem);
    const key = await crypto.subtle.importKey("pkcs8", derOf(keyPem), ALG, false, ["sign"]);
    const leaf = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as CryptoKeyPair;
    const leafPem = pemOf("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", leaf.privateKey));
    // Encoded once, not per leaf: the leaves' public key and the CA's key identifier.
    return new InspectionCa(
      cert,
      key,
      await x509.PublicKey.create(leaf.publicKey),
      leafPem,
      await x509.AuthorityKeyIdentifierExtension.create(cert),
    );
  }

  /** The leaf for `host` (cached; concurrent asks share one issuance). */
  leaf(host: string): Promise<CertKeyPem> {
    const now = Date.now();
    const hit = this.#cache.get(host);
    if (hit && hit.renewAt > now) {
      // LRU: most recent last.
      this.#cache.delete(host);
      this.#cache.set(host, hit);
      return Promise.resolve(hit.pem);
    }
    const pending = this.#pending.get(host);
    if (pending) return pending;
    const p = this.issue(host).then((pem) => {
      this.#cache.set(host, { pem, renewAt: now + (LEAF_DAYS - 1) * 86400_000 });
      if (this.#cache.size > 1000) this.#cache.delete(this.#cache.keys().next().value!);
      return pem;
    }).finally(() => this.#pending.delete(host));
    this.#pending.set(host, p);
    return p;
  }

  /** Issues a fresh leaf for `host` (no cache): what the benchmark times. */
  async issue(host: string): Promise<CertKeyPem> {
    const now = Date.now();
    const san = IPV4.test(host)
      ? { type: "ip" as const, value: host }
      : { type: "dns" as const, value: host };
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${host.replace(/[,+="<>#;\\]/g, "")}`,
      issuer: this.#caCert.subject,
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + LEAF_DAYS * 86400_000),
      signingAlgorithm: ALG,
      publicKey: this.#leafPublic,
      signingKey: this.#caKey,
      extensions: [
        ...this.#fixed.slice(0, 3),
        new x509.SubjectAlternativeNameExtension([san]),
        this.#fixed[3],
      ],
    });
    this.issued++;
    return { cert: cert.toString("pem") + "\n" + this.certPem, key: this.#leafKeyPem };
  }
}
