/**
 * Running processes, named the way people name programs: the base name of
 * the executable (/proc/<pid>/exe) and of argv[0] (/proc/<pid>/cmdline).
 * Not /proc/<pid>/comm: the kernel cuts that to 15 characters, so
 * "falcon-sensor-agent" would be "falcon-sensor-a" and a check for the real
 * name would fail (or a short prefix would pass for the wrong program).
 */
import { hashFileCached } from "./hash.ts";

/** One running process as the collectors see it. */
export interface ProcessInfo {
  pid: number;
  /** Resolved executable path (without the kernel's " (deleted)" suffix), when readable. */
  exe: string | null;
  /** Base names the process answers to: exe's and argv[0]'s. */
  names: string[];
}

const baseName = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/**
 * Reads every process under `procPath` (processes that end while we look are
 * skipped). Synchronous reads on purpose: /proc answers from memory, and a
 * promise per file made one look at ~100 processes cost 15 ms instead of 2.
 */
export function listProcesses(procPath = "/proc"): Promise<ProcessInfo[]> {
  const out: ProcessInfo[] = [];
  const dec = new TextDecoder();
  for (const e of Deno.readDirSync(procPath)) {
    if (!/^\d+$/.test(e.name)) continue;
    const dir = `${procPath}/${e.name}`;
    let exe: string | null = null;
    try {
      exe = Deno.readLinkSync(`${dir}/exe`).replace(/ \(deleted\)$/, "");
    } catch {
      // kernel threads have no exe; other users' processes need privileges
    }
    let argv0 = "";
    try {
      const raw = Deno.readFileSync(`${dir}/cmdline`);
      const end = raw.indexOf(0);
      argv0 = dec.decode(end === -1 ? raw : raw.subarray(0, end)).trim();
    } catch {
      // ended meanwhile
    }
    const names = new Set<string>();
    if (exe) names.add(baseName(exe));
    // argv[0] may carry arguments when a program rewrote it ("sshd: user@pts/0").
    if (argv0) names.add(baseName(argv0.split(/[\s:]/)[0]));
    names.delete("");
    if (names.size) out.push({ pid: Number(e.name), exe, names: [...names] });
  }
  return Promise.resolve(out);
}

/** Names of running processes (exe and argv[0] base names), sorted. */
export async function collectProcesses(
  procPath = "/proc",
  listed?: readonly ProcessInfo[],
): Promise<string[]> {
  const names = new Set<string>();
  for (const p of listed ?? await listProcesses(procPath)) for (const n of p.names) names.add(n);
  return [...names].sort();
}

/** What was found for one EDR service. */
export interface ServiceFound {
  running: boolean;
  sha256?: string;
}

/**
 * Looks for the named services' processes and hashes the binary each runs
 * from (through /proc/<pid>/exe, so a binary replaced on disk after start is
 * hashed as it runs). Hashes are cached by file identity, so looking every
 * few seconds costs a stat, not a read of the whole binary.
 */
export async function collectServices(
  services: readonly string[],
  procPath = "/proc",
  listed?: readonly ProcessInfo[],
): Promise<Map<string, ServiceFound>> {
  const out = new Map<string, ServiceFound>();
  const procs = listed ?? await listProcesses(procPath);
  for (const name of services) {
    const p = procs.find((x) => x.names.includes(name));
    if (!p) {
      out.set(name, { running: false });
      continue;
    }
    const sha256 = await hashFileCached(`${procPath}/${p.pid}/exe`).catch(() => undefined);
    out.set(name, sha256 ? { running: true, sha256 } : { running: true });
  }
  return out;
}
