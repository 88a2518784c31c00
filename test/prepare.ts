/**
 * Installs what the test suite needs on a fresh machine: the appliance's own
 * runtime packages plus the tools the tests drive (wireguard-go, iperf3,
 * tshark, chromium, simplesamlphp, ...). Idempotent and quiet when everything is there.
 */
import { ensurePackages, type PackageSet, RUNTIME_PACKAGES } from "../src/install.ts";

/** Debian packages the suite uses, keyed by a file that proves each is installed. */
export const TEST_PACKAGES: PackageSet = {
  ...RUNTIME_PACKAGES,
  "wireguard-go": "/usr/bin/wireguard-go",
  "wireguard-tools": "/usr/bin/wg",
  "iperf3": "/usr/bin/iperf3",
  "tshark": "/usr/bin/tshark",
  "chromium": "/usr/bin/chromium",
  "unzip": "/usr/bin/unzip",
  "iputils-ping": "/usr/bin/ping",
  // systemd-analyze verify checks the units `portcullis service` writes.
  "systemd": "/usr/bin/systemd-analyze",
  // The SAML identity provider peer (test/identity/saml_idp.ts): simplesamlphp
  // under `php -S`; it needs PHP's DOM and mbstring extensions, which the
  // Debian package does not pull in.
  "simplesamlphp": "/usr/share/simplesamlphp/www/_include.php",
  "php-cli": "/usr/bin/php",
  "php-xml": "/usr/share/doc/php-xml/copyright",
  "php-mbstring": "/usr/share/doc/php-mbstring/copyright",
  // The OIDC identity provider peer (test/identity/oidc_idp.ts): oidc-provider
  // from npm, run under Node so the IdP is not our runtime.
  "nodejs": "/usr/bin/node",
  "npm": "/usr/bin/npm",
  // DLP: office documents made in the test setup (test/dlp/documents.ts) and
  // poppler's pdftotext to cross-check the text we extract from PDFs.
  "libreoffice-writer": "/usr/lib/libreoffice/program/libmswordlo.so",
  "libreoffice-calc": "/usr/lib/libreoffice/program/libanalysislo.so",
  "poppler-utils": "/usr/bin/pdftotext",
  // SSL inspection: the connector adds the inspection CA to NSS databases
  // (Chromium's) with certutil; the benchmark drives ApacheBench.
  "libnss3-tools": "/usr/bin/certutil",
  "apache2-utils": "/usr/bin/ab",
  // The benchmark's HTTP/1.1 client (ab speaks HTTP/1.0).
  "wrk": "/usr/bin/wrk",
  // The PAC engine the sandboxed evaluator is compared with (pactester's library).
  "libpacparser1": "/usr/lib/libpacparser.so.1",
  // The doctor's scenarios (test/e2e/doctor_test.ts): a connector with its
  // clock moved (libfaketime), and conntrack flushed so a DNAT applies at once.
  "faketime": "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
  "conntrack": "/usr/sbin/conntrack",
  // The store's PostgreSQL backend is tested against a real server (src/store/pg/cluster.ts).
  "postgresql": "/usr/lib/postgresql/15/bin/initdb",
};

/** Installs missing packages when root; returns the names still missing. */
export function ensureDebianPackages(): Promise<string[]> {
  return ensurePackages(TEST_PACKAGES, (l) => console.log(`prepare: ${l}`));
}

if (import.meta.main) {
  const still = await ensureDebianPackages();
  if (still.length) console.log(`prepare: not installed (not root): ${still.join(" ")}`);
}
