/**
 * Text of office documents from their XML parts: Office Open XML (DOCX,
 * XLSX, PPTX) and OpenDocument (ODT, ODS, ODP). Which parts carry text is
 * fixed by the formats; everything else in the container (styles, themes,
 * thumbnails) is ignored, and embedded objects are handed back to the
 * inspector as files of their own.
 */
import type { ZipMember } from "./zip.ts";
import { decodeEntities, xmlText } from "./xml.ts";

const utf8 = new TextDecoder();

/** The office format a container holds, from its member names, or null. */
export function officeKind(names: readonly string[]): "docx" | "xlsx" | "pptx" | "odf" | null {
  const set = new Set(names);
  if (set.has("word/document.xml")) return "docx";
  if (set.has("xl/workbook.xml")) return "xlsx";
  if (set.has("ppt/presentation.xml")) return "pptx";
  if (set.has("content.xml") && set.has("mimetype")) return "odf";
  return null;
}

const WORD = {
  text: ["w:t", "w:delText"],
  breaks: ["w:p", "w:tc", "w:tr"],
  spaces: ["w:tab", "w:br"],
};
const SLIDE = { text: ["a:t"], breaks: ["a:p"] };
const SHARED = { text: ["t"], breaks: ["si"] };
const ODF = {
  text: ["text:p", "text:h"],
  breaks: ["text:p", "text:h", "table:table-row"],
  spaces: ["text:s", "text:tab", "text:line-break"],
};

/**
 * The cell values of one worksheet: inline strings and literal values, tab
 * between cells, newline between rows. A shared-string cell's value is an
 * index into sharedStrings.xml (read separately), so it is skipped.
 */
export function sheetText(xml: string): string {
  const out: string[] = [];
  let i = 0;
  // Next row end and next cell start, each looked up again only once passed,
  // so a long row costs one scan, not one per cell.
  let row = -2;
  let c = -2;
  for (;;) {
    if (row !== -1 && row < i) row = xml.indexOf("</row>", i);
    if (c !== -1 && c < i) c = xml.indexOf("<c", i);
    if (row >= 0 && (c < 0 || row < c)) {
      out.push("\n");
      i = row + 6;
      continue;
    }
    if (c < 0) break;
    const gt = xml.indexOf(">", c);
    if (gt < 0) break;
    const open = xml.slice(c, gt + 1);
    i = gt + 1;
    if (!/^<c[\s>]/.test(open) || open.endsWith("/>")) continue;
    const end = xml.indexOf("</c>", i);
    if (end < 0) break;
    const inner = xml.slice(i, end);
    i = end + 4;
    const shared = /\st="s"/.test(open);
    const vs = inner.indexOf("<v>");
    if (!shared && vs >= 0) {
      const ve = inner.indexOf("</v>", vs);
      if (ve > vs) out.push(decodeEntities(inner.slice(vs + 3, ve)), "\t");
    }
    if (inner.includes("<is>")) out.push(xmlText(inner, SHARED), "\t");
  }
  return out.join("");
}

const sortParts = (a: string, b: string) => a.localeCompare(b, "en", { numeric: true });

/** The texts of an office container, part by part, and the embedded files to inspect further. */
export function officeTexts(
  kind: "docx" | "xlsx" | "pptx" | "odf",
  members: readonly ZipMember[],
): { texts: { part: string; text: string }[]; embedded: ZipMember[] } {
  const texts: { part: string; text: string }[] = [];
  const embedded: ZipMember[] = [];
  const add = (part: string, text: string) => {
    if (text.trim()) texts.push({ part, text });
  };
  for (const m of [...members].sort((a, b) => sortParts(a.name, b.name))) {
    const n = m.name;
    if (/^(word|xl|ppt)\/embeddings\//.test(n) || (kind === "odf" && /^Object \d+\//.test(n))) {
      embedded.push(m);
      continue;
    }
    if (!n.endsWith(".xml")) continue;
    const xml = () => utf8.decode(m.bytes);
    if (
      kind === "docx" &&
      /^word\/(document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml$/.test(n)
    ) {
      add(n, xmlText(xml(), WORD));
    } else if (kind === "xlsx" && n === "xl/sharedStrings.xml") {
      add(n, xmlText(xml(), SHARED));
    } else if (kind === "xlsx" && /^xl\/worksheets\/sheet\d+\.xml$/.test(n)) {
      add(n, sheetText(xml()));
    } else if (
      kind === "pptx" && /^ppt\/(slides\/slide|notesSlides\/notesSlide)\d+\.xml$/.test(n)
    ) {
      add(n, xmlText(xml(), SLIDE));
    } else if (kind === "odf" && (n === "content.xml" || n === "styles.xml")) {
      add(n, xmlText(xml(), ODF));
    }
  }
  return { texts, embedded };
}
