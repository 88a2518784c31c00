/**
 * `portcullis uninstall`: takes the connector off this host — its service
 * unit (when installed), the CA certificates it put into the system trust
 * store, its TUN interface (the tunnel routes go with it), its nftables
 * table, the resolv.conf it rewrote (put back from its backup) and its data
 * directory — and nothing else.
 *
 * The uninstall password of the last policy (an scrypt hash) is checked
 * first, before anything is touched, so a wrong password changes nothing.
 * Wrong attempts are counted in the data directory (5 in 15 minutes), and
 * counted before the slow scrypt runs, so a script cannot guess faster by
 * running many at once. A running connector is stopped through its service
 * unit; one started by hand must be stopped first (its exit may have a
 * password of its own), which is checked by asking its local console.
 */
import { verifyPassword } from "../identity/password.ts";
import { nftApply, nftReset } from "../net/nft.ts";
import { ConnectorState } from "../store/connector_state.ts";
import { InputError, PortcullisError } from "../errors.ts";
import { ResolvConfManager } from "./dns/resolv_conf.ts";
import { CONNECTOR_NFT_TABLE } from "./tunnel.ts";
import { SystemTrustStore } from "./trust_store.ts";

/** systemd unit name of the connector service. */
export const SERVICE_UNIT = "portcullis-connector.service";
/** Prefix of the CA certificate files the connector installs into the trust store. */
export const CA_FILE_PREFIX = "portcullis";
/** Wrong uninstall passwords allowed per window. */
export const UNINSTALL_FAILURES = 5;
/** The failure window (15 min). */
export const UNINSTALL_WINDOW_MS = 15 * 60_000;
const FAILURES_FILE = "uninstall-failures.json";

/** What to remove. */
export interface RemoveOptions {
  dataDir: string;
  tunInterface: string;
  /** The connector's console ("127.0.0.1:9080"), asked whether it still runs. */
  consoleListen: string;
  /** Filesystem root of the system paths (default "/"; tests use a temporary one). */
  root?: string;
  /** Progress lines for the user. */
  say?: (line: string) => void;
  /** The connector removes itself: its service is disabled, not stopped under it. */
  self?: boolean;
}

/** What to remove and how to ask. */
export interface UninstallOptions extends RemoveOptions {
  /** Asks for the uninstall password (called only when the policy sets one). */
  password: () => Promise<string>;
  /** Asks "remove everything?"; `--yes` answers true without asking. */
  confirm: (what: string[]) => Promise<boolean>;
  now?: () => number;
}

/** What an uninstall did. */
export interface UninstallReport {
  removed: string[];
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const text = new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr);
    return { ok: o.code === 0, out: text.trim() };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

/** The uninstall password hash of the last policy, if it sets one. */
function uninstallHash(dataDir: string): string | undefined {
  const db = `${dataDir}/connector.db`;
  if (!exists(db)) return undefined;
  const store = ConnectorState.open(db);
  try {
    const bundle = store.getPolicy()?.bundle as
      | { appProfile?: { passwords?: { uninstall?: unknown } } }
      | undefined;
    const h = bundle?.appProfile?.passwords?.uninstall;
    return typeof h === "string" ? h : undefined;
  } finally {
    store.close();
  }
}

/** Checks the password when the policy sets one; throws, having changed nothing, when wrong. */
async function checkPassword(o: UninstallOptions): Promise<void> {
  const hash = uninstallHash(o.dataDir);
  if (hash === undefined) return;
  const now = (o.now ?? Date.now)();
  const file = `${o.dataDir}/${FAILURES_FILE}`;
  let failures: number[] = [];
  try {
    const parsed = JSON.parse(await Deno.readTextFile(file));
    if (Array.isArray(parsed)) failures = parsed.filter((t) => typeof t === "number");
  } catch { /* none yet */ }
  failures = failures.filter((t) => now - t < UNINSTALL_WINDOW_MS && t <= now);
  if (failures.length >= UNINSTALL_FAILURES) {
    const wait = Math.ceil((failures[0] + UNINSTALL_WINDOW_MS - now) / 60_000);
    throw new InputError(
      "too_many_attempts",
      `Too many wrong uninstall passwords: try again in ${wait} min; nothing was removed`,
      429,
    );
  }
  const password = await o.password();
  // Counted before the slow check; forgiven when it was right.
  await Deno.writeTextFile(file, JSON.stringify([...failures, now]), { mode: 0o600 });
  if (!(await verifyPassword(password, hash))) {
    throw new InputError(
      "wrong_password",
      "Wrong uninstall password: nothing was removed",
      403,
    );
  }
  await Deno.writeTextFile(file, JSON.stringify(failures), { mode: 0o600 });
}

