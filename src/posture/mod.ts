/**
 * Posture collectors: read facts from the local system for the checks a
 * policy asks about. Collection is mechanism only; the edge compares the
 * facts with the expected values (src/policy/posture.ts) after verifying the
 * connector's signature over them. A collector that fails leaves its fact
 * undefined, which the evaluator treats as a failed check (posture fails
 * closed). Paths and commands are injectable, so tests run the real readers
 * over fake /proc and /sys trees.
 */
import type { PostureCheck } from "../policy/types.ts";
import type { CertificateFact, FileFact, PostureFacts, ServiceFact } from "../policy/posture.ts";
import { collectCertificates, DEFAULT_CERT_STORE } from "./certificates.ts";
import { collectDiskEncryption, type DiskSources } from "./disk.ts";
import { collectFirewall, type FirewallSources } from "./firewall.ts";
import { hashFileCached } from "./hash.ts";
import { collectProcesses, collectServices, listProcesses } from "./processes.ts";

export { collectCertificates, DEFAULT_CERT_STORE } from "./certificates.ts";
export { collectDiskEncryption, inspectRootDisk, rootMount } from "./disk.ts";
export { collectFirewall, defaultRouteInterface, dropsInbound } from "./firewall.ts";
export { collectProcesses, collectServices, listProcesses } from "./processes.ts";

/** Where collectors look; defaults are the real system. */
export interface PostureSources {
  osReleasePath?: string;
  procPath?: string;
  /** Disk encryption: mountinfo and sysfs. */
  disk?: DiskSources;
  /** Firewall: the nft JSON rule set and the route table. */
  firewall?: FirewallSources;
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

/** Whether a file exists and, if asked, the SHA-256 of its contents. */
export async function collectFile(path: string, withHash: boolean): Promise<FileFact> {
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) return { exists: false };
    if (!withHash) return { exists: true };
    const sha256 = await hashFileCached(path);
    return sha256 ? { exists: true, sha256 } : { exists: true };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { exists: false };
    throw err;
  }
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
  // One look at the processes serves process and EDR checks alike.
  const listed = want.has("process_running") || want.has("edr")
    ? await tryDo(() => listProcesses(src.procPath))
    : undefined;
  if (want.has("process_running")) {
    // Only the asked-for names that run: the edge needs no list of everything on the device.
    const asked = new Set(checks.flatMap((c) => c.type === "process_running" ? [c.name] : []));
    const running = listed && await tryDo(() => collectProcesses(src.procPath, listed));
    facts.processes = running?.filter((n) => asked.has(n));
  }
  if (want.has("disk_encryption")) {
    facts.diskEncryption = await tryDo(() => collectDiskEncryption(src.disk));
  }
  if (want.has("firewall_enabled")) {
    facts.firewallEnabled = await tryDo(() => collectFirewall(src.firewall));
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
  const stores = new Set(
    checks.flatMap((c) => c.type === "certificate" ? [c.store ?? DEFAULT_CERT_STORE] : []),
  );
  if (stores.size) {
    const certs: CertificateFact[] = [];
    let read = false;
    for (const dir of stores) {
      const found = await tryDo(() => collectCertificates(dir));
      if (found) (read = true, certs.push(...found));
    }
    if (read) facts.certificates = certs.slice(0, 256);
  }
  const services = [...new Set(checks.flatMap((c) => c.type === "edr" ? [c.service] : []))];
  if (services.length) {
    facts.services = await tryDo<ReadonlyMap<string, ServiceFact>>(() =>
      listed ? collectServices(services, src.procPath, listed) : Promise.reject()
    );
  }
  return facts;
}
