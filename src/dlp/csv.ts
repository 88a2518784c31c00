/**
 * RFC 4180 CSV reading for exact-data-match uploads: quoted fields with
 * doubled quotes, CRLF or LF line ends, one pass, bounded by the caller's
 * row and cell limits. A malformed file is refused with the line it broke on.
 */
import { InputError } from "../errors.ts";

/** Limits of one CSV read. */
export interface CsvLimits {
  maxRows: number;
  maxColumns: number;
  maxCell: number;
}

/** Parses `text` into rows of cells; throws an InputError naming the line on malformed input. */
export function parseCsv(text: string, limits: CsvLimits): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  let line = 1;
  let quoteLine = 1;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const fail = (why: string): never => {
    throw new InputError("invalid_csv", `Cannot read the CSV file: line ${line}: ${why}`);
  };
  const endCell = () => {
    if (cell.length > limits.maxCell) fail(`a cell is longer than ${limits.maxCell} characters`);
    row.push(cell);
    cell = "";
    if (row.length > limits.maxColumns) fail(`more than ${limits.maxColumns} columns`);
  };
  const endRow = () => {
    endCell();
    if (!(row.length === 1 && row[0] === "")) rows.push(row);
    row = [];
    if (rows.length > limits.maxRows) fail(`more than ${limits.maxRows} rows`);
  };
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const nx = text[i];
        if (nx !== undefined && nx !== "," && nx !== "\n" && nx !== "\r") {
          fail("a quoted cell continues after its closing quote");
        }
        continue;
      }
      if (c === "\n") line++;
      cell += c;
      i++;
      continue;
    }
    if (c === '"' && cell === "") {
      quoted = true;
      quoteLine = line;
      i++;
    } else if (c === ",") {
      endCell();
      i++;
    } else if (c === "\r" || c === "\n") {
      endRow();
      i += c === "\r" && text[i + 1] === "\n" ? 2 : 1;
      line++;
    } else {
      cell += c;
      i++;
    }
  }
  if (quoted) {
    line = quoteLine;
    fail("a quoted cell is not closed");
  }
  if (cell !== "" || row.length) endRow();
  return rows;
}
