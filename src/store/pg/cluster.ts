/**
 * A throwaway PostgreSQL server for the lab and the tests: `initdb` in a
 * temporary directory, listening only on a Unix socket in that directory
 * (reachable from the lab's network namespaces, which share the file
 * system, and from nothing on the network), stopped and deleted on `stop`.
 *
 * PostgreSQL refuses to run as root, so as root the server runs as the
 * Debian package's `postgres` user (through setpriv); the directory is
 * handed to that user. Durability is switched off (fsync=off): a lab or test
 * database is thrown away, and the suite should not wait on the disk.
 */
import { PortcullisError } from "../../errors.ts";

/** A running throwaway server. */
export interface PgCluster {
  /** The directory holding the data, the socket and the log. */
  readonly dir: string;
  /** URL of database `name` on this server (default: the `portcullis` database). */
  url(name?: string): string;
  /** Creates an empty database and returns its URL (a second edge's, the lab's). */
  createDatabase(name: string): Promise<string>;
  /** The server's log so far (for a failing test's message). */
  log(): string;
  /** Restarts the server (fast shutdown: every connection is closed), keeping the data. */
  restart(): Promise<void>;
  /** Stops the server (immediate) and deletes the directory. */
  stop(): Promise<void>;
  /** `stop`, blocking: for an `unload` handler, which cannot await. */
  stopSync(): void;
}

const PORT = 5432;
const SUPERUSER = "portcullis";

/** The directory of PostgreSQL's server programs (Debian: /usr/lib/postgresql/<major>/bin). */
export function pgBinDir(): string | null {
  try {
    const majors = [...Deno.readDirSync("/usr/lib/postgresql")]
      .map((e) => Number(e.name))
      .filter((n) => Number.isInteger(n))
      .sort((a, b) => b - a);
    for (const m of majors) {
      const dir = `/usr/lib/postgresql/${m}/bin`;
      try {
        Deno.statSync(`${dir}/initdb`);
        return dir;
      } catch {
        // Not this one.
      }
    }
  } catch {
    // Not installed.
  }
  return null;
}

async function run(cmd: string[], what: string): Promise<string> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new PortcullisError("pg_cluster_failed", `${what} failed: ${text.trim()}`, 500);
  }
  return text;
}

/** Starts a fresh server; `prefix` names its temporary directory. */
export async function startPgCluster(prefix = "pcl-pg-"): Promise<PgCluster> {
  const bin = pgBinDir();
  if (!bin) {
    throw new PortcullisError(
      "pg_not_installed",
      "PostgreSQL's server is not installed (apt-get install postgresql)",
      500,
    );
  }
  const root = Deno.uid() === 0;
  const as = (cmd: string[]) =>
    root ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", ...cmd] : cmd;
  const dir = await Deno.makeTempDir({ prefix });
  const data = `${dir}/data`;
  const logFile = `${dir}/server.log`;
  let started = false;
  const createDb = (name: string) =>
    run(
      as([
        `${bin}/psql`,
        "-h",
        dir,
        "-p",
        String(PORT),
        "-U",
        SUPERUSER,
        "-d",
        "postgres",
        "-qc",
        `CREATE DATABASE ${name}`,
      ]),
      `Creating database ${name}`,
    );
  try {
    if (root) {
      const pw = await run(["id", "-u", "postgres"], "Looking up the postgres user");
      const gid = await run(["id", "-g", "postgres"], "Looking up the postgres group");
      await Deno.chown(dir, Number(pw.trim()), Number(gid.trim()));
    }
    await Deno.chmod(dir, 0o700);
    await run(
      as([
        `${bin}/initdb`,
        "-D",
        data,
        "-U",
        SUPERUSER,
        "--auth=trust",
        "--no-sync",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
      ]),
      "initdb",
    );
    // Only the socket: no TCP listener at all.
    const opts =
      `-k ${dir} -p ${PORT} -c listen_addresses='' -c fsync=off -c synchronous_commit=off ` +
      `-c full_page_writes=off -c max_connections=300`;
    await run(
      as([`${bin}/pg_ctl`, "-D", data, "-l", logFile, "-w", "-t", "60", "-o", opts, "start"]),
      "pg_ctl start",
    );
    started = true;
    // The database the edge's URL names (the cluster's own are template and admin databases).
    await createDb(SUPERUSER);
  } catch (err) {
    if (started) {
      await run(as([`${bin}/pg_ctl`, "-D", data, "-m", "immediate", "stop"]), "pg_ctl stop").catch(
        () => {},
      );
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
  const url = (name = SUPERUSER) =>
    `postgres://${SUPERUSER}@localhost:${PORT}/${name}?host=${encodeURIComponent(dir)}`;
  let stopped = false;
  const stopCmd = as([`${bin}/pg_ctl`, "-D", data, "-m", "immediate", "-w", "stop"]);
  return {
    dir,
    url,
    async createDatabase(name: string) {
      if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) throw new Error(`Invalid database name "${name}"`);
      await createDb(name);
      return url(name);
    },
    log() {
      try {
        return Deno.readTextFileSync(logFile);
      } catch {
        return "";
      }
    },
    async restart() {
      if (stopped) throw new Error("The PostgreSQL test server is stopped");
      await run(
        as([`${bin}/pg_ctl`, "-D", data, "-l", logFile, "-m", "fast", "-w", "-t", "60", "restart"]),
        "pg_ctl restart",
      );
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await run(stopCmd, "pg_ctl stop").catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    stopSync() {
      if (stopped) return;
      stopped = true;
      // Best effort, as stop: the server or the directory may be gone already.
      try {
        new Deno.Command(stopCmd[0], {
          args: stopCmd.slice(1),
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).outputSync();
      } catch { /* gone */ }
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* gone */ }
    },
  };
}
