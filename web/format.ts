/**
 * Formatting of numbers, sizes, times and durations for the consoles, in the
 * page's language. Pure functions over plain values; `null` renders as a dash.
 */
import type { Lang } from "./i18n/mod.ts";

const DASH = "—";

/** Formats a byte count with binary units ("1.5 MiB"). */
export function formatBytes(n: number | null | undefined, lang: Lang): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return DASH;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 || v >= 100 ? 0 : 1;
  return `${new Intl.NumberFormat(lang, { maximumFractionDigits: digits }).format(v)} ${units[u]}`;
}

/** Formats an integer with the language's grouping. */
export function formatNumber(n: number, lang: Lang): string {
  return new Intl.NumberFormat(lang).format(n);
}

/** Formats a duration in ms as "2 h 05 min", "4 min 09 s" or "12 s". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return DASH;
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), sec = s % 60;
  const p = (x: number) => String(x).padStart(2, "0");
  if (d > 0) return `${d} d ${p(h)} h`;
  if (h > 0) return `${h} h ${p(m)} min`;
  if (m > 0) return `${m} min ${p(sec)} s`;
  return `${sec} s`;
}

const shortFormats = new Map<Lang, Intl.DateTimeFormat>();

/** Formats a time as "Nov 22, 14:03:07" in `lang` (feeds and tables); a dash for none. */
export function formatShortTime(t: string | number | null | undefined, lang: Lang): string {
  if (t === null || t === undefined || t === "") return DASH;
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return DASH;
  let f = shortFormats.get(lang);
  if (!f) {
    f = new Intl.DateTimeFormat(lang, {
      month: "short",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    });
    shortFormats.set(lang, f);
  }
  return f.format(d);
}

/** Formats an ISO string or epoch ms as a local date and time in `lang`. */
export function formatTime(t: string | number | null | undefined, lang: Lang): string {
  if (t === null || t === undefined || t === "") return DASH;
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return DASH;
  return new Intl.DateTimeFormat(lang, {
    year: "numeric",
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
    timeZone: "UTC",
    timeZoneName: "short",
  }).format(d);
}

const dateFormats = new Map<Lang, Intl.DateTimeFormat>();

/** Formats a day as "Dec 11, 2026" in `lang` (UTC, as expiry dates are entered); a dash for none. */
export function formatDate(t: string | number | null | undefined, lang: Lang): string {
  if (t === null || t === undefined || t === "") return DASH;
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return DASH;
  let f = dateFormats.get(lang);
  if (!f) {
    f = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeZone: "UTC" });
    dateFormats.set(lang, f);
  }
  return f.format(d);
}

/** Formats how long ago `t` was relative to `now` ("3 min ago"), in `lang`. */
export function formatAgo(t: string | number | null | undefined, now: number, lang: Lang): string {
  if (t === null || t === undefined || t === "") return DASH;
  const ms = new Date(t).getTime();
  if (Number.isNaN(ms)) return DASH;
  const diff = Math.round((ms - now) / 1000);
  const rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  const abs = Math.abs(diff);
  if (abs < 60) return rtf.format(diff, "second");
  if (abs < 3600) return rtf.format(Math.round(diff / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(diff / 3600), "hour");
  return rtf.format(Math.round(diff / 86400), "day");
}
