/**
 * Posture collectors: read facts from the local system for the checks a
 * policy asks about. Collection is mechanism only; src/policy/posture.ts
 * compares the facts with the expected values. A collector that fails leaves
 * its fact undefined, which the evaluator treats as a failed check (posture
 * fails closed). Paths and commands are injectable for tests.
 */
import type { PostureCheck } from "../policy/types.ts";
import type { FileFact, PostureFacts } from "../policy/posture.ts";

/** Where collectors look; defaults are the real system. */
export interface PostureSources {
  osReleasePath?: string;
  procPath?: string;
  sysBlockPath?: string;
  /** Runs `nft list ruleset` and returns its stdout, or throws. */
  nftRuleset?: () => Promise<string>;
  connectorVersion?: string;
}

/** Parsed /etc/os-release. */
export interface OsInfo {
  name: string;
  version: string;
  id: string;
}

/** Reads OS name and version from os-release (VERSION_ID, falling back to the kernel release). */
export async function collectOs(path = "/etc/os-release"): Promise<OsInfo> {
  const text = await Deno.readTextFile(path);
  const kv = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = line.match(/^([A-Z0-9_]+)=(.*)$/);
    if (m) kv.set(m[1], m[2].replace(/^"(.*)"$/, "$1").replace(/^'(.*)'$/, "$1"));
  }
  return {
    name: kv.get("NAME") ?? kv.get("ID") ?? "unknown",
    version: kv.get("VERSION_ID") ?? Deno.osRelease(),
    id: kv.get("ID") ?? "unknown",
  };
}

/** Names of running processes from /proc/<pid>/comm. */
export async function collectProcesses(procPath = "/proc"): Promise<string[]> {
  const names = new Set<string>();
  for await (const e of Deno.readDir(procPath)) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      names.add((await Deno.readTextFile(`${procPath}/${e.name}/comm`)).trim());
    } catch {
      // process ended while we looked
    }
  }
  return [...names].sort();
}

/** Whether a file exists and, if asked, the SHA-256 of its contents. */
export async function collectFile(path: string, withHash: boolean): Promise<FileFact> {
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) return { exists: false };
    if (!withHash) return { exists: true };
    if (st.size > 256 * 1024 * 1024) return { exists: true };
    const data = await Deno.readFile(path);
    const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    return { exists: true, sha256: Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("") };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { exists: false };
    throw err;
  }
}

/** True when any dm-crypt device exists (a dm uuid starting "CRYPT-"). */
export async function collectDiskEncryption(sysBlockPath = "/sys/block"): Promise<boolean> {
  for await (const e of Deno.readDir(sysBlockPath)) {
    try {
      const uuid = await Deno.readTextFile(`${sysBlockPath}/${e.name}/dm/uuid`);
      if (uuid.startsWith("CRYPT-")) return true;
    } catch {
      // not a device-mapper device
    }
  }
  return false;
}

async function nftListRuleset(): Promise<string> {
  const out = await new Deno.Command("nft", {
    args: ["list", "ruleset"],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`Cannot list nftables ruleset: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** True when the nftables ruleset is non-empty (some table is loaded). */
export async function collectFirewall(
  run: () => Promise<string> = nftListRuleset,
): Promise<boolean> {
  const text = await run();
  return text.trim().length > 0;
}

/**
 * Collects the facts the given checks need (and only those: listing every
 * process or hashing files nobody asked about is wasted work and exposure).
 */
export async function collectFacts(
  checks: readonly PostureCheck[],
  src: PostureSources = {},
): Promise<PostureFacts> {
  const facts: {
    -readonly [K in keyof PostureFacts]: PostureFacts[K];
  } = {};
  const want = new Set(checks.map((c) => c.type));
  const tryDo = async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch {
      return undefined;
    }
  };
  if (want.has("os_version")) {
    facts.osVersion = (await tryDo(() => collectOs(src.osReleasePath)))?.version;
  }
  if (want.has("process_running")) {
    facts.processes = await tryDo(() => collectProcesses(src.procPath));
  }
  if (want.has("disk_encryption")) {
    facts.diskEncryption = await tryDo(() => collectDiskEncryption(src.sysBlockPath));
  }
  if (want.has("firewall_enabled")) {
    facts.firewallEnabled = await tryDo(() => collectFirewall(src.nftRuleset));
  }
  if (want.has("connector_version")) facts.connectorVersion = src.connectorVersion;
  const files = new Map<string, FileFact>();
  for (const c of checks) {
    if (c.type !== "file_exists") continue;
    const prev = files.get(c.path);
    if (prev?.sha256 || (prev && !c.sha256)) continue;
    const f = await tryDo(() => collectFile(c.path, !!c.sha256));
    if (f) files.set(c.path, f);
  }
  if (files.size) facts.files = files;
  // Certificates: no system store reader yet; left undefined so such checks fail closed.
  return facts;
}
