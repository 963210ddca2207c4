/**
 * The overview at 1,000 hosts × 8 link ends, in the browser (Debian chromium), against the hub's REST
 * answers: the page holds a packed picture of the fleet and WINDOWS of its tables, so this checks that what
 * it shows is still the whole truth — counts, the rows of the window, the window a scroll asks for, the
 * rows a filter leaves.
 */
import type { LinkSummary, NodeSummary } from '@rdmaq/shared';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attr, launchBrowser, POLL, text } from './e2e-browser.js';
import { ADMIN, type Hub, login, rest, startHub } from './e2e-hub.js';
import { SimAgent } from './e2e-sim-agent.js';

const HOSTS = 1000;
const LINKS = 8;
/** Samples every 5 s: the hub's work stays small on a 2-core CI machine; freshness allows 3 periods. */
const INTERVAL_MS = 5000;
const ROW_H = 48; // apps/dashboard/src/app/(main)/_overview/Overview.tsx
const SLOW = { timeout: 120_000, interval: 500 } as const;

const COLLATOR = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });
const natural = (a: string, b: string) => COLLATOR.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);

describe('overview at 1,000 hosts: figures and table windows equal the hub', () => {
  let hub: Hub | undefined;
  const agents: SimAgent[] = [];
  let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
  let page: Page;
  let cookie: string;
  const rack = (i: number) => `rack${String(i % 16).padStart(2, '0')}`;
  const ids = Array.from({ length: HOSTS }, (_, i) => `${rack(i)}-h${Math.floor(i / 16)}`);

  beforeAll(async () => {
    hub = await startHub();
    cookie = await login(hub.url, ADMIN.name, ADMIN.password);
    const { token } = await rest<{ token: string }>(hub.url, cookie, 'POST', '/api/agent-tokens', {
      name: 'scale',
    });
    const ws = `${hub.url.replace(/^http/, 'ws')}/ws/agent`;
    for (let i = 0; i < HOSTS; i++) {
      const links = [];
      for (let k = 1; k <= LINKS / 2; k++) {
        const next = ids[(i + k) % HOSTS]!;
        const prev = ids[(i + HOSTS - k) % HOSTS]!;
        links.push({ id: `${ids[i]}>${next}`, peer: next, direction: 'tx' as const, recordsPerS: 1000 });
        links.push({
          id: `${prev}>${ids[i]}`,
          peer: prev,
          direction: 'rx' as const,
          recordsPerS: 1000,
          occupancy: ((i + k) % 10) / 10,
        });
      }
      agents.push(new SimAgent(ws, token, ids[i]!, links, INTERVAL_MS, { rack: rack(i) }));
    }
    for (let i = 0; i < agents.length; i += 50)
      await Promise.all(agents.slice(i, i + 50).map((a) => a.start()));
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    await page.goto(`${hub.url}/login`);
    await page.getByLabel('User name').fill(ADMIN.name);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${hub.url}/`);
  }, 300_000);

  afterAll(async () => {
    await Promise.allSettled(agents.map((a) => a.stop()));
    await browser?.close().catch(() => undefined);
    await hub?.stop();
  }, 120_000);

  const linksTable = () => page.getByTestId('links-table');
  const keyOf = (href: string | null) => decodeURIComponent((href ?? '').replace(/^\/links\//, ''));
  const shownKeys = async () =>
    (
      await linksTable()
        .locator('tbody a[href^="/links/"]')
        .evaluateAll((as) => as.map((a) => a.getAttribute('href')))
    ).map(keyOf);

  it('counts every host and link end the hub knows, in the picture and in the tables', {
    timeout: 300_000,
  }, async () => {
    const nodes = (await rest<{ nodes: NodeSummary[] }>(hub!.url, cookie, 'GET', '/api/nodes')).nodes;
    const links = (await rest<{ links: LinkSummary[] }>(hub!.url, cookie, 'GET', '/api/links')).links;
    expect(nodes).toHaveLength(HOSTS);
    expect(links).toHaveLength(HOSTS * LINKS);
    await expect.poll(attr(page.getByTestId('topology-canvas'), 'data-nodes'), SLOW).toBe(String(HOSTS));
    await expect.poll(text(page.getByTestId('kpi-nodes').locator('dd')), SLOW).toMatch(`${HOSTS} / ${HOSTS}`);
    await expect
      .poll(text(page.getByTestId('kpi-links').locator('dd')), SLOW)
      .toMatch(`${HOSTS * LINKS} / ${HOSTS * LINKS}`);
    await expect.poll(attr(page.getByTestId('nodes-table'), 'data-total'), POLL).toBe(String(HOSTS));
    await expect.poll(attr(linksTable(), 'data-total'), POLL).toBe(String(HOSTS * LINKS));
    expect(await text(page.locator('#links-h'))()).toMatch(`(${HOSTS * LINKS})`);
    // The page holds a window, not the fleet.
    const held = await linksTable().locator('tbody tr:not(.spacer)').count();
    expect(held).toBeGreaterThan(10);
    expect(held).toBeLessThanOrEqual(60);
  });

  it('shows the rows of the window, in the hub order; scrolling fetches the window at the scroll position', {
    timeout: 300_000,
  }, async () => {
    const links = (await rest<{ links: LinkSummary[] }>(hub!.url, cookie, 'GET', '/api/links')).links;
    const byKey = links.map((l) => l.key).sort(natural);
    await page.getByLabel('Sort link ends').selectOption('key');
    await expect.poll(async () => (await shownKeys()).slice(0, 20), POLL).toEqual(byKey.slice(0, 20));

    // Scroll to row 3,000: the table asks the hub for the window around it and shows exactly those rows.
    const target = 3000;
    await linksTable().evaluate((t, top) => {
      // The scrolling box is the table's parent; typed structurally (this package has no DOM lib).
      (t.parentElement as unknown as { scrollTop: number }).scrollTop = top;
    }, target * ROW_H);
    await expect
      .poll(async () => Number(await attr(linksTable(), 'data-offset')()), POLL)
      .toBeGreaterThan(target - 60);
    const offset = Number(await attr(linksTable(), 'data-offset')());
    expect(offset).toBeLessThanOrEqual(target);
    const shown = await shownKeys();
    expect(shown).toEqual(byKey.slice(offset, offset + shown.length));
    expect(shown).toContain(byKey[target]);
    // The spacer above stands for the rows before the window, so the row sits where the scrollbar says.
    const rowTop = await linksTable()
      .locator(`a[href="/links/${encodeURIComponent(byKey[target]!)}"]`)
      .evaluate((a) => (a.closest('tr') as unknown as { offsetTop: number }).offsetTop);
    expect(Math.abs(rowTop - (target * ROW_H + ROW_H))).toBeLessThan(ROW_H * 2);
  });

  it('a filter narrows the window to the matching rows, counted by the hub', {
    timeout: 300_000,
  }, async () => {
    const links = (await rest<{ links: LinkSummary[] }>(hub!.url, cookie, 'GET', '/api/links')).links;
    const q = 'rack03-h1';
    const matching = links
      .filter((l) => [l.key, l.peer, l.app ?? ''].some((s) => s.toLowerCase().includes(q)))
      .map((l) => l.key)
      .sort(natural);
    expect(matching.length).toBeGreaterThan(8);
    await page.getByLabel('Filter links (id, peer, app)').fill(q);
    await expect.poll(attr(linksTable(), 'data-total'), POLL).toBe(String(matching.length));
    await expect.poll(attr(linksTable(), 'data-offset'), POLL).toBe('0');
    await expect.poll(shownKeys, POLL).toEqual(matching.slice(0, 60));
  });
});
