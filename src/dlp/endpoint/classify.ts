/**
 * Which mounts are exits for data: removable media and network shares.
 * Network shares are known by filesystem type. Removable media are known by
 * their block device: the kernel's `removable` flag in sysfs (on the disk,
 * or the disk a partition belongs to), or udev's properties of the device
 * (ID_BUS=usb, ID_USB_DRIVER=usb-storage, a flash or thumb drive), read
 * from udev's database (/run/udev/data/b<major>:<minor>). The decision is
 * pure; `readDeviceFacts` gathers what it needs from the system.
 */
import type { Channel } from "../types.ts";
import type { MountEntry } from "./mountinfo.ts";

/** Filesystem types of network shares. */
export const NETWORK_FS = new Set([
  "cifs",
  "smb3",
  "smbfs",
  "nfs",
  "nfs4",
  "9p",
  "afs",
  "ceph",
  "glusterfs",
  "davfs",
  "fuse.sshfs",
  "fuse.davfs2",
  "fuse.rclone",
  "fuse.glusterfs",
]);

/** What the system says about a mount's block device. */
export interface DeviceFacts {
  /** sysfs `removable` of the disk (or its parent disk for a partition). */
  removable: boolean;
  /** udev properties of the device (empty when udev has no record). */
  udev: Record<string, string>;
}

/** A mount the endpoint guard watches, with the channel and why. */
export interface WatchedMount {
  mount: MountEntry;
  channel: Extract<Channel, "removable_media" | "network_share">;
  reason: string;
}

/** Decides whether `m` is removable media or a network share (null: neither). */
export function classifyMount(m: MountEntry, facts: DeviceFacts | null): WatchedMount | null {
  if (NETWORK_FS.has(m.fsType)) {
    return { mount: m, channel: "network_share", reason: `network filesystem ${m.fsType}` };
  }
  if (!facts) return null;
  const u = facts.udev;
  const why = facts.removable
    ? "the kernel marks the device removable"
    : u.ID_BUS === "usb"
    ? "udev: the device is on USB (ID_BUS=usb)"
    : u.ID_USB_DRIVER === "usb-storage"
    ? "udev: USB mass storage (ID_USB_DRIVER=usb-storage)"
    : u.ID_DRIVE_THUMB === "1" || u.ID_DRIVE_FLASH_SD === "1" || u.ID_DRIVE_MEDIA_FLASH === "1"
    ? "udev: a flash drive or card"
    : u.UDISKS_SYSTEM === "0" || u.UDISKS_AUTO === "1"
    ? "udev: udisks treats it as a user device"
    : null;
  return why ? { mount: m, channel: "removable_media", reason: why } : null;
}

/** Where the system facts are read from (tests point these at their own files). */
export interface FactSources {
  sysRoot?: string;
  udevDataDir?: string;
}

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/** Parses udev's database record ("E:KEY=VALUE" lines). */
export function parseUdevRecord(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("E:")) continue;
    const eq = line.indexOf("=");
    if (eq > 2) out[line.slice(2, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** Reads sysfs and udev facts of block device "major:minor" (null for non-block mounts). */
export function readDeviceFacts(device: string, src: FactSources = {}): DeviceFacts | null {
  const sys = src.sysRoot ?? "/sys";
  const major = Number(device.split(":")[0]);
  // Major 0 is an anonymous device (tmpfs, proc, overlay, btrfs subvolumes): no block device.
  if (!Number.isInteger(major) || major === 0) return null;
  let base: string;
  try {
    base = Deno.realPathSync(`${sys}/dev/block/${device}`);
  } catch {
    return null;
  }
  // A partition's `removable` is on its disk, one level up.
  const removable = readText(`${base}/removable`) ?? readText(`${base}/../removable`);
  const udev = readText(`${src.udevDataDir ?? "/run/udev/data"}/b${device}`);
  return { removable: removable?.trim() === "1", udev: udev ? parseUdevRecord(udev) : {} };
}
