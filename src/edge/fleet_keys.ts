/**
 * An edge on a shared database gets the fleet's CA and data-sealing key from
 * that database, so a further edge joins with the database URL and the
 * operator's fleet join key alone (no copying of ca/ and secret.key).
 *
 * - The first edge on a database without fleet keys (an empty one, or a
 *   fleet from before this existed) stores its own: its CA (the key sealed
 *   with its data-sealing key) and its data-sealing key wrapped under the
 *   join key. The join key is read from `--fleet-key-file`, or made there
 *   (default `<dataDir>/fleet.key`, 0600) for the operator to copy.
 * - Any later edge with no secret.key of its own unwraps the fleet's with the
 *   join key, checks everything first, and only then writes secret.key and
 *   ca/ca.crt, ca/ca.key into its data directory (so its next start needs no
 *   join key). A wrong or missing join key, or a data directory holding
 *   another fleet's key or CA, stops the start with an error that says so and
 *   writes nothing.
 *
 * Edges starting together on an empty database take turns
 * (FleetSecretsRepo.exclusive): one makes the CA, the others join it.
 */
import { InputError } from "../errors.ts";
import { type DeferredSealer, readSecretKey, writeSecretKey } from "../identity/secret_box.ts";
import { logger } from "../log.ts";
import type { Store } from "../store/mod.ts";
import { createJoinKeyFile, keyId, readJoinKeyFile, unwrap, wrap } from "../fleet/join_key.ts";

const log = logger("edge.fleet");

/** Purposes of the keys and wrapped values (bound into ids and wrapping). */
const SEALING = "sealing_key";
const JOIN = "join_key";

/** Options of `ensureFleetKeys`. */
export interface FleetKeysOptions {
  store: Store;
  /** Set here to the fleet's data-sealing key. */
  sealer: DeferredSealer;
  dataDir: string;
  /** The join key file; default `<dataDir>/fleet.key`. */
  keyFile?: string;
  /** Makes (or reads) this edge's own CA under `<dataDir>/ca` for a new fleet. */
  makeCa: () => Promise<{ certPem: string; keyPem: string }>;
  /** This edge's name, recorded with the keys it stores. */
  edgeName: string;
  now: () => number;
}

/** What `ensureFleetKeys` did. */
export type FleetKeysOutcome =
  | { kind: "created"; keyFile: string }
  | { kind: "member" }
  | { kind: "joined"; keyFile: string };

async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Writes `text` to `path` with `mode` through a temporary file, so no half file is seen. */
async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, text, { mode });
  await Deno.chmod(tmp, mode);
  await Deno.rename(tmp, path);
}

/** Loads the fleet's keys into `sealer` and `<dataDir>/ca`, storing or joining them. */
export function ensureFleetKeys(o: FleetKeysOptions): Promise<FleetKeysOutcome> {
  const { store, sealer, dataDir } = o;
  const keyFile = o.keyFile ?? `${dataDir}/fleet.key`;
  const secretPath = `${dataDir}/secret.key`;
  const caDir = `${dataDir}/ca`;
  const where = `database "${store.db.path}"`;
  return store.fleetSecrets.exclusive(async () => {
    const localKey = await readSecretKey(secretPath);
    const row = store.fleetSecrets.get();

    if (!row) {
      // The first edge: its own keys become the fleet's.
      const joinKey = (await readJoinKeyFile(keyFile)) ?? (await createJoinKeyFile(keyFile));
      const key = localKey ?? crypto.getRandomValues(new Uint8Array(32));
      const ca = await o.makeCa();
      sealer.setKey(key);
      const stored = store.fleetSecrets.insert({
        joinKeyId: await keyId(joinKey, JOIN),
        sealingKeyId: await keyId(key, SEALING),
        sealingKey: await wrap(joinKey, key, SEALING),
        caCertPem: ca.certPem,
        caKeySealed: sealer.seal(ca.keyPem),
        createdAt: o.now(),
        createdBy: o.edgeName,
      });
      if (!stored) {
        // Only without the lock (it cannot happen on PostgreSQL): keep nothing of ours.
        throw new InputError(
          "fleet_keys_race",
          `Cannot store the fleet keys in ${where}: another edge stored its own at the same time (move "${caDir}" away and start again to join it)`,
          409,
        );
      }
      if (!localKey) await writeSecretKey(secretPath, key);
      log.info("Fleet keys stored in the database: further edges join with the join key", {
        keyFile,
      });
      return { kind: "created", keyFile };
    }

    let key: Uint8Array;
    let joined = false;
    if (localKey) {
      if (await keyId(localKey, SEALING) !== row.sealingKeyId) {
        throw new InputError(
          "fleet_key_mismatch",
          `Cannot join the fleet in ${where}: "${secretPath}" is another fleet's sealing key (move it and "${caDir}" away to join this one with its join key)`,
        );
      }
      key = localKey;
    } else {
      const joinKey = await readJoinKeyFile(keyFile);
      if (!joinKey) {
        throw new InputError(
          "fleet_key_missing",
          `Cannot join the fleet in ${where}: no fleet join key at "${keyFile}" (copy the first edge's fleet.key and pass --fleet-key-file)`,
        );
      }
      const opened = await keyId(joinKey, JOIN) === row.joinKeyId
        ? await unwrap(joinKey, row.sealingKey, SEALING)
        : null;
      if (!opened || opened.length !== 32) {
        throw new InputError(
          "fleet_key_wrong",
          `Cannot join the fleet in ${where}: the fleet join key in "${keyFile}" is not this fleet's; nothing was written`,
        );
      }
      key = opened;
      joined = true;
    }
    sealer.setKey(key);
    const caKeyPem = sealer.open(row.caKeySealed);

    const localCert = await readText(`${caDir}/ca.crt`);
    if (localCert !== null && localCert.trim() !== row.caCertPem.trim()) {
      throw new InputError(
        "fleet_ca_mismatch",
        `Cannot join the fleet in ${where}: "${caDir}/ca.crt" is another CA than the fleet's (move "${caDir}" away to use the fleet's)`,
      );
    }
    // Everything checked: now write what this edge lacks.
    if (localCert === null || (await readText(`${caDir}/ca.key`)) === null) {
      await Deno.mkdir(caDir, { recursive: true, mode: 0o700 });
      await Deno.chmod(caDir, 0o700);
      await writeAtomic(`${caDir}/ca.key`, caKeyPem, 0o600);
      await writeAtomic(`${caDir}/ca.crt`, row.caCertPem, 0o644);
    }
    if (!localKey) await writeSecretKey(secretPath, key);
    if (joined) {
      log.info("Joined the fleet: its CA and sealing key are in the data directory", { keyFile });
      return { kind: "joined", keyFile };
    }
    return { kind: "member" };
  });
}
