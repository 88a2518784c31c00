/**
 * Disk encryption: the root filesystem's own block device is on dm-crypt.
 * Any dm-crypt device existing somewhere (a swap partition, a USB stick)
 * says nothing about the data at rest, so we find the device "/" is mounted
 * from (/proc/self/mountinfo), open it in sysfs (/sys/dev/block/MAJ:MIN) and
 * walk down through its slaves (LVM on LUKS, RAID on LUKS …): encrypted when
 * some device on the way has a device-mapper uuid starting "CRYPT-".
 */

/** Where the disk collector looks; defaults are the real system. */
export interface DiskSources {
  mountinfoPath?: string;
  /** The sysfs root (default /sys). */
  sysPath?: string;
  /** Device number of a device node (stat's rdev), for roots mounted with anonymous device numbers (btrfs). */
  statRdev?: (path: string) => Promise<number | null>;
}

/** The outcome, with what was looked at (for the connector's status and tests). */
export interface DiskFinding {
  encrypted: boolean;
  /** The root filesystem's device ("253:1"), or null when "/" is not on a block device. */
  device: string | null;
  /** The dm-crypt device found on the way (e.g. "dm-0"), if any. */
  cryptDevice: string | null;
}

/** Parses mountinfo: the root mount's "MAJ:MIN" and mount source. */
export function rootMount(mountinfo: string): { devno: string; source: string } | null {
  let found: { devno: string; source: string } | null = null;
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep === -1) continue;
    const f = line.slice(0, sep).split(" ");
    const tail = line.slice(sep + 3).split(" ");
    // The last mount on "/" wins (a later one hides the earlier).
    if (f[4] === "/") found = { devno: f[2], source: tail[1] ?? "" };
  }
  return found;
}

const devnoOf = (rdev: number) =>
  `${(rdev >> 8) & 0xfff}:${(rdev & 0xff) | ((rdev >> 12) & 0xfff00)}`;

async function defaultRdev(path: string): Promise<number | null> {
  const st = await Deno.stat(path);
  return st.isBlockDevice ? st.rdev : null;
}

async function readText(path: string): Promise<string | null> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return null;
  }
}

/** Walks a sysfs block device and its slaves; returns the dm-crypt device's name, or null. */
async function findCrypt(dir: string, name: string, depth: number): Promise<string | null> {
  if (depth > 8) return null;
  const uuid = await readText(`${dir}/dm/uuid`);
  if (uuid?.startsWith("CRYPT-")) return (await readText(`${dir}/dm/name`)) || name;
  const slaves: string[] = [];
  try {
    for await (const e of Deno.readDir(`${dir}/slaves`)) slaves.push(e.name);
  } catch {
    return null; // not a stacked device
  }
  for (const s of slaves.sort()) {
    const hit = await findCrypt(`${dir}/slaves/${s}`, s, depth + 1);
    if (hit) return hit;
  }
  return null;
}

/** Whether the root filesystem's device is on dm-crypt, and what was looked at. */
export async function inspectRootDisk(src: DiskSources = {}): Promise<DiskFinding> {
  const sys = src.sysPath ?? "/sys";
  const root = rootMount(await Deno.readTextFile(src.mountinfoPath ?? "/proc/self/mountinfo"));
  if (!root) return { encrypted: false, device: null, cryptDevice: null };
  let devno = root.devno;
  if (devno.startsWith("0:")) {
    // Anonymous device number (btrfs, overlay, tmpfs): try the mount source's device node.
    const rdev = root.source.startsWith("/dev/")
      ? await (src.statRdev ?? defaultRdev)(root.source).catch(() => null)
      : null;
    if (rdev === null) return { encrypted: false, device: null, cryptDevice: null };
    devno = devnoOf(rdev);
  }
  const crypt = await findCrypt(`${sys}/dev/block/${devno}`, devno, 0);
  return { encrypted: crypt !== null, device: devno, cryptDevice: crypt };
}

/** True when the root filesystem is on dm-crypt. */
export async function collectDiskEncryption(src: DiskSources = {}): Promise<boolean> {
  return (await inspectRootDisk(src)).encrypted;
}
