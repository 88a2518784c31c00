/**
 * Real office documents for the DLP tests and the benchmark, made by
 * Debian's LibreOffice (`soffice --headless --convert-to …`) from plain text
 * and CSV. Made once and cached under the system temp directory by a hash
 * of their sources, so the suite pays for LibreOffice once per machine, not
 * per test or per run; each conversion uses its own LibreOffice profile so
 * parallel runs do not collide.
 */
import { createHash } from "node:crypto";

/** Five card numbers of five brands, two IBANs, one SSN, one keyword. */
export const SENSITIVE_TEXT = [
  "Quarterly refund list — CONFIDENTIAL",
  "",
  "Refund 1: Visa 4111 1111 1111 1111 to Alice Martin.",
  "Refund 2: Mastercard 5555 5555 5555 4444 to Bruno Schmidt.",
  "Refund 3: Amex 3782 822463 10005 to Chloe Dubois.",
  "Refund 4: Discover 6011 1111 1111 1117 to Dmitri Ivanov.",
  "Refund 5: JCB 3530 1113 3330 0000 to Eva Rossi.",
  "",
  "Transfer to DE89 3704 0044 0532 0130 00 and GB82 WEST 1234 5698 7654 32.",
  "Employee SSN on file: 123-45-6780.",
].join("\n");

/** The same kind of document without anything sensitive. */
export const CLEAN_TEXT = [
  "Quarterly newsletter",
  "",
  "The office moves to the third floor on Monday 12 May.",
  "Order number 1234 5678 and ticket 2024-05-12 are unrelated numbers.",
  "Lunch is at noon; bring 2 forms of ID 42 and 7.",
].join("\n");

/** A spreadsheet with the card numbers as text cells, beside other columns. */
export const SENSITIVE_CSV = [
  "name,card,amount",
  '"Alice Martin","4111 1111 1111 1111",120.50',
  '"Bruno Schmidt","5555 5555 5555 4444",99.00',
  '"Chloe Dubois","3782 822463 10005",10.00',
  '"Dmitri Ivanov","6011 1111 1111 1117",7.25',
  '"Eva Rossi","3530 1113 3330 0000",1.00',
].join("\n");

/** Paths of the generated documents. */
export interface Documents {
  dir: string;
  docx: string;
  cleanDocx: string;
  pdf: string;
  cleanPdf: string;
  xlsx: string;
  odt: string;
}

/** True when LibreOffice is installed (the test command installs it). */
export function haveLibreOffice(): boolean {
  try {
    Deno.statSync("/usr/bin/soffice");
    return true;
  } catch {
    return false;
  }
}

async function convert(dir: string, to: string, files: string[]): Promise<void> {
  const profile = await Deno.makeTempDir({ prefix: "pcl-lo-profile-" });
  try {
    const out = await new Deno.Command("soffice", {
      args: [
        `-env:UserInstallation=file://${profile}`,
        "--headless",
        "--norestore",
        "--convert-to",
        to,
        "--outdir",
        dir,
        ...files,
      ],
      stdout: "piped",
      stderr: "piped",
      env: { HOME: profile },
    }).output();
    if (!out.success) {
      throw new Error(
        `LibreOffice could not convert to ${to}: ${new TextDecoder().decode(out.stderr)}`,
      );
    }
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

let made: Promise<Documents> | null = null;

/** The documents, made on first use (and cached on disk across runs). */
export function documents(): Promise<Documents> {
  return made ??= make();
}

async function make(): Promise<Documents> {
  const key = createHash("sha256").update(SENSITIVE_TEXT + CLEAN_TEXT + SENSITIVE_CSV + "v1")
    .digest("hex").slice(0, 16);
  const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/portcullis-dlp-docs-${key}`;
  const docs: Documents = {
    dir,
    docx: `${dir}/refunds.docx`,
    cleanDocx: `${dir}/newsletter.docx`,
    pdf: `${dir}/refunds.pdf`,
    cleanPdf: `${dir}/newsletter.pdf`,
    xlsx: `${dir}/cards.xlsx`,
    odt: `${dir}/refunds.odt`,
  };
  const all = [docs.docx, docs.cleanDocx, docs.pdf, docs.cleanPdf, docs.xlsx, docs.odt];
  const exists = (p: string) => Deno.stat(p).then(() => true, () => false);
  if ((await Promise.all(all.map(exists))).every(Boolean)) return docs;
  // Build in a private directory and rename it into place, so a parallel run
  // never sees half-made files.
  const work = await Deno.makeTempDir({ prefix: "pcl-dlp-docs-" });
  await Deno.writeTextFile(`${work}/refunds.txt`, SENSITIVE_TEXT);
  await Deno.writeTextFile(`${work}/newsletter.txt`, CLEAN_TEXT);
  await Deno.writeTextFile(`${work}/cards.csv`, SENSITIVE_CSV);
  const txt = [`${work}/refunds.txt`, `${work}/newsletter.txt`];
  await convert(work, "docx:MS Word 2007 XML", txt);
  await convert(work, "pdf", txt);
  await convert(work, "odt", [`${work}/refunds.txt`]);
  await convert(work, "xlsx:Calc MS Excel 2007 XML", [`${work}/cards.csv`]);
  try {
    await Deno.rename(work, dir);
  } catch {
    // Another run won the race: use its files.
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return docs;
}
