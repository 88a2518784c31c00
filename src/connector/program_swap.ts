/**
 * The connector's program files during an update, all in one directory so
 * every step is a rename on one file system:
 *
 *   <program>           what runs (the installed `portcullis`)
 *   <program>.new       the release being installed (written, synced, then renamed)
 *   <program>.previous  the version before the last update, kept for rollback
 *
 * Installing hard-links the running program to `.previous` (a copy where
 * links are not possible) and renames `.new` over the program: the rename is
 * atomic, so a crash at any point leaves either the old or the new program
 * in place, never half of one. Rolling back renames `.previous` back.
 */

/** The three paths of a program. */
export function programFiles(program: string): { next: string; previous: string } {
  return { next: `${program}.new`, previous: `${program}.previous` };
}

async function syncDir(path: string): Promise<void> {
  const dir = path.slice(0, Math.max(path.lastIndexOf("/"), 1));
  try {
    const f = await Deno.open(dir, { read: true });
    try {
      await f.sync();
    } finally {
      f.close();
    }
  } catch { /* not every file system syncs a directory: the renames are still atomic */ }
}

/** Installs `bytes` as `program`, keeping the running one as `.previous`. */
export async function installProgram(program: string, bytes: Uint8Array): Promise<void> {
  const { next, previous } = programFiles(program);
  await Deno.remove(next).catch(() => {});
  const f = await Deno.open(next, { write: true, createNew: true, mode: 0o755 });
  try {
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    await f.sync();
  } finally {
    f.close();
  }
  await Deno.chmod(next, 0o755);
  await Deno.remove(previous).catch(() => {});
  try {
    await Deno.link(program, previous);
  } catch {
    await Deno.copyFile(program, previous);
  }
  await Deno.rename(next, program);
  await syncDir(program);
}

/** Puts `.previous` back as the program; false when there is none. */
export async function restorePrevious(program: string): Promise<boolean> {
  const { previous } = programFiles(program);
  try {
    await Deno.stat(previous);
  } catch {
    return false;
  }
  await Deno.rename(previous, program);
  await syncDir(program);
  return true;
}
