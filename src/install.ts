/**
 * Installs the Debian packages a command needs, when they are missing and we
 * are root (a fresh machine must work with the README's two commands). Not
 * root: report what is missing and let the caller decide.
 */

/** Debian package → a file that proves it is installed. */
export type PackageSet = Record<string, string>;

/** What the appliance itself needs at run time. */
export const RUNTIME_PACKAGES: PackageSet = {
  "iproute2": "/usr/sbin/ip",
  "nftables": "/usr/sbin/nft",
  "openssl": "/usr/bin/openssl",
  "curl": "/usr/bin/curl",
  "procps": "/usr/bin/ps",
  // setpriv --pdeathsig: helpers die with the connector (src/net/tied_command.ts).
  "util-linux": "/usr/bin/setpriv",
  // The doctor's don't-fragment probes through the tunnel (src/diag/doctor/mtu_probe.ts).
  "iputils-ping": "/usr/bin/ping",
  // Cloud-path probes, hop by hop (src/zdx/cloud_path.ts).
  "mtr-tiny": "/usr/bin/mtr",
};

/** True when `path` exists (any kind of file). */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function run(cmd: string[]): Promise<void> {
  const { code } = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) throw new Error(`Command "${cmd.join(" ")}" failed with exit code ${code}`);
}

/** Packages of `set` that are not installed. */
export function missingPackages(set: PackageSet): string[] {
  return Object.entries(set).filter(([, f]) => !exists(f)).map(([p]) => p);
}

/** Installs what is missing (root only); returns what is still missing. */
export async function ensurePackages(set: PackageSet, log = console.log): Promise<string[]> {
  const missing = missingPackages(set);
  if (missing.length === 0 || Deno.build.os !== "linux" || Deno.uid() !== 0) return missing;
  if (!exists("/usr/bin/apt-get")) return missing;
  log(`Installing Debian packages: ${missing.join(" ")}`);
  await run(["apt-get", "update", "-qq"]);
  await run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...missing]);
  return missingPackages(set);
}