/** True when the connector's console answers (the connector still runs). */
async function consoleAnswers(listen: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${listen}/api/v1/status`, {
      signal: AbortSignal.timeout(1500),
    });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

/** The connector's CA files in the trust store directory. */
function caFiles(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)]
      .filter((e) => e.isFile && e.name.startsWith(CA_FILE_PREFIX) && e.name.endsWith(".crt"))
      .map((e) => `${dir}/${e.name}`).sort();
  } catch {
    return [];
  }
}

/** Where the connector's traces are under a root. */
function paths(o: RemoveOptions) {
  const root = (o.root ?? "/").replace(/\/*$/, "/");
  return {
    system: root === "/",
    unit: `${root}etc/systemd/system/${SERVICE_UNIT}`,
    caDir: `${root}usr/local/share/ca-certificates`,
    resolv: new ResolvConfManager({
      path: `${root}etc/resolv.conf`,
      backupPath: `${o.dataDir}/resolv.conf.backup`,
    }),
  };
}

/** Removes the connector from this host; throws, having changed nothing, on a wrong password. */
export async function uninstallConnector(o: UninstallOptions): Promise<UninstallReport> {
  const { unit, caDir, resolv } = paths(o);
  await checkPassword(o);
  const what = [
    exists(unit) ? `the service unit ${unit}` : null,
    ...caFiles(caDir).map((f) => `the trusted CA certificate ${f}`),
    `the TUN interface "${o.tunInterface}", its routes and the nftables table ${CONNECTOR_NFT_TABLE}`,
    resolv.hasBackup() ? `the split-DNS resolv.conf (the original comes back)` : null,
    exists(o.dataDir) ? `the data directory ${o.dataDir} (enrolment, keys, policy, logs)` : null,
  ].filter((x): x is string => x !== null);
  if (!(await o.confirm(what))) {
    throw new InputError("not_confirmed", "Uninstall not confirmed: nothing was removed");
  }
  return await removeConnector(o);
}

/**
 * Removes every trace, with no password or question: for `uninstallConnector`
 * once both passed, and for a connector whose local API already checked the
 * uninstall password and that has stopped its tunnel and store.
 */
export async function removeConnector(o: RemoveOptions): Promise<UninstallReport> {
  const { system, unit, caDir, resolv } = paths(o);
  const say = o.say ?? (() => {});
  const removed: string[] = [];
  const done = (line: string) => {
    removed.push(line);
    say(`Removed ${line}`);
  };

  // The service stops first (not when the connector removes itself: it has
  // stopped already and is that service); a connector still answering then
  // was started by hand, and nothing is removed under it.
  if (exists(unit) && system && !o.self) await run("systemctl", ["stop", SERVICE_UNIT]);
  if (!o.self && await consoleAnswers(o.consoleListen)) {
    throw new PortcullisError(
      "connector_running",
      `The connector is still running (its console answers at ${o.consoleListen}): ` +
        'exit it first and run the uninstall again, or let it remove itself: "portcullis ctl uninstall"',
      409,
    );
  }
  if (exists(unit)) {
    if (system) await run("systemctl", ["disable", SERVICE_UNIT]);
    await Deno.remove(unit);
    if (system) await run("systemctl", ["daemon-reload"]);
    done(`the service unit ${unit}`);
  }
  // The SSL inspection CA as the connector recorded it: its NSS entries too.
  if (system) {
    const trust = new SystemTrustStore({ dataDir: o.dataDir });
    const cur = await trust.installed();
    if (cur) {
      await trust.remove();
      done(`the SSL inspection CA ${cur.file}${cur.nss.length ? ` and its NSS entries` : ""}`);
    }
  }
  const cas = caFiles(caDir);
  for (const f of cas) {
    await Deno.remove(f);
    done(`the trusted CA certificate ${f}`);
  }
  if (cas.length && system) {
    const r = await run("update-ca-certificates", ["--fresh"]);
    if (!r.ok) say(`Cannot refresh the system trust store: ${r.out}`);
  }
  if (await resolv.recover()) done(`the split-DNS resolv.conf (restored ${resolv.path})`);
  if ((await run("nft", ["list", "table", "inet", CONNECTOR_NFT_TABLE])).ok) {
    await nftApply(nftReset("inet", CONNECTOR_NFT_TABLE));
    done(`the nftables table inet ${CONNECTOR_NFT_TABLE}`);
  }
  const link = await run("ip", ["-d", "link", "show", "dev", o.tunInterface]);
  // Only a TUN device of that name is ours; an interface the admin made is left alone.
  if (link.ok && /\btun\b/.test(link.out)) {
    const r = await run("ip", ["link", "del", "dev", o.tunInterface]);
    if (!r.ok) {
      throw new PortcullisError(
        "uninstall_failed",
        `Cannot remove the TUN interface "${o.tunInterface}": ${r.out}`,
        500,
      );
    }
    done(`the TUN interface "${o.tunInterface}" and its routes`);
  }
  if (exists(o.dataDir)) {
    await Deno.remove(o.dataDir, { recursive: true });
    done(`the data directory ${o.dataDir}`);
  }
  return { removed };
}
