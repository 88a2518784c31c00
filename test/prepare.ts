/**
 * Installs what the test suite needs on a fresh machine: Debian packages
 * (when running as root) and the npm packages Deno caches. Idempotent and
 * quiet when everything is already there.
 */

/** Debian packages the suite uses, keyed by a binary that proves each is installed. */
export const DEBIAN_PACKAGES: Record<string, string> = {
  "wireguard-go": "/usr/bin/wireguard-go",
  "wireguard-tools": "/usr/bin/wg",
  "iperf3": "/usr/bin/iperf3",
  "nftables": "/usr/sbin/nft",
  "tshark": "/usr/bin/tshark",
  "chromium": "/usr/bin/chromium",
  "iproute2": "/usr/sbin/ip",
  "curl": "/usr/bin/curl",
  "unzip": "/usr/bin/unzip",
  "iputils-ping": "/usr/bin/ping",
  "openssl": "/usr/bin/openssl",
  "procps": "/usr/bin/ps",
};

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function run(cmd: string[], env: Record<string, string> = {}): Promise<void> {
  const p = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdout: "inherit",
    stderr: "inherit",
  });
  const { code } = await p.output();
  if (code !== 0) throw new Error(`Command "${cmd.join(" ")}" failed with exit code ${code}`);
}

/** Installs missing Debian packages when root; returns the names still missing. */
export async function ensureDebianPackages(): Promise<string[]> {
  const missing = Object.entries(DEBIAN_PACKAGES).filter(([, bin]) => !exists(bin)).map(([p]) => p);
  if (missing.length === 0) return [];
  if (Deno.uid() !== 0) return missing;
  console.log(`prepare: installing Debian packages: ${missing.join(" ")}`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  await run(["apt-get", "update", "-qq"], env);
  await run(
    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...missing],
    env,
  );
  return Object.entries(DEBIAN_PACKAGES).filter(([, bin]) => !exists(bin)).map(([p]) => p);
}

if (import.meta.main) {
  const still = await ensureDebianPackages();
  if (still.length) console.log(`prepare: not installed (not root): ${still.join(" ")}`);
}
