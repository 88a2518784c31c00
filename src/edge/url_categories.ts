/**
 * The URL category lists as data files: every `*.txt` of the shipped
 * directory, overridden file by file by the data directory's (an admin edits
 * the copy there; a new file is a new category).
 *
 * An edit takes effect without a restart: `current()` looks at the files'
 * names, sizes and modification times at most once per `checkEveryMs` (a
 * directory listing and a stat per file, so the request path pays a few
 * microseconds a second at most) and re-reads them when any changed. A file
 * that no longer parses keeps its previous list (and is logged), so a
 * half-saved edit never empties a category the rules rely on.
 */
import type { Clock } from "../clock.ts";
import { logger } from "../log.ts";
import { type CategoryLists, isCategoryName, parseCategoryList } from "../proxy/url_policy.ts";

const log = logger("edge.web.categories");

/** How often the files are looked at, at most (2 s). */
export const CATEGORY_CHECK_MS = 2000;

interface CategoryFile {
  name: string;
  path: string;
  stamp: string;
}

/** The category files of `dirs`, later directories replacing earlier ones by name. */
function listFiles(dirs: string[]): CategoryFile[] {
  const out = new Map<string, CategoryFile>();
  for (const dir of dirs) {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      continue;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (!e.isFile || !e.name.endsWith(".txt")) continue;
      const name = e.name.slice(0, -4);
      if (!isCategoryName(name)) continue;
      const path = `${dir}/${e.name}`;
      try {
        const st = Deno.statSync(path);
        out.set(name, { name, path, stamp: `${st.size}:${st.mtime?.getTime() ?? 0}:${st.ino}` });
      } catch {
        // removed while we looked
      }
    }
  }
  return [...out.values()];
}

/** Category lists read from files and re-read when the files change. */
export class CategorySource {
  #lists: ReadonlyMap<string, readonly string[]> = new Map();
  #fingerprint = "";
  #checkedAt = -Infinity;

  private constructor(
    private dirs: string[],
    private clock: Pick<Clock, "monotonic">,
    private checkEveryMs: number,
  ) {}

  /**
   * Reads the lists of `dirs` now; a file that does not parse is an error
   * here (at start), not later.
   */
  static load(
    dirs: string[],
    clock: Pick<Clock, "monotonic">,
    checkEveryMs = CATEGORY_CHECK_MS,
  ): CategorySource {
    const s = new CategorySource(dirs, clock, checkEveryMs);
    s.#reload(true);
    return s;
  }

  /** The lists in force (a new Map object after every change). */
  current(): CategoryLists {
    const now = this.clock.monotonic();
    if (now - this.#checkedAt >= this.checkEveryMs) {
      this.#checkedAt = now;
      this.#reload(false);
    }
    return this.#lists;
  }

  #reload(strict: boolean): void {
    const files = listFiles(this.dirs);
    const fingerprint = files.map((f) => `${f.name}=${f.path}@${f.stamp}`).join("\n");
    if (fingerprint === this.#fingerprint) return;
    const next = new Map<string, readonly string[]>();
    for (const f of files) {
      try {
        next.set(f.name, parseCategoryList(f.name, Deno.readTextFileSync(f.path)));
      } catch (e) {
        if (strict) throw e;
        const kept = this.#lists.get(f.name);
        log.warn("Cannot read an edited category file; keeping its previous list", {
          file: f.path,
          error: (e as Error).message,
        });
        if (kept) next.set(f.name, kept);
      }
    }
    if (!strict) {
      log.info("URL categories reloaded", { categories: next.size });
    }
    this.#fingerprint = fingerprint;
    this.#lists = next;
  }
}
