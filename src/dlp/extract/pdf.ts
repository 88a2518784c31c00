/**
 * Text of PDF files through `unpdf` (pdf.js without a canvas): the text
 * layer of every page, pages joined by blank lines. Scanned images without a
 * text layer yield no text; the inspection says so instead of "clean".
 */
import { extractText, getDocumentProxy } from "unpdf";

/** The text of a PDF's pages, or throws when pdf.js cannot read it (damaged, encrypted). */
export async function pdfText(bytes: Uint8Array): Promise<{ text: string; pages: number }> {
  // pdf.js takes ownership of the buffer it is given: hand it a copy.
  // No eval (pdf.js can compile font programs into functions) and no system fonts.
  const options = { isEvalSupported: false, useSystemFonts: false, disableFontFace: true };
  const doc = await getDocumentProxy(bytes.slice(), options as Record<string, unknown>);
  try {
    const { totalPages, text } = await extractText(doc, { mergePages: false });
    return { text: (text as string[]).join("\n\n"), pages: totalPages };
  } finally {
    // Frees pdf.js's worker-side state of this document.
    const task = (doc as unknown as { loadingTask?: { destroy(): Promise<void> } }).loadingTask;
    await task?.destroy().catch(() => {});
  }
}
