/**
 * Headless Chromium for the console tests: where it is, a loopback server
 * for a console app, a browser context with the flags these machines need,
 * and a screenshot that first checks every control is labelled.
 */
import assert from "node:assert/strict";
import { type BrowserContext, chromium, type Page } from "playwright-core";

/** Debian's chromium. */
export const CHROMIUM = "/usr/bin/chromium";
/** True when Chromium is installed (the tests are ignored otherwise). */
export const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
/** Where screenshots go. */
export const SHOTS = new URL("../output/screenshots/", import.meta.url).pathname;

/** Serves `handler` on a free loopback port. */
export function serve(
  handler: (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>,
) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  return { server, base: `http://127.0.0.1:${server.addr.port}` };
}

/**
 * A persistent headless context in `userDir` (close it in a finally);
 * `executablePath` runs Chromium through a wrapper (e.g. inside a namespace),
 * `ignoreHTTPSErrors` accepts a test's own CA (an edge on https loopback).
 */
export function launchBrowser(
  userDir: string,
  opts: { executablePath?: string; ignoreHTTPSErrors?: boolean } = {},
): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDir, {
    ignoreHTTPSErrors: opts.ignoreHTTPSErrors,
    executablePath: opts.executablePath ?? CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 860 },
    locale: "en-GB",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Every visible form control has a label (or an aria-label). */
export async function assertLabelled(page: Page): Promise<void> {
  const unlabelled = await page.evaluate(`[...document.querySelectorAll(
    "input:not([type=hidden]), select, textarea")]
    .filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label"))
    .map((el) => el.id || el.name)`) as string[];
  assert.deepEqual(unlabelled, [], `unlabelled controls on ${page.url()}`);
}

/** Checks the labels, waits for the page to settle and writes `SHOTS/<name>.png`. */
export async function shot(page: Page, name: string): Promise<void> {
  await assertLabelled(page);
  await page.waitForLoadState("networkidle").catch(() => {});
  // Let toasts finish fading in (their CSS animation; one removed meanwhile is cancelled).
  await page.evaluate(`Promise.all(document.getAnimations()
    .filter((a) => a.animationName === "toast-in").map((a) => a.finished.catch(() => {})))`);
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
}

/** An open browser: its context and first page; dispose closes it and removes the profile. */
export interface OpenBrowser extends AsyncDisposable {
  context: BrowserContext;
  page: Page;
  /**
   * Checks labels (unless `labels` is false: a page that is not ours, such
   * as an IdP's), waits up to 3 s for the network to settle (a console's
   * live-event stream never does) and writes `SHOTS/<name>.png`.
   */
  shot(name: string, o?: { labels?: boolean }): Promise<void>;
}

/** Launches headless Chromium in a fresh profile, for `await using`. */
export async function openBrowser(
  o: { ignoreHTTPSErrors?: boolean } = {},
): Promise<OpenBrowser> {
  await Deno.mkdir(SHOTS, { recursive: true });
  const dir = await Deno.makeTempDir({ prefix: "pc-chromium-" });
  let context: BrowserContext;
  try {
    context = await launchBrowser(dir, o);
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(15_000);
  return {
    context,
    page,
    async shot(name, o = {}) {
      if (o.labels !== false) await assertLabelled(page);
      await page.waitForLoadState("networkidle", { timeout: 3000 }).catch(() => {});
      await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
    },
    async [Symbol.asyncDispose]() {
      await context.close().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
