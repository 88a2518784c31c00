/**
 * What the proxy answers instead of the origin: the block page and the
 * caution interstitial, in the user's language (Accept-Language: en, de,
 * fr), naming the rule; API clients (Accept without text/html) get JSON with
 * a machine-readable code instead. Every value is HTML-escaped.
 */

/** Languages the pages speak. */
export type PageLang = "en" | "de" | "fr";

/** Why the proxy answers itself. */
export interface PageReason {
  /** "url_blocked", "caution", "dlp_blocked", "origin_certificate_invalid", "origin_refused", "port_not_allowed", … */
  code: string;
  host: string;
  url: string;
  rule: string | null;
  /** Extra detail (certificate error, DLP matches), already free of sensitive values. */
  detail?: string;
  /** For caution: the link that acknowledges and continues. */
  continueUrl?: string;
}

const TEXT: Record<PageLang, Record<string, string>> = {
  en: {
    title: "Access blocked",
    cautionTitle: "Caution",
    url_blocked: "Your organisation's web policy does not allow this site.",
    dlp_blocked: "This upload contains sensitive data and was blocked.",
    origin_certificate_invalid:
      "The site's certificate could not be verified, so the connection was refused.",
    port_not_allowed: "The proxy connects to web ports (80 and 443) only.",
    origin_unreachable: "The site could not be reached.",
    origin_refused: "The web proxy does not connect to this address: it is not on the internet.",
    caution: "Your organisation asks you to take care with this site.",
    rule: "Rule",
    site: "Site",
    detail: "Detail",
    continue: "Continue to the site",
  },
  de: {
    title: "Zugriff gesperrt",
    cautionTitle: "Vorsicht",
    url_blocked: "Die Web-Richtlinie Ihrer Organisation erlaubt diese Seite nicht.",
    dlp_blocked: "Dieser Upload enthält vertrauliche Daten und wurde gesperrt.",
    origin_certificate_invalid:
      "Das Zertifikat der Seite konnte nicht geprüft werden; die Verbindung wurde abgelehnt.",
    port_not_allowed: "Der Proxy verbindet nur zu Web-Ports (80 und 443).",
    origin_unreachable: "Die Seite ist nicht erreichbar.",
    origin_refused: "Der Web-Proxy verbindet nicht zu dieser Adresse: sie liegt nicht im Internet.",
    caution: "Ihre Organisation bittet Sie, bei dieser Seite vorsichtig zu sein.",
    rule: "Regel",
    site: "Seite",
    detail: "Einzelheiten",
    continue: "Weiter zur Seite",
  },
  fr: {
    title: "Accès bloqué",
    cautionTitle: "Attention",
    url_blocked: "La politique web de votre organisation n'autorise pas ce site.",
    dlp_blocked: "Ce téléversement contient des données sensibles et a été bloqué.",
    origin_certificate_invalid:
      "Le certificat du site n'a pas pu être vérifié ; la connexion a été refusée.",
    port_not_allowed: "Le proxy ne se connecte qu'aux ports web (80 et 443).",
    origin_unreachable: "Le site est injoignable.",
    origin_refused:
      "Le proxy web ne se connecte pas à cette adresse : elle n'est pas sur Internet.",
    caution: "Votre organisation vous demande d'être prudent avec ce site.",
    rule: "Règle",
    site: "Site",
    detail: "Détail",
    continue: "Continuer vers le site",
  },
};

/** The first supported language of an Accept-Language header (default en). */
export function pickLang(acceptLanguage: string | null): PageLang {
  const prefs = (acceptLanguage ?? "").split(",").map((part, i) => {
    const [tag, ...params] = part.trim().split(";");
    const q = params.map((p) => /^\s*q=([\d.]+)/.exec(p)?.[1]).find(Boolean);
    return { lang: tag.trim().slice(0, 2).toLowerCase(), q: q ? Number(q) : 1, i };
  }).filter((p) => p.q > 0).sort((a, b) => b.q - a.q || a.i - b.i);
  for (const p of prefs) if (p.lang === "en" || p.lang === "de" || p.lang === "fr") return p.lang;
  return "en";
}

/** True when the client wants HTML (a browser) rather than JSON. */
export function wantsHtml(accept: string | null): boolean {
  return accept === null || accept === "" || /text\/html|\*\/\*/.test(accept) &&
      !/^application\/json/.test(accept);
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The sentence for a reason, in English (logs, JSON). */
export function reasonSentence(r: PageReason): string {
  return TEXT.en[r.code] ?? TEXT.en.url_blocked;
}

/** The page body and its content type. */
export function renderPage(
  r: PageReason,
  accept: string | null,
  acceptLanguage: string | null,
): { status: number; contentType: string; body: string } {
  const status = r.code === "caution" ? 200 : r.code === "origin_unreachable" ? 502 : 403;
  if (!wantsHtml(accept)) {
    return {
      status,
      contentType: "application/json",
      body: JSON.stringify({
        error: r.code,
        message: `${reasonSentence(r)}${r.rule ? ` (rule "${r.rule}")` : ""}`,
        host: r.host,
        rule: r.rule,
        ...(r.detail ? { detail: r.detail } : {}),
        ...(r.continueUrl ? { continueUrl: r.continueUrl } : {}),
      }),
    };
  }
  const lang = pickLang(acceptLanguage);
  const t = TEXT[lang];
  const title = r.code === "caution" ? t.cautionTitle : t.title;
  const rows = [
    `<dt>${t.site}</dt><dd id="site">${esc(r.url)}</dd>`,
    r.rule ? `<dt>${t.rule}</dt><dd id="rule">${esc(r.rule)}</dd>` : "",
    r.detail ? `<dt>${t.detail}</dt><dd id="detail">${esc(r.detail)}</dd>` : "",
  ].join("");
  const cont = r.continueUrl
    ? `<p><a id="continue" href="${esc(r.continueUrl)}">${t.continue}</a></p>`
    : "";
  const body = `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><title>${title} — Portcullis</title>
<meta name="viewport" content="width=device-width">
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{color:${
    r.code === "caution" ? "#a60" : "#b00"
  }}dt{font-weight:bold}dd{margin:0 0 .5rem 0;word-break:break-all}</style>
</head><body data-code="${esc(r.code)}"><h1>${title}</h1><p>${
    t[r.code] ?? t.url_blocked
  }</p><dl>${rows}</dl>${cont}
<p><small>Portcullis web security</small></p></body></html>
`;
  return { status, contentType: "text/html; charset=utf-8", body };
}

/** A complete HTTP/1.1 response for the page, closing the connection. */
export function pageResponse(
  r: PageReason,
  accept: string | null,
  acceptLanguage: string | null,
): Uint8Array {
  const p = renderPage(r, accept, acceptLanguage);
  const body = new TextEncoder().encode(p.body);
  const reason = p.status === 200 ? "OK" : p.status === 502 ? "Bad Gateway" : "Forbidden";
  const head = `HTTP/1.1 ${p.status} ${reason}\r\nContent-Type: ${p.contentType}\r\n` +
    `Content-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\n` +
    `X-Portcullis-Reason: ${r.code}\r\n\r\n`;
  const out = new Uint8Array(head.length + body.length);
  out.set(new TextEncoder().encode(head));
  out.set(body, head.length);
  return out;
}
