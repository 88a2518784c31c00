/**
 * The quarantine: where a blocked file goes when it is taken off the medium.
 * Files are kept under the connector's data directory (mode 0700, files
 * 0600, owned by the connector's user), each beside a small JSON record of
 * where it came from and why; the record holds no content. Only someone
 * with the connector's privileges can get a file back.
 */
import { join } from "node:path";

/** One quarantined file's record. */
export interface QuarantineRecord {
  id: string;
  originalPath: string;
  sha256: string;
  size: number;
  rule: string | null;
  at: string;
}

/** The quarantine directory. */
export class Quarantine {
  constructor(readonly dir: string) {}

  /** Keeps `bytes` and the record; returns the stored file's path. */
  put(rec: QuarantineRecord, bytes: Uint8Array): string {
    Deno.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    Deno.chmodSync(this.dir, 0o700);
    const file = join(this.dir, `${rec.id}.bin`);
    Deno.writeFileSync(file, bytes, { mode: 0o600, createNew: true });
    Deno.writeTextFileSync(join(this.dir, `${rec.id}.json`), JSON.stringify(rec, null, 2) + "\n", {
      mode: 0o600,
    });
    return file;
  }

  /** The records, newest first. */
  list(): QuarantineRecord[] {
    const out: QuarantineRecord[] = [];
    try {
      for (const e of Deno.readDirSync(this.dir)) {
        if (!e.name.endsWith(".json")) continue;
        try {
          out.push(JSON.parse(Deno.readTextFileSync(join(this.dir, e.name))));
        } catch { /* a damaged record is skipped */ }
      }
    } catch { /* no quarantine yet */ }
    return out.sort((a, b) => b.at.localeCompare(a.at));
  }
}
