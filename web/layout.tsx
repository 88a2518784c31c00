/**
 * The page frame both consoles share: a header with the product name, the
 * role and a live status pill, the tab navigation, the language switcher
 * and (on the edge) the signed-in user. htmx boosts links and forms when
 * JavaScript runs; without it every link and form still works as plain HTML.
 */
import type { Child } from "hono/jsx";
import { type Lang, LANGUAGE_NAMES, LANGUAGES, type Translate } from "./i18n/mod.ts";
import { CsrfField, Pill, type Tone } from "./components.tsx";

/** Version of the vendored htmx file under web/static. */
export const HTMX_FILE = "htmx-2.0.11.min.js";

/** One tab of the navigation. */
export interface Tab {
  href: string;
  label: string;
  active: boolean;
  id?: string;
}

/** What the frame needs. */
export interface LayoutProps {
  t: Translate;
  lang: Lang;
  /** Page title (also the document title). */
  title: string;
  /** Role label in the header, e.g. "Edge" or "Connector". */
  roleLabel: string;
  status?: { tone: Tone; label: string };
  /** URL of a fragment that re-renders the status pill (polled). */
  statusUrl?: string;
  tabs: Tab[];
  /** The current path, so the language switcher can come back. */
  path: string;
  /** Signed-in user and the session's CSRF token (edge). */
  user?: string;
  csrf?: string;
  /** Logout form action (edge). */
  logoutAction?: string;
  /** SSE URL the page listens to for live events. */
  live?: string;
  /** Path prefix the console is mounted under ("" at the root). */
  base: string;
  footer?: Child;
  children?: Child;
}

function Mark() {
  return (
    <svg class="mark" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">
      <rect x="3" y="4" width="26" height="24" rx="5" fill="currentColor" opacity="0.18" />
      <path
        d="M8 8h16M8 8v17M13 8v17M19 8v17M24 8v17M6 14h20M6 20h20"
        stroke="currentColor"
        stroke-width="2.2"
        stroke-linecap="round"
        fill="none"
      />
    </svg>
  );
}

/** The full HTML document around a page. */
export function Layout(p: LayoutProps) {
  const { t } = p;
  const hxHeaders = p.csrf ? JSON.stringify({ "X-CSRF-Token": p.csrf }) : undefined;
  return (
    <html lang={p.lang}>
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light" />
        <title>{`${p.title} · Portcullis ${p.roleLabel}`}</title>
        <link rel="stylesheet" href={`${p.base}/static/console.css`} />
        <link rel="icon" href={`${p.base}/static/favicon.svg`} type="image/svg+xml" />
        <script src={`${p.base}/static/${HTMX_FILE}`} defer></script>
        <script src={`${p.base}/static/console.js`} defer></script>
      </head>
      <body hx-boost="true" hx-headers={hxHeaders}>
        {p.live ? <div id="live" data-live={p.live} hidden></div> : null}
        <a class="skip" href="#main">{t("layout.skip")}</a>
        <header class="topbar">
          <div class="brand">
            <Mark />
            <span class="brand-name">Portcullis</span>
            <span class="brand-role">{p.roleLabel}</span>
          </div>
          <div class="topbar-status">
            {p.status
              ? (
                <span
                  id="status-slot"
                  hx-get={p.statusUrl}
                  hx-trigger={p.statusUrl ? "every 3s" : undefined}
                  hx-swap="innerHTML"
                  aria-live="polite"
                >
                  <Pill tone={p.status.tone} id="status-pill">{p.status.label}</Pill>
                </span>
              )
              : null}
          </div>
          <div class="topbar-tools">
            <form method="get" action={`${p.base}/lang`} class="lang-form" hx-boost="false">
              <label for="lang-select" class="sr-only">{t("layout.language")}</label>
              <select id="lang-select" name="lang" data-autosubmit="">
                {LANGUAGES.map((l) => (
                  <option value={l} selected={l === p.lang}>{LANGUAGE_NAMES[l]}</option>
                ))}
              </select>
              <input type="hidden" name="next" value={p.path} />
              <button type="submit" class="btn btn-ghost btn-small">{t("layout.apply")}</button>
            </form>
            {p.user
              ? (
                <form method="post" action={p.logoutAction} class="user-form">
                  <CsrfField token={p.csrf} />
                  <span class="user-name" title={t("layout.signed_in_as", { user: p.user })}>
                    {p.user}
                  </span>
                  <button type="submit" class="btn btn-ghost btn-small" id="logout">
                    {t("layout.logout")}
                  </button>
                </form>
              )
              : null}
          </div>
        </header>
        {p.tabs.length
          ? (
            <nav class="tabs" aria-label={t("layout.navigation")}>
              <ul role="list">
                {p.tabs.map((tab) => (
                  <li>
                    <a
                      href={tab.href}
                      id={tab.id}
                      class={tab.active ? "tab active" : "tab"}
                      aria-current={tab.active ? "page" : undefined}
                    >
                      {tab.label}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
          )
          : null}
        <main id="main" tabindex={-1}>
          <h1 class="page-title">{p.title}</h1>
          {p.children}
        </main>
        <footer class="foot">{p.footer}</footer>
        {
          /* hx-preserve: a boosted navigation swaps the body; a toast that
            arrived while the request was in flight must survive the swap. */
        }
        <div id="toasts" class="toasts" aria-live="polite" role="status" hx-preserve="true">
        </div>
      </body>
    </html>
  );
}
