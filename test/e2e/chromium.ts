/**
 * Test fixture (not a test): headless Chromium (Debian's) through
 * playwright-core for the console tests, and screenshots that first check
 * every form control has a label.
 */
import assert from "node:assert/strict";
import { type BrowserContext, chromium, type Page } from "playwright-core";

/** Debian's Chromium. */
export const CHROMIUM = "/usr/bin/chromium";
/** Whether Chromium is installed (tests that need it are ignored otherwise). */
export const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
/** Where screenshots go. */
export const SHOTS = new URL("../output/screenshots/", import.meta.url).pathname;

/** A headless Chromium with its own profile directory; close it, then remove `userDir`. */
export async function launchChromium(userDir: string): Promise<BrowserContext> {
  await Deno.mkdir(SHOTS, { recursive: true });
  return await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    locale: "en-GB",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
}

/** Photographs `page` as SHOTS/name.png after checking no control lacks a label. */
export async function shot(page: Page, name: string): Promise<void> {
  const unlabelled = await page.evaluate(`[...document.querySelectorAll(
    "input:not([type=hidden]), select, textarea")]
    .filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label"))
    .map((el) => el.id || el.name)`) as string[];
  assert.deepEqual(unlabelled, [], `unlabelled controls on ${page.url()}`);
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
}

/** Signs in to the edge console at `base` as the fixture's root admin (test/http/helpers.ts). */
export async function loginAsRoot(page: Page, base: string, totp: string): Promise<void> {
  await page.goto(`${base}/login`);
  await page.fill("#username", "root");
  await page.fill("#password", "correct horse battery");
  await page.fill("#totp", totp);
  await page.click("#login-submit");
  await page.waitForSelector("#fleet-stats");
}
