/**
 * Message catalogues of both consoles. Every user-visible string is looked up
 * by key; English is the reference (its keys type the lookup, so a typo is a
 * compile error) and German and French must carry the same keys (a test
 * checks it). The language follows a manual choice (cookie) first, then the
 * browser's Accept-Language, then English.
 */
import en from "./en.json" with { type: "json" };
import de from "./de.json" with { type: "json" };
import fr from "./fr.json" with { type: "json" };

/** Languages the consoles speak. */
export const LANGUAGES = ["en", "de", "fr"] as const;
/** One of LANGUAGES. */
export type Lang = typeof LANGUAGES[number];
/** A message key (the English catalogue is the reference). */
export type MessageKey = keyof typeof en;
/** Parameters substituted for `{name}` placeholders. */
export type MessageParams = Record<string, string | number>;
/** Looks up a message in one language. */
export type Translate = (key: MessageKey, params?: MessageParams) => string;

/** Every catalogue by language. */
export const CATALOGUES: Record<Lang, Record<string, string>> = { en, de, fr };

/** Each language's name in itself, for the switcher. */
export const LANGUAGE_NAMES: Record<Lang, string> = {
  en: "English",
  de: "Deutsch",
  fr: "Français",
};

/** Name of the cookie that holds a manual language choice. */
export const LANG_COOKIE = "pc_lang";

/** True when `v` is a supported language code. */
export function isLang(v: unknown): v is Lang {
  return typeof v === "string" && (LANGUAGES as readonly string[]).includes(v);
}

/**
 * Picks the language: the cookie's choice when valid, else the first
 * supported language of Accept-Language by quality, else English.
 */
export function negotiateLanguage(acceptLanguage?: string | null, cookie?: string | null): Lang {
  if (isLang(cookie)) return cookie;
  const ranked = (acceptLanguage ?? "").slice(0, 512).split(",").map((part, i) => {
    const [tag, ...params] = part.trim().split(";");
    const q = params.map((p) => /^\s*q=([01](?:\.\d{0,3})?)\s*$/.exec(p)).find(Boolean);
    return { base: tag.trim().toLowerCase().split("-")[0], q: q ? Number(q[1]) : 1, i };
  }).filter((r) => r.base && r.q > 0).sort((a, b) => b.q - a.q || a.i - b.i);
  return ranked.find((r) => isLang(r.base))?.base as Lang | undefined ?? "en";
}

/** Returns the lookup function for `lang`; unknown keys fall back to English, then the key. */
export function translator(lang: Lang): Translate {
  const cat = CATALOGUES[lang];
  return (key, params) => {
    const text = cat[key] ?? CATALOGUES.en[key] ?? key;
    if (!params) return text;
    return text.replace(
      /\{(\w+)\}/g,
      (m, name: string) => Object.hasOwn(params, name) ? String(params[name]) : m,
    );
  };
}

/** True when `key` exists in the reference catalogue (for keys built at run time). */
export function hasMessage(key: string): key is MessageKey {
  return Object.hasOwn(CATALOGUES.en, key);
}
