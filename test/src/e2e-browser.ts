/**
 * Debian's chromium driven by playwright-core (never `playwright install`). `chromium.launch` gives every
 * run a fresh temporary user-data-dir, removed on close, so no profile state leaks between runs.
 */
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60_000,
  });
}

import type { Locator } from 'playwright-core';

/**
 * Value getters for `expect.poll` (playwright-core has no auto-retrying assertions): each gives up after a
 * short wait so the poll retries until its own timeout.
 */
// biome-ignore lint/performance/useDomNodeTextContent: what the user sees (innerText skips hidden text)
export const text = (l: Locator) => () => l.innerText({ timeout: 2_000 });
export const attr = (l: Locator, name: string) => () => l.getAttribute(name, { timeout: 2_000 });
export const count = (l: Locator) => () => l.count();
export const visible = (l: Locator) => () => l.isVisible();
export const disabled = (l: Locator) => () => l.isDisabled({ timeout: 2_000 });

/** Poll options for UI waits: the hub fans out once a second, a loaded 2-core machine can be slow. */
export const POLL = { timeout: 30_000, interval: 250 } as const;
