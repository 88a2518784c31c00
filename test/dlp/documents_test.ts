/**
 * Inspection of real documents made by LibreOffice (DOCX, XLSX, ODT, PDF),
 * the PDF text cross-checked against poppler's `pdftotext`, archives within
 * their budgets (nesting, a bomb that lies about its size), PPTX parts, and
 * files that have no text.
 */
import assert from "node:assert/strict";
import { zipSync } from "fflate";
import { inspectBytes, Scanner } from "../../src/dlp/mod.ts";
import { pdfText } from "../../src/dlp/extract/pdf.ts";
import { documents, haveLibreOffice } from "./documents.ts";
import { spec } from "./helpers.ts";

const scanner = new Scanner([
  spec({ kind: "credit_card", name: "cards" }),
  spec({ kind: "iban", name: "ibans" }),
  spec({ kind: "us_ssn", name: "ssn" }),
  spec({ kind: "keywords", name: "secret", terms: ["confidential"] }),
]);
const counts = (r: Awaited<ReturnType<typeof inspectBytes>>) =>
  Object.fromEntries(r.matches.map((m) => [m.dictionary, m.count]));
const ALL = { cards: 5, ibans: 2, ssn: 1, secret: 1 };
const enc = (s: string) => new TextEncoder().encode(s);
const lo = { ignore: !haveLibreOffice() };

Deno.test({
  name:
    "documents from LibreOffice: DOCX, ODT, PDF and XLSX with five card numbers, clean ones without",
  ...lo,
  fn: async () => {
    const d = await documents();
    const read = (p: string) => Deno.readFile(p);
    const table: [string, string, Record<string, number>][] = [
      [d.docx, "docx", ALL],
      [d.odt, "odt", ALL],
      [d.pdf, "pdf", ALL],
      [d.xlsx, "xlsx", { cards: 5 }],
      [d.cleanDocx, "docx", {}],
      [d.cleanPdf, "pdf", {}],
    ];
    for (const [path, type, want] of table) {
      const r = await inspectBytes(scanner, await read(path), path);
      assert.equal(r.fileType, type, path);
      assert.deepEqual(counts(r), want, path);
      assert.deepEqual(r.skipped, [], path);
    }
    const r = await inspectBytes(scanner, await read(d.docx));
    const cards = r.matches.find((m) => m.dictionary === "cards")!;
    assert.deepEqual(cards.samples, [
      "4111 **** **** 1111",
      "5555 **** **** 4444",
      "3782 **** *** 0005",
    ]);
  },
});

Deno.test({
  name: "documents: the PDF text we extract is the text pdftotext extracts",
  ...lo,
  fn: async () => {
    const d = await documents();
    for (const path of [d.pdf, d.cleanPdf]) {
      const out = await new Deno.Command("pdftotext", { args: ["-layout", path, "-"] }).output();
      assert.ok(out.success, "pdftotext runs");
      const words = (s: string) => s.split(/\s+/).filter(Boolean);
      const theirs = words(new TextDecoder().decode(out.stdout));
      const ours = words((await pdfText(await Deno.readFile(path))).text);
      assert.deepEqual(ours, theirs, path);
      assert.ok(theirs.length > 10);
    }
  },
});

Deno.test({
  name: "archives: a DOCX inside a ZIP inside a ZIP is inspected; deeper nesting is reported",
  ...lo,
  fn: async () => {
    const d = await documents();
    const docx = await Deno.readFile(d.docx);
    const inner = zipSync({ "q3/refunds.docx": docx, "readme.txt": enc("see attached") });
    const outer = zipSync({ "inner.zip": inner });
    const r = await inspectBytes(scanner, outer, "outer.zip");
    assert.equal(r.fileType, "zip");
    assert.deepEqual(counts(r), ALL);
    const shallow = await inspectBytes(scanner, outer, "outer.zip", {
      maxDepth: 1,
      maxEntries: 100,
      maxFileBytes: 1 << 24,
      maxTotalBytes: 1 << 26,
    });
    assert.deepEqual(counts(shallow), {});
    assert.equal(shallow.truncated, true);
    assert.match(shallow.skipped[0].reason, /nested deeper than 1 levels/);
  },
});

