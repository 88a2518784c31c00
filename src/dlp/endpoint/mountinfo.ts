/**
 * /proc/self/mountinfo, parsed (proc(5)): one line per mount with its id,
 * parent, device number, root, mount point, options, then after " - " the
 * filesystem type, source and super-block options. Paths escape space, tab,
 * newline and backslash as octal (\040).
 */

/** One mount. */
export interface MountEntry {
  id: number;
  parentId: number;
  /** "major:minor" of the filesystem's device. */
  device: string;
  root: string;
  mountPoint: string;
  options: string[];
  fsType: string;
  source: string;
}

const unescape = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses mountinfo text; malformed lines are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const [left, right] = line.split(" - ");
    if (right === undefined) continue;
    const f = left.split(" ");
    const g = right.split(" ");
    if (f.length < 6 || g.length < 2) continue;
    const id = Number(f[0]), parentId = Number(f[1]);
    if (!Number.isInteger(id) || !Number.isInteger(parentId) || !/^\d+:\d+$/.test(f[2])) continue;
    out.push({
      id,
      parentId,
      device: f[2],
      root: unescape(f[3]),
      mountPoint: unescape(f[4]),
      options: f[5].split(","),
      fsType: g[0],
      source: unescape(g[1]),
    });
  }
  return out;
}
