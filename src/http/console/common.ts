/**
 * What both consoles share on the server side: the language middleware and
 * switcher route, the static files under web/static, security headers, form
 * reading with a size limit, and the one HTML response helper.
 */
import type { Context, ErrorHandler, Hono } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { html } from "hono/html";
import type { Child } from "hono/jsx";
import { InputError, PortcullisError } from "../../errors.ts";
import { logger } from "../../log.ts";
import {
  isLang,
  type Lang,
  LANG_COOKIE,
  type MessageKey,
  negotiateLanguage,
  type Translate,
  translator,
} from "../../../web/i18n/mod.ts";
import { readBodyLimited } from "../api/common.ts";

/** Per-request variables every console handler can read. */
export type ConsoleVars = {
  lang: Lang;
  t: Translate;
};

/** Hono environment of a console app. */
export type ConsoleEnv = { Variables: ConsoleVars & Record<string, unknown> };

/** Largest form body a console accepts (64 KiB). */
export const FORM_LIMIT = 64 * 1024;

const STATIC_TYPES: Record<string, string> = {
  "console.css": "text/css; charset=utf-8",
  "console.js": "text/javascript; charset=utf-8",
  "htmx-2.0.11.min.js": "text/javascript; charset=utf-8",
  "favicon.svg": "image/svg+xml",
  // uPlot, vendored from its npm package (MIT, web/static/uPlot-1.6.32.LICENSE.txt).
  "uPlot-1.6.32.iife.min.js": "text/javascript; charset=utf-8",
  "uPlot-1.6.32.min.css": "text/css; charset=utf-8",
  "zdx_chart.js": "text/javascript; charset=utf-8",
};

const staticCache = new Map<string, Uint8Array>();

async function staticFile(name: string): Promise<Uint8Array> {
  let bytes = staticCache.get(name);
  if (!bytes) {
    bytes = await Deno.readFile(new URL(`../../../web/static/${name}`, import.meta.url));
    staticCache.set(name, bytes);
  }
  return bytes;
}

/** Content-Security-Policy of console pages: only our own scripts, no framing. */
export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/**
 * Installs on `app`: security headers, the language of each request, the
 * `/lang` switcher and `/static/*`. Call first, before the pages.
 */
export function installConsoleBasics(app: Hono<any>, base = ""): void {
  app.use("*", async (c, next) => {
    const lang = negotiateLanguage(c.req.header("accept-language"), getCookie(c, LANG_COOKIE));
    c.set("lang", lang);
    c.set("t", translator(lang));
    await next();
    const h = c.res.headers;
    if (!h.has("Content-Security-Policy")) h.set("Content-Security-Policy", CSP);
    h.set("X-Content-Type-Options", "nosniff");
    h.set("X-Frame-Options", "DENY");
    h.set("Referrer-Policy", "same-origin");
    if (!h.has("Cache-Control")) h.set("Cache-Control", "no-store");
  });

  app.get("/static/:name", async (c) => {
    const name = c.req.param("name");
    const type = Object.hasOwn(STATIC_TYPES, name) ? STATIC_TYPES[name] : undefined;
    if (!type) return c.text("Not found", 404);
    const bytes = await staticFile(name);
    return c.body(bytes.slice(), 200, {
      "Content-Type": type,
      "Cache-Control": "public, max-age=3600",
    });
  });

  app.get("/lang", (c) => {
    const lang = c.req.query("lang");
    if (isLang(lang)) {
      setCookie(c, LANG_COOKIE, lang, {
        path: "/",
        sameSite: "Lax",
        httpOnly: true,
        maxAge: 365 * 86400,
      });
    }
    return c.redirect(safeNext(c.req.query("next"), base), 303);
  });
}

/**
 * The consoles' error handler: a refusal (a PortcullisError below 500, such
 * as a form over the size limit) answers with its status and sentence;
 * anything else is logged and answers 500 with `unexpectedKey`'s text.
 */
export function consoleErrorHandler(unexpectedKey: MessageKey): ErrorHandler {
  const log = logger("console");
  return (err, c) => {
    if (err instanceof PortcullisError && err.status < 500) {
      return c.text(err.message, err.status as 400);
    }
    log.error("console request failed", { path: c.req.path, error: (err as Error).message });
    const t = c.get("t") as Translate | undefined;
    return c.text(t ? t(unexpectedKey) : "Internal error; the log has the details", 500);
  };
}

/** A local path to go back to: must start with one "/", else the console's root. */
export function safeNext(next: string | undefined, base = ""): string {
  if (next && /^\/(?![/\\])[\x21-\x7e]{0,500}$/.test(next)) return next;
  return `${base}/`;
}

/** Renders a full page (with the doctype). */
export function page(c: Context, node: Child, status = 200): Response | Promise<Response> {
  return c.html(html`<!DOCTYPE html>${node}`, status as 200);
}

/** Renders a fragment (no doctype) for htmx swaps and SSE. */
export function fragment(c: Context, node: Child, status = 200): Response | Promise<Response> {
  return c.html(html`${node}`, status as 200);
}

/** Renders a JSX node to a string (for SSE payloads). */
export async function renderToString(node: Child): Promise<string> {
  return String(await html`${node}`);
}

/**
 * Reads a urlencoded or multipart form with a size limit; only string
 * fields are returned (files are refused).
 */
export async function readForm(c: Context, limit = FORM_LIMIT): Promise<Record<string, string>> {
  const ct = (c.req.header("content-type") ?? "").toLowerCase();
  const bytes = await readBodyLimited(c, limit);
  const out: Record<string, string> = {};
  if (ct.startsWith("application/x-www-form-urlencoded")) {
    for (const [k, v] of new URLSearchParams(new TextDecoder().decode(bytes))) out[k] = v;
    return out;
  }
  if (ct.startsWith("multipart/form-data")) {
    const form = await new Request("http://local/", {
      method: "POST",
      headers: { "content-type": c.req.header("content-type")! },
      body: bytes,
    }).formData().catch(() => {
      throw new InputError("malformed_form", "Request body is not valid multipart/form-data");
    });
    for (const [k, v] of form) if (typeof v === "string") out[k] = v;
    return out;
  }
  throw new InputError(
    "unsupported_media_type",
    `Expected a form (application/x-www-form-urlencoded), got "${ct.split(";")[0] || "none"}"`,
    415,
  );
}

/** Reads a multipart form with files up to `limit` bytes; null when it is not one. */
export async function readMultipart(c: Context, limit: number): Promise<FormData | null> {
  const ct = c.req.header("content-type") ?? "";
  if (!ct.toLowerCase().startsWith("multipart/form-data")) return null;
  const bytes = await readBodyLimited(c, limit);
  try {
    return await new Response(bytes, { headers: { "content-type": ct } }).formData();
  } catch {
    return null;
  }
}

/** A row operation of an ordered list page (URL rules, DLP rules). */
export type RowOp = "toggle" | "up" | "delete";

/** Applies `op` to the item named `name` (unknown names leave the list as it is). */
export function editOrdered<T extends { name: string; enabled: boolean }>(
  items: T[],
  name: string,
  op: RowOp,
): T[] {
  const i = items.findIndex((r) => r.name === name);
  if (i < 0) return items;
  if (op === "delete") return items.filter((_, k) => k !== i);
  if (op === "toggle") return items.map((r, k) => (k === i ? { ...r, enabled: !r.enabled } : r));
  if (i === 0) return items;
  const next = items.slice();
  [next[i - 1], next[i]] = [next[i], next[i - 1]];
  return next;
}
