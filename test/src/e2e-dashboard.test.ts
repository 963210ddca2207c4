/**
 * The dashboard UI end to end: the real server (hub + built Next UI) on an ephemeral port, three simulated
 * agents streaming over `/ws/agent`, and Debian's chromium signing in and reading what the agents reported.
 */

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Alert } from '@rdmaq/shared';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { attr, count, disabled, launchBrowser, POLL, text, visible } from './e2e-browser.js';
import { ADMIN, type Hub, login, rest, startHub } from './e2e-hub.js';
import { SimAgent } from './e2e-sim-agent.js';

const NODES = ['e2e-a', 'e2e-b', 'e2e-c'];
/** Directed link i → i+1 around the ring; its tx end is on the sender, its rx end (the ring) on the receiver. */
const linkId = (from: string, to: string) => `${from}>${to}`;
const RULE = {
  id: 'e2e-ring-full',
  name: 'E2eRingNearlyFull',
  metric: 'occupancy_ratio',
  comparison: '>',
  threshold: 0.8,
  clear: 0.5,
  forS: 0,
  keepFiringForS: 0,
  severity: 'critical',
  labels: {},
  enabled: true,
  match: {},
} as const;

describe('dashboard in a browser', () => {
  let hub: Hub | undefined;
  let browser: Browser | undefined;
  let ctx: BrowserContext | undefined;
  let page: Page;
  const agents: SimAgent[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    hub = await startHub();
    const cookie = await login(hub.url, ADMIN.name, ADMIN.password);
    const { token } = await rest<{ token: string }>(hub.url, cookie, 'POST', '/api/agent-tokens', {
      name: 'e2e',
    });
    await rest(hub.url, cookie, 'POST', '/api/rules', RULE);
    await rest(hub.url, cookie, 'POST', '/api/users', {
      name: 'viewer1',
      password: 'viewer-password-1',
      role: 'viewer',
    });
    const ws = `${hub.url.replace(/^http/, 'ws')}/ws/agent`;
    NODES.forEach((me, i) => {
      const next = NODES[(i + 1) % NODES.length]!;
      const prev = NODES[(i + NODES.length - 1) % NODES.length]!;
      agents.push(
        new SimAgent(ws, token, me, [
          { id: linkId(me, next), peer: next, direction: 'tx', recordsPerS: 100_000, payloadBytes: 256 },
          {
            id: linkId(prev, me),
            peer: prev,
            direction: 'rx',
            recordsPerS: 100_000,
            payloadBytes: 256,
            occupancy: 0.1,
            latencyNs: [2_000, 3_000, 3_000, 4_000, 40_000],
          },
        ]),
      );
    });
    await Promise.all(agents.map((a) => a.start()));
    browser = await launchBrowser();
    ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    ctx.setDefaultTimeout(30_000);
    page = await ctx.newPage();
    // The page's URL with each error: a hydration mismatch (React #418) names no component in production.
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  });

  // A failing step leaves a screenshot of the page in .reports/ (what the browser showed at that moment).
  beforeEach((ctx) => {
    ctx.onTestFailed(async () => {
      const dir = fileURLToPath(new URL('../.reports', import.meta.url));
      mkdirSync(dir, { recursive: true });
      const name = ctx.task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
      await page
        ?.screenshot({ path: path.join(dir, `e2e-${name}.png`), fullPage: true })
        .catch(() => undefined);
    });
  });

  afterAll(async () => {
    await Promise.allSettled(agents.map((a) => a.stop()));
    await ctx?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await hub?.stop();
  });

  it('sends a signed-out visitor to the login page and signs in', async () => {
    const base = hub!.url;
    await page.goto(`${base}/`);
    await page.waitForURL(/\/login\?next=%2F$/);
    await page.getByLabel('User name').fill(ADMIN.name);
    await page.getByLabel('Password').fill('wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(visible(page.getByText('Wrong user name or password.')), POLL).toBe(true);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/`);
    await expect.poll(text(page.getByTestId('connection')), POLL).toMatch('live');
  });

  it('shows the nodes and links the agents reported', async () => {
    await expect.poll(text(page.getByTestId('kpi-nodes').locator('dd')), POLL).toMatch(/^3 \/ 3/);
    await expect.poll(text(page.getByTestId('kpi-links').locator('dd')), POLL).toMatch(/^6 \/ 6/);
    // cluster throughput: 3 links × 100 k records/s × 256 B ≈ 614 Mbit/s, counted once per link
    await expect
      .poll(text(page.getByTestId('kpi-throughput').locator('dd')), POLL)
      .toMatch(/^\d+(\.\d+)? Mbit\/s/);
    const topo = page.getByTestId('topology-canvas');
    await expect.poll(attr(topo, 'data-nodes'), POLL).toBe('3');
    await expect.poll(attr(topo, 'data-edges'), POLL).toBe('3');
    await expect.poll(attr(topo, 'data-mode'), POLL).toBe('graph');
    await expect.poll(attr(page.getByTestId('occupancy-heatmap'), 'data-cells'), POLL).toBe('3');
    const nodes = page.getByTestId('nodes-table');
    for (const n of NODES)
      await expect.poll(visible(nodes.getByRole('link', { name: n, exact: true })), POLL).toBe(true);
    const links = page.getByTestId('links-table');
    await expect.poll(count(links.locator('tbody tr')), POLL).toBe(6);
    await expect.poll(count(links.getByRole('link', { name: linkId('e2e-a', 'e2e-b') })), POLL).toBe(2);
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered figure, without the hidden parts
    const kpi = Number.parseFloat((await page.getByTestId('kpi-throughput').locator('dd').innerText()) ?? '');
    expect(kpi).toBeGreaterThan(300);
    expect(kpi).toBeLessThan(1200);
  });

  it('lets the keyboard walk the topology and open a node', async () => {
    const topo = page.getByTestId('topology-canvas');
    await topo.focus();
    await page.keyboard.press('ArrowRight'); // first node in id order
    await page.keyboard.press('ArrowRight');
    await expect.poll(text(page.locator('.topology [aria-live]')), POLL).toMatch(/^e2e-b: agent connected/);
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/nodes\/e2e-b$/);
    await expect.poll(count(page.getByTestId('node-links').locator('tbody tr')), POLL).toBe(2);
    await page.goBack();
    await page.waitForURL(`${hub!.url}/`);
  });

  it('renders the link page charts from history and live data', async () => {
    const key = `e2e-b~${linkId('e2e-a', 'e2e-b')}`;
    // open it the way an operator does: from the overview's link table
    await page
      .getByTestId('links-table')
      .locator(`a[href="/links/${encodeURIComponent(key)}"]`)
      .click();
    await page.waitForURL(/\/links\//);
    await expect
      .poll(text(page.getByRole('heading', { level: 1 })), POLL)
      .toContain(linkId('e2e-a', 'e2e-b'));
    const latency = page.getByTestId('chart-latency');
    await expect.poll(attr(latency, 'data-points'), POLL).toMatch(/^[1-9]\d*$/);
    // a drawn line: recharts renders each series as a path with a non-empty `d`
    await expect
      .poll(attr(latency.locator('path.recharts-line-curve').first(), 'd'), POLL)
      .toMatch(/M[\d.]+,[\d.]+/);
    await expect
      .poll(attr(page.getByTestId('chart-throughput').locator('path.recharts-line-curve'), 'd'), POLL)
      .toMatch(/M[\d.]+,[\d.]+/);
    // p99 of the reported distribution (2, 3, 3, 4, 40 µs): the 40 µs bucket
    await expect
      .poll(text(page.getByTestId('chart-latency').locator('figcaption .now')), POLL)
      .toMatch(/p99 (39\.\d|40(\.\d)?) µs/);

    // the sender's end of the same link: latency comes from the receiving end, back-pressure is its own
    await page.goto(`${hub!.url}/links/${encodeURIComponent(`e2e-a~${linkId('e2e-a', 'e2e-b')}`)}`);
    const txLatency = page.getByTestId('chart-latency');
    await expect.poll(text(txLatency.locator('figcaption')), POLL).toContain('from the receiving end');
    await expect.poll(text(txLatency.locator('figcaption .now')), POLL).toMatch(/p99 (39\.\d|40(\.\d)?) µs/);
    await expect
      .poll(text(page.getByTestId('chart-backpressure').locator('figcaption')), POLL)
      .toMatch(/^Back-pressure events/);
  });

  it('fires an alert, shows it on every page, and lets an operator acknowledge it', async () => {
    const base = hub!.url;
    agents[1]!.set(linkId('e2e-a', 'e2e-b'), { occupancy: 0.95 });
    const banner = page.getByTestId('alert-banner');
    await expect.poll(text(banner), POLL).toContain('E2eRingNearlyFull');
    await expect.poll(text(page.getByTestId('firing-badge')), POLL).toMatch(/^1/);
    for (const path of ['/', '/nodes/e2e-c', '/alerts']) {
      await page.goto(base + path);
      await expect.poll(text(page.getByTestId('alert-banner')), POLL).toContain('E2eRingNearlyFull');
    }
    const row = page.getByTestId('alerts-firing').locator('tr', { hasText: 'E2eRingNearlyFull' });
    // value and threshold in the rule's unit (occupancy ratio → percent), as the agent reported it
    await expect.poll(text(row), POLL).toContain('95 % / 80 %');
    await row.getByRole('button', { name: /^Acknowledge/ }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel(/Comment/).fill('e2e: draining the ring');
    await dialog.getByRole('button', { name: 'Acknowledge' }).click();
    await expect.poll(visible(dialog), POLL).toBe(false);
    await expect.poll(text(row), POLL).toContain('e2e: draining the ring');
    await expect.poll(text(row), POLL).toContain(ADMIN.name);
    await expect.poll(text(page.getByTestId('alert-banner')), POLL).toContain('1 acknowledged');
    // the hub recorded it (not just the page)
    const cookie = await login(base, ADMIN.name, ADMIN.password);
    const { active } = await rest<{ active: Alert[] }>(base, cookie, 'GET', '/api/alerts');
    const a = active.find((x) => x.ruleId === RULE.id);
    expect(a?.ack).toMatchObject({ by: ADMIN.name, comment: 'e2e: draining the ring' });
    const ackEvent = page.getByTestId('alert-history').locator('tr', { hasText: 'e2e: draining the ring' });
    await expect.poll(text(ackEvent), POLL).toContain('ack');
  });

  it('creates and expires a silence from the alert', async () => {
    const row = page.getByTestId('alerts-firing').locator('tr', { hasText: 'E2eRingNearlyFull' });
    await row.getByRole('button', { name: /^Silence/ }).click();
    const form = page.getByTestId('silence-form');
    // prefilled from the alert's labels: rule id, node, link
    await expect.poll(() => form.getByLabel('Value').first().inputValue(), POLL).toBe(RULE.id);
    await form.getByLabel('Comment').fill('e2e maintenance');
    await form.getByRole('button', { name: 'Create silence' }).click();
    const silences = page.getByTestId('silences');
    const srow = silences.locator('tr', { hasText: 'e2e maintenance' });
    await expect.poll(text(srow), POLL).toContain('active');
    await expect.poll(text(srow), POLL).toContain(`rule="${RULE.id}"`);
    await expect.poll(text(row), POLL).toContain('silenced');
    await srow.getByRole('button', { name: 'Expire' }).click();
    await expect.poll(text(srow), POLL).toContain('expired');
  });

  it('does not let a viewer act on alerts', async () => {
    const base = hub!.url;
    const vctx = await browser!.newContext();
    try {
      const v = await vctx.newPage();
      await v.goto(`${base}/login?next=%2Falerts`);
      await v.getByLabel('User name').fill('viewer1');
      await v.getByLabel('Password').fill('viewer-password-1');
      await v.getByRole('button', { name: 'Sign in' }).click();
      await v.waitForURL(`${base}/alerts`);
      await expect.poll(visible(v.getByText(/need the operator role/)), POLL).toBe(true);
      const row = v.getByTestId('alerts-firing').locator('tr', { hasText: 'E2eRingNearlyFull' });
      await expect.poll(disabled(row.getByRole('button', { name: /^Unacknowledge/ })), POLL).toBe(true);
      await expect.poll(disabled(row.getByRole('button', { name: /^Silence/ })), POLL).toBe(true);
    } finally {
      await vctx.close();
    }
    expect(pageErrors).toEqual([]);
  });
});