Deno.test("archives: a zip bomb is cut off at the budget, with what was read so far", async () => {
  // 16 MiB of zeros compress to about 16 KiB; the budget allows 2 MiB.
  const zeros = new Uint8Array(16 * 1024 * 1024);
  const bomb = zipSync({ "a.txt": enc("card 4111111111111111"), "zeros.bin": zeros }, { level: 1 });
  assert.ok(bomb.length < 1024 * 1024);
  const r = await inspectBytes(scanner, bomb, "bomb.zip", {
    maxDepth: 3,
    maxEntries: 100,
    maxFileBytes: 2 * 1024 * 1024,
    maxTotalBytes: 2 * 1024 * 1024,
  });
  assert.equal(r.truncated, true);
  assert.deepEqual(counts(r), { cards: 1 });
  assert.ok(r.skipped.some((s) => s.path === "bomb.zip/zeros.bin" && /budget/.test(s.reason)));
});

Deno.test("PPTX slides and notes, XLSX inline strings, ODF-less zips and media files", async () => {
  const slide = (t: string) =>
    enc(
      `<?xml version="1.0"?><p:sld xmlns:a="a" xmlns:p="p"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>${t}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>`,
    );
  const pptx = zipSync({
    "[Content_Types].xml": enc('<?xml version="1.0"?><Types/>'),
    "ppt/presentation.xml": enc("<p:presentation/>"),
    "ppt/slides/slide1.xml": slide("Card 4111 1111 1111 1111"),
    "ppt/slides/slide2.xml": slide("SSN 123-45-6780 &amp; more"),
    "ppt/notesSlides/notesSlide1.xml": slide("confidential"),
  });
  const rp = await inspectBytes(scanner, pptx, "deck.pptx");
  assert.equal(rp.fileType, "pptx");
  assert.deepEqual(counts(rp), { cards: 1, ssn: 1, secret: 1 });

  const sheet =
    `<worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>5555 5555 5555 4444</t></is></c><c r="B1" t="s"><v>0</v></c><c r="C1"><v>378282246310005</v></c></row></sheetData></worksheet>`;
  const xlsx = zipSync({
    "xl/workbook.xml": enc("<workbook/>"),
    "xl/sharedStrings.xml": enc("<sst><si><t>DE89 3704 0044 0532 0130 00</t></si></sst>"),
    "xl/worksheets/sheet1.xml": enc(sheet),
  });
  assert.deepEqual(counts(await inspectBytes(scanner, xlsx, "book.xlsx")), { cards: 2, ibans: 1 });

  // A PNG has no text even when its bytes spell a card number.
  const png = new Uint8Array([
    0x89,
    0x50,
    0x4e,
    0x47,
    0x0d,
    0x0a,
    0x1a,
    0x0a,
    0,
    0,
    0,
    13,
    0x49,
    0x48,
    0x44,
    0x52,
    ...enc("4111111111111111"),
  ]);
  const ri = await inspectBytes(scanner, png, "x.png");
  assert.equal(ri.fileType, "png");
  assert.deepEqual(counts(ri), {});
  assert.match(ri.skipped[0].reason, /image\/png has no text/);
  // UTF-16 text with a byte-order mark is text.
  const u16 = new Uint8Array([
    0xff,
    0xfe,
    ...[..."IBAN GB82WEST12345698765432"].flatMap((c) => [c.charCodeAt(0), 0]),
  ]);
  assert.deepEqual(counts(await inspectBytes(scanner, u16, "u16.txt")), { ibans: 1 });
  // Garbage is not text and never throws.
  const junk = crypto.getRandomValues(new Uint8Array(4096));
  const rj = await inspectBytes(scanner, junk, "junk.bin");
  assert.deepEqual(counts(rj), {});
  const damaged = pptx.slice(0, 200);
  await inspectBytes(scanner, damaged, "cut.zip");
});
