/**
 * Exact data match. The admin uploads a CSV of the records to protect (say
 * customer names, SSNs and account numbers); the edge keeps, per cell, only
 * HMAC-SHA-256 under a random per-dictionary key, truncated to 128 bits,
 * with the cell's row and column — never the data. A file matches a row
 * when at least `minColumns` of that row's cells appear in it.
 *
 * Normalisation makes "  John   SMITH " and "john smith" one cell: NFKC,
 * lower case, runs of white space as one space, surrounding punctuation
 * dropped. The scanner tries each word and each run of up to `maxWords`
 * words of the text, but hashes only candidates whose length some cell has.
 *
 * The HMAC key travels with the index to connectors (endpoint DLP must hash
 * what it reads); anyone holding both can test guesses of a cell, so
 * low-entropy columns (a yes/no flag) do not belong in an EDM upload.
 */
import { createHmac, randomBytes } from "node:crypto";
import { InputError } from "../../errors.ts";
import { parseCsv } from "../csv.ts";
import { redactGeneric } from "../redact.ts";
import type { EdmIndex } from "../types.ts";
import type { Detector, Emit } from "./detector.ts";

/** Limits of one EDM upload. */
export const EDM_LIMITS = { maxRows: 100_000, maxColumns: 32, maxCell: 256, maxCells: 500_000 };

const EDGE_PUNCT = /^[\s"'`“”‘’()[\]{}<>.,;:!?]+|[\s"'`“”‘’()[\]{}<>.,;:!?]+$/gu;

/** The normal form of a cell or a candidate from the text. */
export function normaliseCell(value: string): string {
  return value.normalize("NFKC").toLowerCase().replace(/\s+/gu, " ").replace(EDGE_PUNCT, "");
}

/** The truncated HMAC of a normalised cell, as 32 hex digits. */
export function cellHash(key: Uint8Array, normalised: string): string {
  return createHmac("sha256", key).update(normalised, "utf8").digest("hex").slice(0, 32);
}

/**
 * Builds the index of a CSV upload: the first row names the columns; empty
 * cells are skipped. The CSV text is not kept anywhere.
 */
export function buildEdmIndex(csv: string, key?: Uint8Array): EdmIndex {
  const rows = parseCsv(csv, {
    maxRows: EDM_LIMITS.maxRows + 1,
    maxColumns: EDM_LIMITS.maxColumns,
    maxCell: EDM_LIMITS.maxCell,
  });
  if (rows.length < 2) {
    throw new InputError(
      "invalid_csv",
      "Cannot read the CSV file: it needs a header row and at least one data row",
    );
  }
  const k = key ?? new Uint8Array(randomBytes(32));
  const columns = rows[0].map((c, i) => c.trim().slice(0, 64) || `column ${i + 1}`);
  const cells: string[] = [];
  const lengths = new Set<number>();
  let maxWords = 1;
  for (let r = 1; r < rows.length; r++) {
    rows[r].forEach((raw, col) => {
      if (col >= columns.length) return;
      const norm = normaliseCell(raw);
      if (!norm) return;
      lengths.add(norm.length);
      maxWords = Math.max(maxWords, Math.min(8, norm.split(" ").length));
      cells.push(`${cellHash(k, norm)} ${r} ${col}`);
    });
    if (cells.length > EDM_LIMITS.maxCells) {
      throw new InputError(
        "invalid_csv",
        `Cannot read the CSV file: more than ${EDM_LIMITS.maxCells} cells`,
      );
    }
  }
  return {
    key: btoa(String.fromCharCode(...k)),
    columns,
    rows: rows.length - 1,
    maxWords,
    lengths: [...lengths].filter((l) => l <= 256).sort((a, b) => a - b),
    cells,
  };
}

/** Splits text into words with their positions (white space separates; punctuation stays attached). */
function words(text: string): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  const re = /\S+/gu;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push({ start: m.index, end: m.index + m[0].length });
  }
  return out;
}

/** The EDM detector: reports one finding per matched row (at the row's first matched cell). */
export class EdmDetector implements Detector {
  #key: Uint8Array;
  #cells = new Map<string, number[]>();
  #lengths: Set<number>;
  #maxWords: number;
  #minColumns: number;

  constructor(index: EdmIndex, minColumns: number) {
    this.#key = Uint8Array.from(atob(index.key), (c) => c.charCodeAt(0));
    for (const packed of index.cells) {
      const [h, row, col] = packed.split(" ");
      const list = this.#cells.get(h) ?? [];
      list.push(Number(row) * 64 + Number(col));
      this.#cells.set(h, list);
    }
    this.#lengths = new Set(index.lengths);
    this.#maxWords = Math.min(8, index.maxWords);
    this.#minColumns = Math.max(1, Math.min(minColumns, index.columns.length));
  }

  /** Hashes the candidates of `text` and reports each row with enough matched columns. */
  scan(text: string, emit: Emit): void {
    const ws = words(text);
    // row → matched columns, and where the row's first match was.
    const seen = new Map<
      number,
      { cols: Set<number>; start: number; end: number; sample: string }
    >();
    for (let i = 0; i < ws.length; i++) {
      for (let k = 1; k <= this.#maxWords && i + k <= ws.length; k++) {
        const start = ws[i].start, end = ws[i + k - 1].end;
        if (end - start > 300) break;
        const norm = normaliseCell(text.slice(start, end));
        if (!this.#lengths.has(norm.length)) continue;
        const hits = this.#cells.get(cellHash(this.#key, norm));
        if (!hits) continue;
        for (const packed of hits) {
          const row = Math.floor(packed / 64), col = packed % 64;
          let s = seen.get(row);
          if (!s) {
            s = { cols: new Set(), start, end, sample: redactGeneric(norm) };
            seen.set(row, s);
          }
          s.cols.add(col);
        }
      }
    }
    const matched = [...seen.values()].filter((s) => s.cols.size >= this.#minColumns)
      .sort((a, b) => a.start - b.start);
    for (const s of matched) emit(s.start, s.end, s.sample);
  }
}
