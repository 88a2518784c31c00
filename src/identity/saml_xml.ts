/**
 * Strict, bounded XML reading for SAML documents: one DOM parser (the
 * `@xmldom/xmldom` that node-saml itself uses) with every parser complaint
 * treated as fatal, no DTDs, namespace-aware XPath, and the xs:dateTime form
 * SAML requires. Nothing here looks at signatures: node-saml and xml-crypto
 * verify those; this module only reads structure and values.
 */
import { DOMParser } from "@xmldom/xmldom";
import xpath from "xpath";

/** SAML and XML-DSig namespace URIs, with the prefixes the XPaths below use. */
export const NS = {
  samlp: "urn:oasis:names:tc:SAML:2.0:protocol",
  saml: "urn:oasis:names:tc:SAML:2.0:assertion",
  md: "urn:oasis:names:tc:SAML:2.0:metadata",
  ds: "http://www.w3.org/2000/09/xmldsig#",
} as const;

const select = xpath.useNamespaces(NS);

/** Thrown by {@link parseXmlStrict}; callers turn it into their own coded error. */
export class XmlReadError extends Error {}

/**
 * Deepest element nesting accepted. SAML messages nest about ten levels;
 * the canonicalisation and XPath code downstream recurse per level and slow
 * down sharply on thousands of levels, so deeper documents are refused.
 */
export const MAX_XML_DEPTH = 64;

/**
 * Parses `text` as one XML document, refusing a DOCTYPE (SAML forbids DTDs,
 * and they are the door to entity-expansion attacks), any warning or error
 * the parser reports (xmldom otherwise repairs broken input silently), and
 * nesting deeper than {@link MAX_XML_DEPTH}.
 */
export function parseXmlStrict(text: string): Document {
  if (/<!DOCTYPE/i.test(text)) throw new XmlReadError("it contains a DOCTYPE, which SAML forbids");
  const problems: string[] = [];
  const note = (m: string) => problems.push(m.replace(/^\[xmldom \w+\]\s*/, "").split("\n")[0]);
  let doc: Document | undefined;
  try {
    doc = new DOMParser({
      locator: {},
      errorHandler: { warning: note, error: note, fatalError: note },
    }).parseFromString(text, "text/xml") as unknown as Document;
  } catch (e) {
    problems.push(e instanceof Error ? e.message : String(e));
  }
  if (problems.length) throw new XmlReadError(`it is not well-formed XML (${problems[0]})`);
  if (!doc?.documentElement) throw new XmlReadError("it is not an XML document");
  if (depthExceeds(doc.documentElement, MAX_XML_DEPTH)) {
    throw new XmlReadError(`it nests elements more than ${MAX_XML_DEPTH} levels deep`);
  }
  return doc;
}

/** True when elements under `root` nest deeper than `max` (iterative: no recursion on hostile input). */
function depthExceeds(root: Element, max: number): boolean {
  let depth = 1;
  let node: Node = root;
  for (;;) {
    const child = firstElement(node.firstChild);
    if (child) {
      if (++depth > max) return true;
      node = child;
      continue;
    }
    for (;;) {
      if (node === root) return false;
      const next = firstElement(node.nextSibling);
      if (next) {
        node = next;
        break;
      }
      node = node.parentNode!;
      depth--;
    }
  }
}

function firstElement(n: Node | null): Node | null {
  while (n && n.nodeType !== 1) n = n.nextSibling;
  return n;
}

/** Elements matching `path` (prefixes from {@link NS}) under `node`. */
export function elements(node: Node, path: string): Element[] {
  const r = select(path, node);
  return Array.isArray(r) ? r.filter((n): n is Element => (n as Node).nodeType === 1) : [];
}

/** Direct children of `parent` named `local` in namespace `ns`. */
export function children(parent: Element, ns: string, local: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (
      n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === local
    ) {
      out.push(n as Element);
    }
  }
  return out;
}

/** The single direct child `local` in `ns`, `undefined` when absent; throws when repeated. */
export function onlyChild(parent: Element, ns: string, local: string): Element | undefined {
  const found = children(parent, ns, local);
  if (found.length > 1) {
    throw new XmlReadError(`it has ${found.length} ${local} elements where one is allowed`);
  }
  return found[0];
}

/** An attribute's value, `undefined` when the attribute is absent. */
export function attr(el: Element, name: string): string | undefined {
  return el.hasAttribute(name) ? el.getAttribute(name) ?? undefined : undefined;
}

/** The text content of `el`, trimmed. */
export function text(el: Element): string {
  return (el.textContent ?? "").trim();
}

/**
 * Peer-supplied text made safe for an error sentence (and so an audit log):
 * control characters become spaces and long values are cut with "…".
 */
export function printable(value: string, max = 120): string {
  // deno-lint-ignore no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f]+/g, " ");
  return clean.length > max ? clean.slice(0, max) + "…" : clean;
}

// xs:dateTime in UTC as SAML core §1.3.3 requires ("Z", no offset); fixed
// shape, no nested quantifiers, so matching is linear in the input.
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/;

/** Milliseconds since the epoch for a SAML UTC xs:dateTime, or `null` when it is not one. */
export function parseSamlInstant(value: string): number | null {
  const m = DATE_TIME.exec(value);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return null;
  const ms = Math.floor(Number(`0.${m[7] ?? "0"}`) * 1000);
  const t = Date.UTC(y, mo - 1, d, h, mi, Math.min(s, 59), ms);
  return new Date(t).getUTCDate() === d ? t : null;
}
