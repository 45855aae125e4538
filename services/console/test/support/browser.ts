/**
 * Debian's Chromium driven by Playwright (playwright-core; its own browser download cannot work
 * here), and the steps every console test takes in it.
 */
import { AxeBuilder } from '@axe-core/playwright';
import { chromium, type Browser, type Page } from 'playwright-core';

/** `apt-get install chromium` puts it here; `.ci/run` installs it when it is missing. */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium; without the background-networking flags it keeps calling hosts this machine cannot reach. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/**
 * Opens `url` of the console without a session, which sends the browser to the provider's own
 * sign-in page; signs in there as `login` and waits until the console shows the page again.
 */
export async function signIn(page: Page, url: string, login: string, password: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('Login').fill(login);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.href.startsWith(new URL(url).origin) && !u.pathname.startsWith('/auth/'));
  await page.getByTestId('operator').waitFor();
}

/**
 * The accessibility violations axe-core finds on the page that are serious or critical, as
 * `rule: target (why)` lines. Motion is reduced first (Pico then ends its transitions at once), so
 * that colours are read as they settle, not halfway through a button's transition.
 */
export async function seriousViolations(page: Page): Promise<string[]> {
  await page.emulateMedia({ reducedMotion: 'reduce' });
  const { violations } = await new AxeBuilder({ page }).analyze();
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.nodes.map((n) => `${n.target.join(' ')} (${n.failureSummary ?? ''})`).join(', ')}`);
}
