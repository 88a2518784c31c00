/**
 * Inspecting a file: what it is (by content, with `file-type`, never by its
 * name), its text (plain text, PDF, office documents, the members of ZIP
 * archives, recursively), and what the scanner finds in all of it together.
 * Budgets bound the work a hostile file can cause: nesting depth, members,
 * bytes inflated. Whatever could not be looked at is listed in `skipped`, so
 * "nothing found" and "could not look" never read the same.
 */
import { fileTypeFromBuffer } from "file-type";
import { officeKind, officeTexts } from "./extract/office.ts";
import { pdfText } from "./extract/pdf.ts";
import { decodeText } from "./extract/text.ts";
import { isZip, readZip } from "./extract/zip.ts";
import type { Scanner, ScanTally } from "./scanner.ts";
import type { DictionaryMatch } from "./types.ts";

/** Limits of one inspection. */
export interface InspectBudget {
  /** Archive nesting allowed (a ZIP in a ZIP is depth 2). */
  maxDepth: number;
  /** Members read per archive. */
  maxEntries: number;
  /** Bytes of the file itself and of any one member. */
  maxFileBytes: number;
  /** Bytes inflated from all archives together. */
  maxTotalBytes: number;
}

/** The default budget: 3 levels of archives, 1,000 members, 64 MiB a file, 256 MiB in all. */
export const DEFAULT_BUDGET: InspectBudget = {
  maxDepth: 3,
  maxEntries: 1000,
  maxFileBytes: 64 * 1024 * 1024,
  maxTotalBytes: 256 * 1024 * 1024,
};

/** The outcome of inspecting one file. */
export interface Inspection {
  /** The detected type of the outer file: "pdf", "docx", "xlsx", "zip", "text", "png", … or "binary". */
  fileType: string;
  size: number;
  /** Characters of text scanned in all. */
  textChars: number;
  matches: DictionaryMatch[];
  /** Parts that were not inspected, with why. */
  skipped: { path: string; reason: string }[];
  /** True when a budget stopped part of the inspection. */
  truncated: boolean;
}

/** Types that are media or executables: not text, not containers, nothing to extract. */
const OPAQUE = /^(image|audio|video|font)\//;

/** The type of `bytes` by content: an office or zip container, a file-type answer, text or binary. */
export async function sniffType(bytes: Uint8Array): Promise<{ ext: string; mime: string }> {
  const ft = await fileTypeFromBuffer(bytes.subarray(0, 64 * 1024)).catch(() => undefined);
  if (ft) return { ext: ft.ext, mime: ft.mime };
  if (isZip(bytes)) return { ext: "zip", mime: "application/zip" };
  if (bytes.length === 0) return { ext: "empty", mime: "application/x-empty" };
  return decodeText(bytes.subarray(0, 64 * 1024)) !== null
    ? { ext: "text", mime: "text/plain" }
    : { ext: "binary", mime: "application/octet-stream" };
}

class Run {
  inflated = 0;
  textChars = 0;
  truncated = false;
  skipped: { path: string; reason: string }[] = [];
  constructor(
    readonly scanner: Scanner,
    readonly tally: ScanTally,
    readonly budget: InspectBudget,
  ) {}

  scan(text: string) {
    this.textChars += text.length;
    this.scanner.scanText(text, this.tally);
  }

  skip(path: string, reason: string) {
    if (this.skipped.length < 100) this.skipped.push({ path, reason });
  }

  async file(path: string, bytes: Uint8Array, depth: number): Promise<string> {
    if (bytes.length > this.budget.maxFileBytes) {
      this.truncated = true;
      this.skip(path, `larger than the inspection limit of ${this.budget.maxFileBytes} bytes`);
      return "too_large";
    }
    const type = await sniffType(bytes);
    if (type.ext === "pdf") {
      try {
        const { text } = await pdfText(bytes);
        if (!text.trim()) this.skip(path, "PDF without a text layer");
        this.scan(text);
      } catch (err) {
        this.skip(path, `cannot read the PDF: ${(err as Error).message}`);
      }
      return "pdf";
    }
    if (isZip(bytes)) return await this.archive(path, bytes, depth, type.ext);
    if (type.ext === "text" || type.mime.startsWith("text/") || type.ext === "xml") {
      const text = decodeText(bytes);
      if (text !== null) this.scan(text);
      else this.skip(path, "not readable as text");
      return "text";
    }
    if (type.ext === "empty") return "empty";
    this.skip(
      path,
      OPAQUE.test(type.mime) ? `${type.mime} has no text` : `${type.mime} is not inspected`,
    );
    return type.ext;
  }

  async archive(path: string, bytes: Uint8Array, depth: number, ext: string): Promise<string> {
    if (depth >= this.budget.maxDepth) {
      this.truncated = true;
      this.skip(path, `archive nested deeper than ${this.budget.maxDepth} levels`);
      return ext;
    }
    const zip = readZip(bytes, {
      maxEntries: this.budget.maxEntries,
      maxEntryBytes: this.budget.maxFileBytes,
      maxTotalBytes: Math.max(0, this.budget.maxTotalBytes - this.inflated),
    });
    this.inflated += zip.total;
    if (zip.truncated) this.truncated = true;
    for (const s of zip.skipped) this.skip(`${path}/${s.name}`, s.reason);
    const kind = officeKind(zip.members.map((m) => m.name));
    if (kind) {
      const { texts, embedded } = officeTexts(kind, zip.members);
      for (const t of texts) this.scan(t.text);
      for (const e of embedded) await this.file(`${path}/${e.name}`, e.bytes, depth + 1);
      return kind === "odf" ? (ext === "zip" ? "odf" : ext) : kind;
    }
    for (const m of zip.members) await this.file(`${path}/${m.name}`, m.bytes, depth + 1);
    return "zip";
  }
}

/** Inspects one file's bytes with `scanner`; `name` labels skipped parts. */
export async function inspectBytes(
  scanner: Scanner,
  bytes: Uint8Array,
  name = "file",
  budget: InspectBudget = DEFAULT_BUDGET,
): Promise<Inspection> {
  const run = new Run(scanner, scanner.tally(), budget);
  const fileType = await run.file(name, bytes, 0);
  return {
    fileType,
    size: bytes.length,
    textChars: run.textChars,
    matches: run.tally.matches(),
    skipped: run.skipped,
    truncated: run.truncated,
  };
}
