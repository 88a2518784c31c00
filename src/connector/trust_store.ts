/**
 * Puts the edge's SSL inspection CA into this host's trust, with the
 * profile's consent (the app profile's `installInspectionCa`), and takes it
 * out again when consent is withdrawn or the connector is uninstalled:
 *
 * - the system store: a file in /usr/local/share/ca-certificates, then
 *   `update-ca-certificates` (Debian), which rebuilds
 *   /etc/ssl/certs/ca-certificates.crt that curl, OpenSSL and most tools read;
 * - NSS databases (Chromium and Firefox on Linux read these, not the system
 *   bundle): `certutil -A -t "C,,"` into each database that exists, when
 *   certutil (libnss3-tools) is installed.
 *
 * What was installed is recorded in the connector's data directory, so a
 * removal takes out exactly that, and a restart does not install twice.
 */
import { logger } from "../log.ts";

const log = logger("connector.trust");

/** The inspection CA as the policy bundle carries it. */
export interface InspectionCaRef {
  pem: string;
  sha256: string;
}

/** Runs a command; resolves with its exit code and output. */
export type RunCommand = (
  cmd: string[],
) => Promise<{ code: number; stdout: string; stderr: string }>;

/** Options of the system trust store. */
export interface TrustStoreOptions {
  /** Where the record of what was installed is kept. */
  dataDir: string;
  /** Default /usr/local/share/ca-certificates. */
  certDir?: string;
  /** Default ["update-ca-certificates"]. */
  update?: string[];
  /** NSS databases to add the CA to (those that exist); default ~/.pki/nssdb of $HOME. */
  nssDbs?: string[];
  run?: RunCommand;
}

/** The nickname of the CA in NSS databases. */
export const NSS_NICKNAME = "Portcullis Inspection CA";

interface Installed {
  sha256: string;
  file: string;
  nss: string[];
}

const defaultRun: RunCommand = async (cmd) => {
  try {
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const d = new TextDecoder();
    return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
  } catch (e) {
    return { code: 127, stdout: "", stderr: (e as Error).message };
  }
};

/** The host's trust stores. */
export class SystemTrustStore {
  readonly #o: Required<TrustStoreOptions>;
  readonly #record: string;
  #busy: Promise<void> = Promise.resolve();

  constructor(o: TrustStoreOptions) {
    const home = Deno.env.get("HOME");
    this.#o = {
      certDir: "/usr/local/share/ca-certificates",
      update: ["update-ca-certificates"],
      nssDbs: home ? [`${home}/.pki/nssdb`] : [],
      run: defaultRun,
      ...o,
    };
    this.#record = `${o.dataDir}/trusted-inspection-ca.json`;
  }

  /** What is installed now (null: nothing). */
  async installed(): Promise<Installed | null> {
    try {
      return JSON.parse(await Deno.readTextFile(this.#record));
    } catch {
      return null;
    }
  }

  /** Makes the host trust `ca` (null: trust no inspection CA of ours). Serialised. */
  sync(ca: InspectionCaRef | null): Promise<void> {
    const next = this.#busy.then(() => this.#sync(ca));
    this.#busy = next.catch(() => {});
    return next;
  }

  async #sync(ca: InspectionCaRef | null): Promise<void> {
    const cur = await this.installed();
    if (cur && ca && cur.sha256 === ca.sha256) return;
    if (cur) await this.#remove(cur);
    if (ca) await this.#install(ca);
  }

  async #install(ca: InspectionCaRef): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(ca.sha256) || !ca.pem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new Error("Cannot install the inspection CA: the policy carries no valid certificate");
    }
    const file = `${this.#o.certDir}/portcullis-inspection-${ca.sha256.slice(0, 16)}.crt`;
    await Deno.mkdir(this.#o.certDir, { recursive: true });
    await Deno.writeTextFile(file, ca.pem, { mode: 0o644 });
    const rec: Installed = { sha256: ca.sha256, file, nss: [] };
    // Recorded before the tools run: a crash in between still knows what to remove.
    await Deno.writeTextFile(this.#record, JSON.stringify(rec));
    const u = await this.#o.run(this.#o.update);
    if (u.code !== 0) {
      log.warn("update-ca-certificates failed", { code: u.code, error: u.stderr.slice(0, 300) });
    }
    for (const db of this.#o.nssDbs) {
      try {
        if (!Deno.statSync(db).isDirectory) continue;
      } catch {
        continue;
      }
      const r = await this.#o.run([
        "certutil",
        "-d",
        `sql:${db}`,
        "-A",
        "-t",
        "C,,",
        "-n",
        NSS_NICKNAME,
        "-i",
        file,
      ]);
      if (r.code === 0) rec.nss.push(db);
      else {log.warn("Cannot add the inspection CA to an NSS database", {
          db,
          error: r.stderr.slice(0, 300),
        });}
    }
    await Deno.writeTextFile(this.#record, JSON.stringify(rec));
    log.info("Installed the SSL inspection CA", { sha256: ca.sha256, file, nss: rec.nss });
  }

  async #remove(cur: Installed): Promise<void> {
    await Deno.remove(cur.file).catch(() => {});
    // --fresh: the links and the bundle are rebuilt without the removed file.
    const u = await this.#o.run([...this.#o.update, "--fresh"]);
    if (u.code !== 0) {
      log.warn("update-ca-certificates failed", { code: u.code, error: u.stderr.slice(0, 300) });
    }
    for (const db of cur.nss) {
      await this.#o.run(["certutil", "-d", `sql:${db}`, "-D", "-n", NSS_NICKNAME]);
    }
    await Deno.remove(this.#record).catch(() => {});
    log.info("Removed the SSL inspection CA", { sha256: cur.sha256 });
  }

  /** Removes whatever was installed (uninstall). */
  async remove(): Promise<void> {
    await this.sync(null);
  }
}
