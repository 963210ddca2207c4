/**
 * Admin pages end to end: the built server and UI, Debian chromium, simulated agents on `/ws/agent`.
 * An admin creates an agent token in the UI and reads its shown-once secret, an agent connects with it and
 * appears, the admin revokes it in the UI and the agent is cut off and refused on reconnect; the audit
 * page lists what was done; a viewer sees no admin control; signed-out visitors go to /login at once.
 */

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { attr, count, launchBrowser, POLL, text, visible } from './e2e-browser.js';
import { ADMIN, type Hub, login, rest, startHub } from './e2e-hub.js';
import { SimAgent } from './e2e-sim-agent.js';

const VIEWER = { name: 'viewer-e2e', password: 'viewer-password-e2e' };
const NODE = 'e2e-tok-1';
const LINKS = [{ id: `${NODE}>peer`, peer: 'peer', direction: 'tx' as const }];

interface NodeRow {
  id: string;
  connected: boolean;
}

describe('admin pages in a browser', () => {
  let hub: Hub | undefined;
  let browser: Browser | undefined;
  let ctx: BrowserContext | undefined;
  let page: Page;
  let adminCookie: string;
  let agent: SimAgent | undefined;
  let secret = '';
  const pageErrors: string[] = [];
  const viewerPages: Page[] = [];

  beforeAll(async () => {
    hub = await startHub();
    adminCookie = await login(hub.url, ADMIN.name, ADMIN.password);
    await rest(hub.url, adminCookie, 'POST', '/api/users', { ...VIEWER, role: 'viewer' });
    browser = await launchBrowser();
    ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    ctx.setDefaultTimeout(30_000);
    page = await ctx.newPage();
    // The page's URL with each error: a hydration mismatch (React #418) names no component in production.
    page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  });

  beforeEach((c) => {
    c.onTestFailed(async () => {
      const dir = fileURLToPath(new URL('../.reports', import.meta.url));
      mkdirSync(dir, { recursive: true });
      const name = c.task.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
      await page
        ?.screenshot({ path: path.join(dir, `e2e-admin-${name}.png`), fullPage: true })
        .catch(() => undefined);
      for (const [i, p] of (ctx?.pages() ?? []).concat(viewerPages).entries()) {
        await p.screenshot({ path: path.join(dir, `e2e-admin-${name}-${i}.png`) }).catch(() => undefined);
      }
      console.error(`hub output (last lines):\n${hub?.output().split('\n').slice(-40).join('\n')}`);
    });
  });

  afterAll(async () => {
    await agent?.stop().catch(() => undefined);
    await ctx?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await hub?.stop();
  });

  const nodes = async () =>
    (await rest<{ nodes: NodeRow[] }>(hub!.url, adminCookie, 'GET', '/api/nodes')).nodes;

  it('sends a signed-out visitor to /login before any page, socket or API call', async () => {
    const base = hub!.url;
    // The server answers the page itself with the redirect: nothing of the dashboard is served first.
    const res = await fetch(`${base}/`, { redirect: 'manual' });
    expect(res.status).toBe(307);
    expect(
      new URL(res.headers.get('location')!, base).pathname +
        new URL(res.headers.get('location')!, base).search,
    ).toBe('/login?next=%2F');
    const deep = await fetch(`${base}/admin/tokens?x=1`, { redirect: 'manual' });
    expect(deep.status).toBe(307);
    expect(deep.headers.get('location')).toMatch(/\/login\?next=%2Fadmin%2Ftokens%3Fx%3D1$/);
    // Sign-in and its assets are not redirected.
    expect((await fetch(`${base}/login`, { redirect: 'manual' })).status).toBe(200);

    const asked: string[] = [];
    const onRequest = (r: { url(): string }) => asked.push(new URL(r.url()).pathname);
    page.on('request', onRequest);
    page.on('websocket', (ws) => asked.push(new URL(ws.url()).pathname));
    await page.goto(`${base}/`);
    await page.waitForURL(/\/login\?next=%2F$/);
    await expect.poll(visible(page.getByLabel('User name')), POLL).toBe(true);
    page.off('request', onRequest);
    // No live socket, no 401 from /api/auth/me on the way: the browser went straight to the login page.
    expect(asked).not.toContain('/ws/live');
    expect(asked).not.toContain('/api/auth/me');
    expect(asked[0]).toBe('/');
    expect(asked[1]).toBe('/login');

    await page.getByLabel('User name').fill(ADMIN.name);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/`);
  });

  it('shows admins the Admin entry and the admin index', async () => {
    const nav = page.getByTestId('nav-admin');
    await expect.poll(visible(nav), POLL).toBe(true);
    await nav.click();
    await page.waitForURL(/\/admin$/);
    await expect.poll(text(page.locator('h1')), POLL).toBe('Admin');
    await expect.poll(text(page.getByTestId('card-tokens')), POLL).toMatch(/0 active, 0 revoked/);
  });

  it('creates a token in the UI, shows its secret once, and an agent connects with it', async () => {
    await page.goto(`${hub!.url}/admin/tokens`);
    const form = page.getByTestId('token-form');
    await form.getByLabel('Name').fill('e2e-rack');
    await form.getByLabel(/^Nodes it may speak for/).fill(NODE);
    await form.getByRole('button', { name: 'Create token' }).click();
    const created = page.getByTestId('token-created');
    await expect.poll(text(created), POLL).toMatch(/shown only this once/);
    secret = (await page.getByTestId('token-secret').textContent())?.trim() ?? '';
    expect(secret).toMatch(/^rdmaq_[A-Za-z0-9_-]{40,}$/);
    // Listed with its binding, never used yet, and the secret is nowhere in the list.
    const row = page.getByTestId('tokens-table').locator('tr', { hasText: 'e2e-rack' });
    await expect.poll(text(row), POLL).toMatch(new RegExp(`${NODE}[\\s\\S]*never[\\s\\S]*active`));
    expect(await page.getByTestId('tokens-table').textContent()).not.toContain(secret);
    // Dismissed, the secret is gone from the page for good.
    await created.getByRole('button', { name: 'I have copied it' }).click();
    await expect.poll(count(page.getByTestId('token-secret')), POLL).toBe(0);
    await page.reload();
    await expect.poll(visible(page.getByTestId('tokens-table')), POLL).toBe(true);
    expect(await page.content()).not.toContain(secret);

    agent = new SimAgent(`${hub!.url.replace(/^http/, 'ws')}/ws/agent`, secret, NODE, LINKS);
    await agent.start();
    await expect.poll(async () => (await nodes()).find((n) => n.id === NODE)?.connected, POLL).toBe(true);
    await page.reload();
    await expect.poll(text(row), POLL).toMatch(/ago/);
  });

  it('revokes the token in the UI: the agent is cut off and refused when it reconnects', async () => {
    const row = page.getByTestId('tokens-table').locator('tr', { hasText: 'e2e-rack' });
    await row.getByRole('button', { name: 'Revoke token e2e-rack' }).click();
    const dialog = page.getByTestId('confirm-dialog');
    await expect.poll(text(dialog), POLL).toMatch(/disconnected now and refused/);
    await dialog.getByRole('button', { name: 'Revoke token' }).click();
    await expect.poll(count(dialog), POLL).toBe(0);
    // The live socket is closed by the hub with the reason.
    await expect
      .poll(() => agent!.hubErrors.join('\n'), POLL)
      .toMatch(/ERR_RDMAQ_AGENT_TOKEN: agent token revoked/);
    await expect.poll(async () => (await nodes()).find((n) => n.id === NODE)?.connected, POLL).toBe(false);
    // Revoked tokens leave the list (kept for the record behind "show revoked").
    await expect.poll(count(row), POLL).toBe(0);
    await page.getByLabel(/show 1 revoked/).check();
    await expect.poll(text(row), POLL).toMatch(/revoked/);
    // Reconnecting with it is refused.
    await agent!.stop();
    const again = new SimAgent(`${hub!.url.replace(/^http/, 'ws')}/ws/agent`, secret, NODE, LINKS);
    await expect(again.start()).rejects.toThrow(/4001|unknown or revoked agent token/);
    await again.stop();
    expect((await nodes()).find((n) => n.id === NODE)?.connected).toBe(false);
  });

  it('lets an operator-or-better edit a rule in units, and shows it in the rules table', async () => {
    await page.goto(`${hub!.url}/rules`);
    const row = page.getByTestId('rules-table').locator('tr[data-rule="ring-occupancy"]');
    await expect.poll(text(row), POLL).toMatch(/> 90/);
    await row.getByRole('button', { name: /^Edit rule/ }).click();
    const form = page.getByTestId('rule-form');
    const threshold = form.getByLabel(/^Threshold/);
    await expect.poll(() => threshold.inputValue(), POLL).toBe('90');
    await threshold.fill('85');
    await expect.poll(text(page.getByTestId('threshold-preview')), POLL).toMatch(/85/);
    await form.getByRole('button', { name: 'Save rule' }).click();
    await expect.poll(text(row), POLL).toMatch(/> 85/);
    const rules = await rest<{ rules: Array<{ id: string; threshold: number }> }>(
      hub!.url,
      adminCookie,
      'GET',
      '/api/rules',
    );
    expect(rules.rules.find((r) => r.id === 'ring-occupancy')?.threshold).toBe(0.85);
  });

  it('lists what was done on the audit page', async () => {
    await page.goto(`${hub!.url}/admin/audit`);
    const table = page.getByTestId('audit-table');
    await expect.poll(count(table.locator('tr[data-action="token.create"]')), POLL).toBe(1);
    await expect.poll(count(table.locator('tr[data-action="token.revoke"]')), POLL).toBe(1);
    await expect.poll(count(table.locator('tr[data-action="rule.update"]')), POLL).toBe(1);
    await expect.poll(count(table.locator('tr[data-action="user.create"]')), POLL).toBe(1);
    const revoke = table.locator('tr[data-action="token.revoke"]');
    await expect
      .poll(text(revoke), POLL)
      .toMatch(/admin[\s\S]*revoked agent token e2e-rack[\s\S]*"disconnected":1/);
    await expect
      .poll(text(table.locator('tr[data-action="rule.update"]')), POLL)
      .toMatch(/"threshold":\[0\.9,0\.85\]/);
    expect(await table.textContent()).not.toContain(secret);
  });

  it('shows themed not-found pages with navigation, inside the dashboard', async () => {
    for (const p of ['/no-such-page', '/admin/nope', '/nodes']) {
      await page.goto(`${hub!.url}${p}`);
      const nf = page.getByTestId('not-found');
      await expect.poll(text(nf), POLL).toMatch(/Page not found/);
      await expect.poll(visible(nf.getByRole('link', { name: 'Overview' })), POLL).toBe(true);
      // The dashboard's header is around it.
      await expect.poll(visible(page.getByRole('navigation', { name: 'Main' })), POLL).toBe(true);
    }
  });

  it('shows a viewer no admin controls; the pages say forbidden and the API refuses', async () => {
    const vctx = await browser!.newContext({ viewport: { width: 1400, height: 1000 } });
    vctx.setDefaultTimeout(30_000);
    try {
      const v = await vctx.newPage();
      viewerPages.push(v);
      v.on('pageerror', (e) => pageErrors.push(`viewer ${v.url()}: ${e.message}`));
      await v.goto(`${hub!.url}/login`);
      await v.getByLabel('User name').fill(VIEWER.name);
      await v.getByLabel('Password').fill(VIEWER.password);
      await v.getByRole('button', { name: 'Sign in' }).click();
      await v.waitForURL(`${hub!.url}/`);
      // Once the header knows the role, there is no Admin entry.
      await expect
        .poll(attr(v.locator('li', { has: v.getByTestId('nav-rules') }), 'data-role'), POLL)
        .toBe('viewer');
      expect(await v.getByTestId('nav-admin').count()).toBe(0);
      for (const p of ['/admin', '/admin/tokens', '/admin/users', '/admin/audit']) {
        await v.goto(`${hub!.url}${p}`);
        await expect.poll(text(v.getByTestId('forbidden')), POLL).toMatch(/Admins only[\s\S]*viewer/);
        expect(await v.getByTestId('token-form').count()).toBe(0);
        expect(await v.getByTestId('user-form').count()).toBe(0);
        expect(await v.getByTestId('audit-table').count()).toBe(0);
      }
      await v.goto(`${hub!.url}/rules`);
      await expect.poll(visible(v.getByTestId('rules-readonly')), POLL).toBe(true);
      await expect.poll(count(v.getByTestId('rules-table').locator('tbody tr')), POLL).toBeGreaterThan(3);
      expect(await v.getByRole('button', { name: 'New rule' }).count()).toBe(0);
      expect(await v.getByRole('button', { name: /^Edit rule/ }).count()).toBe(0);
      // The hub refuses the admin API to this session whatever the page shows.
      const statuses = await v.evaluate(async () => {
        const r = await Promise.all([
          fetch('/api/agent-tokens', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ name: 'x' }),
          }),
          fetch('/api/users'),
          fetch('/api/audit'),
          fetch('/api/rules/ring-occupancy', { method: 'DELETE' }),
        ]);
        return r.map((x) => x.status);
      });
      expect(statuses).toEqual([403, 403, 403, 403]);
    } finally {
      await vctx.close();
    }
  });

  it('raised no uncaught errors in the pages', () => {
    expect(pageErrors).toEqual([]);
  });
});
