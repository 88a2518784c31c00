/**
 * Text out of office XML without a DOM: the character data of chosen
 * elements (`<w:t>`, `<a:t>`, `<t>`, `<v>`), with a line break at each end of
 * a paragraph or row element so words of adjacent paragraphs do not run
 * together. One left-to-right pass over the markup (indexOf only), so a
 * hostile document costs time in proportion to its size.
 */

const ENTITIES: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

/** Replaces the five XML entities and numeric character references. */
export function decodeEntities(s: string): string {
  if (!s.includes("&")) return s;
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-z]{2,4});/g, (m, e: string) => {
    if (e[0] === "#") {
      const cp = e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return ENTITIES[e] ?? m;
  });
}

/** What to take from a document part. */
export interface XmlTextSpec {
  /** Elements whose character data is text (qualified names, e.g. "w:t"). */
  text: readonly string[];
  /** Elements whose end starts a new line (e.g. "w:p", "row"). */
  breaks: readonly string[];
  /** Empty elements that stand for a tab or space (e.g. "w:tab"). */
  spaces?: readonly string[];
}

/** The text of `xml` per `spec`. */
export function xmlText(xml: string, spec: XmlTextSpec): string {
  const text = new Set(spec.text);
  const breaks = new Set(spec.breaks);
  const spaces = new Set(spec.spaces ?? []);
  const out: string[] = [];
  let i = 0;
  let inText = 0;
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    if (lt < 0) break;
    if (inText > 0 && lt > i) out.push(decodeEntities(xml.slice(i, lt)));
    if (xml.startsWith("<![CDATA[", lt)) {
      const end = xml.indexOf("]]>", lt + 9);
      if (inText > 0) out.push(xml.slice(lt + 9, end < 0 ? xml.length : end));
      i = end < 0 ? xml.length : end + 3;
      continue;
    }
    const gt = xml.indexOf(">", lt + 1);
    if (gt < 0) break;
    const tag = xml.slice(lt + 1, gt);
    i = gt + 1;
    if (tag[0] === "?" || tag[0] === "!") continue;
    const closing = tag[0] === "/";
    const selfClosing = tag.endsWith("/");
    const nameEnd = tag.search(/[\s/>]|$/);
    const name = closing ? tag.slice(1).trim() : tag.slice(0, nameEnd === 0 ? tag.length : nameEnd);
    if (closing) {
      if (text.has(name) && inText > 0) inText--;
      if (breaks.has(name)) out.push("\n");
      continue;
    }
    if (spaces.has(name)) out.push(name.endsWith("tab") ? "\t" : " ");
    if (selfClosing) {
      if (breaks.has(name)) out.push("\n");
      continue;
    }
    if (text.has(name)) inText++;
  }
  return out.join("");
}
