/**
 * The edge's own certificate authority, made at first start with the
 * `openssl` command-line tool, and the server certificate for the API and
 * TLS tunnel listeners signed by it. The enrolment key carries the SHA-256 of
 * the CA certificate (DER), so a connector pins this CA and notices any
 * middlebox that re-signs the traffic.
 *
 * Keys are written to a 0700 directory and chmod'ed to 0600 before they are
 * moved into place, so no other user ever sees them readable. The server
 * certificate is re-issued when the configured names change.
 */
import { PortcullisError } from "../errors.ts";
import { sha256Hex } from "../identity/secrets.ts";

/** Paths and fingerprints of the CA and the server certificate. */
export interface CaInfo {
  caCertPath: string;
  caKeyPath: string;
  serverCertPath: string;
  serverKeyPath: string;
  caCertPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  /** SHA-256 (hex) of the CA certificate in DER form. */
  caSha256: string;
  /** Subject alternative names in the server certificate. */
  sans: string[];
}

/** Names the server certificate must carry besides localhost and 127.0.0.1. */
export interface CaNames {
  hostnames?: string[];
  ips?: string[];
}

async function openssl(args: string[], cwd: string): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
      .output();
  } catch (err) {
    throw new PortcullisError(
      "openssl_failed",
      `Cannot run "openssl ${args[0]}": ${(err as Error).message}`,
    );
  }
  if (!out.success) {
    const msg = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-2).join(" ");
    throw new PortcullisError("openssl_failed", `Cannot run "openssl ${args[0]}": ${msg}`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** SHA-256 hex of the DER inside the first PEM certificate of `pem`. */
export function certSha256(pem: string): string {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new PortcullisError("bad_certificate", "Cannot read certificate: no PEM block");
  const der = Uint8Array.from(atob(m[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  return sha256Hex(der);
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4 = /^(\d{1,3})(\.\d{1,3}){3}$/;
const IPV6 = /^[0-9a-fA-F:]+$/;

/** The SAN list for `names`: validated, de-duplicated, with localhost and 127.0.0.1. */
export function serverSans(names: CaNames): string[] {
  const sans = new Set<string>(["DNS:localhost", "IP:127.0.0.1"]);
  for (const h of names.hostnames ?? []) {
    if (!HOSTNAME.test(h)) {
      throw new PortcullisError("bad_hostname", `Cannot put hostname "${h}" in a certificate`);
    }
    sans.add(`DNS:${h.toLowerCase()}`);
  }
  for (const ip of names.ips ?? []) {
    if (!IPV4.test(ip) && !(IPV6.test(ip) && ip.includes(":"))) {
      throw new PortcullisError("bad_address", `Cannot put address "${ip}" in a certificate`);
    }
    sans.add(`IP:${ip}`);
  }
  return [...sans];
}

/** Creates the CA and server certificate under `dir` if needed; returns their details. */
export async function ensureCa(dir: string, names: CaNames = {}): Promise<CaInfo> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.chmod(dir, 0o700);
  const p = (f: string) => `${dir}/${f}`;
  const sans = serverSans(names);

  if (!(await exists(p("ca.crt"))) || !(await exists(p("ca.key")))) {
    const suffix = crypto.randomUUID().slice(0, 8);
    await openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      "ca.key.tmp",
      "-out",
      "ca.crt.tmp",
      "-days",
      "3650",
      "-sha256",
      "-subj",
      `/O=Portcullis/CN=Portcullis Edge CA ${suffix}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE,pathlen:0",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ], dir);
    await Deno.chmod(p("ca.key.tmp"), 0o600);
    await Deno.rename(p("ca.key.tmp"), p("ca.key"));
    await Deno.rename(p("ca.crt.tmp"), p("ca.crt"));
    // A new CA invalidates any old server certificate.
    await Deno.remove(p("server.crt")).catch(() => {});
  }

  let stored: string[] = [];
  try {
    stored = JSON.parse(await Deno.readTextFile(p("server.sans.json")));
  } catch { /* first start */ }
  const same = stored.length === sans.length && stored.every((s, i) => s === sans[i]);
  if (!same || !(await exists(p("server.crt"))) || !(await exists(p("server.key")))) {
    const cn = sans.find((s) => s.startsWith("DNS:") && s !== "DNS:localhost")?.slice(4) ??
      "portcullis-edge";
    await openssl([
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      "server.key.tmp",
      "-out",
      "server.csr",
      "-subj",
      `/O=Portcullis/CN=${cn}`,
    ], dir);
    await Deno.chmod(p("server.key.tmp"), 0o600);
    await Deno.writeTextFile(
      p("server.ext"),
      [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=serverAuth",
        `subjectAltName=${sans.join(",")}`,
        "",
      ].join("\n"),
    );
    const serial = Array.from(
      crypto.getRandomValues(new Uint8Array(16)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    await openssl([
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-set_serial",
      `0x${serial.replace(/^[89a-f]/, "1")}`,
      "-days",
      "825",
      "-sha256",
      "-extfile",
      "server.ext",
      "-out",
      "server.crt.tmp",
    ], dir);
    await Deno.rename(p("server.key.tmp"), p("server.key"));
    await Deno.rename(p("server.crt.tmp"), p("server.crt"));
    await Deno.writeTextFile(p("server.sans.json"), JSON.stringify(sans));
    await Deno.remove(p("server.csr")).catch(() => {});
  }

  const caCertPem = await Deno.readTextFile(p("ca.crt"));
  return {
    caCertPath: p("ca.crt"),
    caKeyPath: p("ca.key"),
    serverCertPath: p("server.crt"),
    serverKeyPath: p("server.key"),
    caCertPem,
    serverCertPem: await Deno.readTextFile(p("server.crt")),
    serverKeyPem: await Deno.readTextFile(p("server.key")),
    caSha256: certSha256(caCertPem),
    sans,
  };
}
