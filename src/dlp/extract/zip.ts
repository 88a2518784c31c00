/**
 * ZIP members with budgets, for archives and for the containers of office
 * documents. Members are inflated as a stream (fflate's `Unzip`) and every
 * output byte is counted, so a "zip bomb" whose headers lie about sizes is
 * cut off at the budget instead of filling memory. A member that cannot be
 * read (encrypted, unknown compression) is listed as skipped with the reason.
 */
import { Unzip, UnzipInflate } from "fflate";

/** What one archive read may cost. */
export interface ZipBudget {
  /** Most members read. */
  maxEntries: number;
  /** Most bytes of one member. */
  maxEntryBytes: number;
  /** Most bytes of all members together (shared with nested archives by the caller). */
  maxTotalBytes: number;
}

/** A member that was read. */
export interface ZipMember {
  name: string;
  bytes: Uint8Array;
}

/** The result of reading an archive. */
export interface ZipRead {
  members: ZipMember[];
  skipped: { name: string; reason: string }[];
  /** Bytes inflated, to charge against the caller's budget. */
  total: number;
  /** True when a budget cut the read short. */
  truncated: boolean;
}

/** True when `bytes` start with a ZIP local file header or an empty archive's end record. */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b &&
    ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6));
}

/** Reads the members of a ZIP archive within `budget`. */
export function readZip(data: Uint8Array, budget: ZipBudget): ZipRead {
  const members: ZipMember[] = [];
  const skipped: { name: string; reason: string }[] = [];
  let total = 0;
  let truncated = false;
  let seen = 0;
  const uz = new Unzip((file) => {
    seen++;
    if (file.name.endsWith("/")) return;
    if (truncated || seen > budget.maxEntries) {
      truncated = true;
      return;
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    let cut = false;
    file.ondata = (err, chunk, final) => {
      if (cut) return;
      if (err) {
        skipped.push({ name: file.name, reason: `cannot inflate: ${err.message}` });
        cut = true;
        return;
      }
      size += chunk.length;
      total += chunk.length;
      if (size > budget.maxEntryBytes || total > budget.maxTotalBytes) {
        cut = true;
        truncated = true;
        skipped.push({ name: file.name, reason: "larger than the inspection budget" });
        file.terminate();
        return;
      }
      chunks.push(chunk);
      if (final) {
        const out = new Uint8Array(size);
        let off = 0;
        for (const c of chunks) {
          out.set(c, off);
          off += c.length;
        }
        members.push({ name: file.name, bytes: out });
      }
    };
    try {
      file.start();
    } catch (err) {
      skipped.push({ name: file.name, reason: `cannot read: ${(err as Error).message}` });
    }
  });
  uz.register(UnzipInflate);
  try {
    uz.push(data, true);
  } catch (err) {
    skipped.push({ name: "(archive)", reason: `damaged archive: ${(err as Error).message}` });
  }
  return { members, skipped, total, truncated };
}
