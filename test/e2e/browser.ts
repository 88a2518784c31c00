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
 * `executablePath` runs Chromium through a wrapper (e.g. inside a namespace).
 */
export function launchBrowser(
  userDir: string,
  opts: { executablePath?: string } = {},
): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDir, {
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
