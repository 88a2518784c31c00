/**
 * The SSL inspection CA of a fleet: every edge on a shared database issues
 * its inspection leaves under one root, kept in the database (migration 18)
 * with the private key sealed with the fleet's data-sealing key, so a
 * connector that moves to another edge (failover, a nearer edge) finds the
 * root it already installed and devices hold one root per organisation.
 *
 * - The first edge on a database without one stores its own: the CA in
 *   `<dataDir>/inspection` if it has one (an upgraded edge keeps the root its
 *   devices trust, and it becomes the fleet's), a new one otherwise.
 * - Later edges load the fleet's and write it into `<dataDir>/inspection`.
 * - An edge whose `<dataDir>/inspection` holds another CA than the fleet's
 *   refuses to start, naming both, and changes nothing: devices trust that
 *   root, so replacing it is the operator's decision (move the directory
 *   away to take the fleet's; connectors then install the fleet's root).
 *
 * SQLite (one edge per file) keeps the per-edge CA of
 * InspectionCa.loadOrCreate. Runs under FleetSecretsRepo.exclusive, so edges
 * starting together store one CA.
 */
import { InputError } from "../errors.ts";
import type { SecretSealer } from "../identity/secret_box.ts";
import { logger } from "../log.ts";
import {
  certSha256,
  InspectionCa,
  newInspectionCaPem,
  readInspectionCaFiles,
  writeInspectionCaFiles,
} from "../proxy/inspection_ca.ts";
import type { Store } from "../store/mod.ts";

const log = logger("edge.fleet");

/** Options of `ensureFleetInspectionCa`. */
export interface FleetInspectionCaOptions {
  store: Store;
  /** The fleet's data-sealing key (set by ensureFleetKeys). */
  sealer: SecretSealer;
  /** This edge's copy: `<dataDir>/inspection`. */
  dir: string;
  /** This edge's name, recorded with the CA it stores. */
  edgeName: string;
  now: () => number;
}

/** What `ensureFleetInspectionCa` did, and the CA. */
export interface FleetInspectionCaResult {
  ca: InspectionCa;
  /** "stored": this edge's CA became the fleet's; "loaded": the fleet's was used. */
  outcome: "stored" | "loaded";
}

const same = (a: string, b: string) => a.trim() === b.trim();

/** Loads the fleet's inspection CA from the shared database, storing this edge's if it is the first. */
export function ensureFleetInspectionCa(
  o: FleetInspectionCaOptions,
): Promise<FleetInspectionCaResult> {
  const { store, sealer, dir } = o;
  const where = `database "${store.db.path}"`;
  return store.fleetSecrets.exclusive(async () => {
    const local = await readInspectionCaFiles(dir, sealer);
    const row = store.fleetSecrets.inspectionCa();

    if (row) {
      if (local && !same(local.certPem, row.certPem)) {
        throw new InputError(
          "fleet_inspection_ca_mismatch",
          `Cannot use the fleet's SSL inspection CA in ${where}: "${dir}/inspection-ca.crt" is another CA (sha256 ${
            certSha256(local.certPem)
          }) than the fleet's (sha256 ${row.certSha256}, stored by edge "${row.createdBy}"); move "${dir}" away to use the fleet's, whose root connectors then install`,
        );
      }
      const keyPem = sealer.open(row.keySealed);
      const ca = await InspectionCa.fromPem(row.certPem, keyPem);
      if (!local?.keyPem || !same(local.keyPem, keyPem)) {
        await writeInspectionCaFiles(dir, sealer, { certPem: row.certPem, keyPem });
      }
      return { ca, outcome: "loaded" as const };
    }

    if (local && !local.keyPem) {
      throw new InputError(
        "fleet_inspection_ca_unreadable",
        `Cannot store the SSL inspection CA in ${where}: the key beside "${dir}/inspection-ca.crt" (sha256 ${
          certSha256(local.certPem)
        }) is missing or does not open with this edge's sealing key; move "${dir}" away to make a new one`,
      );
    }
    const pair = local?.keyPem
      ? { certPem: local.certPem, keyPem: local.keyPem }
      : await newInspectionCaPem("Portcullis Inspection CA");
    const ca = await InspectionCa.fromPem(pair.certPem, pair.keyPem);
    const stored = store.fleetSecrets.insertInspectionCa({
      certPem: pair.certPem,
      certSha256: ca.sha256,
      keySealed: sealer.seal(pair.keyPem),
      createdAt: o.now(),
      createdBy: o.edgeName,
    });
    if (!stored) {
      // Only without the lock (it cannot happen on PostgreSQL).
      throw new InputError(
        "fleet_inspection_ca_race",
        `Cannot store the SSL inspection CA in ${where}: another edge stored its own at the same time; start again to use it`,
        409,
      );
    }
    if (!local) await writeInspectionCaFiles(dir, sealer, pair);
    log.info("SSL inspection CA stored in the database: every edge of the fleet uses it", {
      sha256: ca.sha256,
      from: local ? dir : "new",
    });
    return { ca, outcome: "stored" as const };
  });
}
