import { rmSync } from 'node:fs';
import type { Alert, Silence } from '@rdmaq/shared';
import { CloseCode } from '@rdmaq/shared';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/server/app.js';
import type { AuditEntry } from '../src/server/audit.js';
import { ADMIN, api, login, sample, startHub, TestAgent, type TestHub, tempDir } from './helpers.js';

type Page = { entries: AuditEntry[]; next?: number };

const RULE = {
  id: 'audit-occ',
  name: 'AuditOccupancy',
  metric: 'occupancy_ratio',
  comparison: '>',
  threshold: 0.8,
  clear: 0.5,
  forS: 0,
  keepFiringForS: 0,
  severity: 'warning',
};

describe('audit trail: every state-changing call records who did what', () => {
  let hub: TestHub;
  let viewer: string;
  let operator: string;
  const audit = async () => (await api<Page>(hub, 'GET', '/api/audit?limit=500')).body.entries;
  /** The newest entry for `action` (and `target` when given). */
  const last = async (action: string, target?: string) =>
    (await audit()).find((e) => e.action === action && (target === undefined || e.target === target));

  beforeAll(async () => {
    hub = await startHub();
    for (const [name, role] of [
      ['vera', 'viewer'],
      ['otto', 'operator'],
    ]) {
      const r = await api(hub, 'POST', '/api/users', { name, password: `${name}-password-123`, role });
      expect(r.status).toBe(201);
    }
    viewer = await login(hub.url, 'vera', 'vera-password-123');
    operator = await login(hub.url, 'otto', 'otto-password-123');
  });
  afterAll(async () => {
    await hub?.close();
  });

  it('agent tokens: create, re-bind and revoke are recorded without the secret', async () => {
    const c = await api<{ id: string; token: string }>(hub, 'POST', '/api/agent-tokens', {
      name: 'rack-7',
      nodes: ['rack7-*'],
    });
    expect(c.status).toBe(201);
    const created = await last('token.create', c.body.id);
    expect(created).toMatchObject({
      user: ADMIN.user,
      role: 'admin',
      target: c.body.id,
      detail: { name: 'rack-7', nodes: ['rack7-*'] },
      address: expect.stringMatching(/127\.0\.0\.1/),
    });
    expect(JSON.stringify(await audit())).not.toContain(c.body.token);

    expect((await api(hub, 'PATCH', `/api/agent-tokens/${c.body.id}`, { nodes: ['rack7-h1'] })).status).toBe(
      200,
    );
    expect((await last('token.update', c.body.id))?.detail).toMatchObject({
      nodes: ['rack7-h1'],
      disconnected: 0,
    });

    // A connected agent on the token is cut off at revocation and the entry says so.
    const agent = await TestAgent.connect(hub.wsUrl, c.body.token);
    await agent.hello('rack7-h1');
    const del = await api<{ revoked: string; disconnected: number }>(
      hub,
      'DELETE',
      `/api/agent-tokens/${c.body.id}`,
    );
    expect(del.body).toEqual({ revoked: c.body.id, disconnected: 1 });
    expect((await agent.closed).code).toBe(CloseCode.Unauthorized);
    expect((await last('token.revoke', c.body.id))?.detail).toEqual({ name: 'rack-7', disconnected: 1 });
    // A failed call (already revoked) records nothing.
    const before = (await audit()).length;
    expect((await api(hub, 'DELETE', `/api/agent-tokens/${c.body.id}`)).status).toBe(404);
    expect((await audit()).length).toBe(before);
  });

  it('users: create, role change, password reset and delete are recorded; passwords never are', async () => {
    expect(
      (await api(hub, 'POST', '/api/users', { name: 'tmp1', password: 'tmp1-password-xyz', role: 'viewer' }))
        .status,
    ).toBe(201);
    expect((await last('user.create', 'tmp1'))?.detail).toEqual({ role: 'viewer' });
    expect((await api(hub, 'PATCH', '/api/users/tmp1', { role: 'operator' })).status).toBe(200);
    expect((await last('user.update', 'tmp1'))?.detail).toEqual({ role: 'operator' });
    expect((await api(hub, 'PATCH', '/api/users/tmp1', { password: 'another-secret-pw-1' })).status).toBe(
      200,
    );
    expect((await last('user.update', 'tmp1'))?.detail).toEqual({ password: 'reset' });
    expect((await api(hub, 'DELETE', '/api/users/tmp1')).status).toBe(204);
    expect(await last('user.delete', 'tmp1')).toMatchObject({ user: 'admin', role: 'admin' });
    // Not yourself: an admin cannot delete or demote their own account (another admin can).
    const self = await api<{ error: { message: string } }>(hub, 'DELETE', '/api/users/admin');
    expect(self.status).toBe(409);
    expect(self.body.error.message).toMatch(/cannot delete your own account/);
    const demote = await api<{ error: { message: string } }>(hub, 'PATCH', '/api/users/admin', {
      role: 'viewer',
    });
    expect(demote.status).toBe(409);
    expect(demote.body.error.message).toMatch(/cannot change your own role/);
    expect(await last('user.delete', 'admin')).toBeUndefined();
    // Beneath the API, the last admin stays guarded too.
    expect(() => hub.app.auth.deleteUser('admin')).toThrow(/admin is the last admin/);
    await expect(hub.app.auth.updateUser('admin', { role: 'viewer' })).rejects.toThrow(/last admin/);
    const all = JSON.stringify(await audit());
    expect(all).not.toContain('tmp1-password-xyz');
    expect(all).not.toContain('another-secret-pw-1');
  });

  it('rules by an operator: create, update (with what changed) and delete', async () => {
    expect((await api(hub, 'POST', '/api/rules', RULE, operator)).status).toBe(201);
    expect(await last('rule.create', RULE.id)).toMatchObject({
      user: 'otto',
      role: 'operator',
      detail: { rule: { id: RULE.id, threshold: 0.8 } },
    });
    const put = await api(hub, 'PUT', `/api/rules/${RULE.id}`, { ...RULE, threshold: 0.9 }, operator);
    expect(put.status).toBe(200);
    expect((await last('rule.update', RULE.id))?.detail).toEqual({ changed: { threshold: [0.8, 0.9] } });
    expect((await api(hub, 'DELETE', `/api/rules/${RULE.id}`, undefined, operator)).status).toBe(204);
    expect(await last('rule.delete', RULE.id)).toMatchObject({ user: 'otto' });
  });

  it('silences and acknowledgements by an operator', async () => {
    const s = await api<Silence>(
      hub,
      'POST',
      '/api/silences',
      { matchers: [{ name: 'node', value: 'n-audit' }], durationS: 600, comment: 'maintenance' },
      operator,
    );
    expect(s.status).toBe(201);
    expect(await last('silence.create', s.body.id)).toMatchObject({
      user: 'otto',
      detail: { comment: 'maintenance', matchers: [{ name: 'node', value: 'n-audit' }] },
    });
    expect((await api(hub, 'DELETE', `/api/silences/${s.body.id}`, undefined, operator)).status).toBe(200);
    expect(await last('silence.expire', s.body.id)).toMatchObject({ user: 'otto' });

    const agent = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await agent.hello('n-ack');
    agent.send(sample(1, hub.clock.t, [{ id: 'l0', peer: 'p', state: 'down' }]));
    await agent.acked(1);
    hub.app.tick();
    const alert = hub.app.alerts
      .activeAlerts()
      .find((a: Alert) => a.ruleId === 'link-down' && a.labels.node === 'n-ack')!;
    expect(alert).toBeDefined();
    const path = `/api/alerts/${encodeURIComponent(alert.id)}/ack`;
    expect((await api(hub, 'POST', path, { comment: 'looking' }, operator)).status).toBe(200);
    expect(await last('alert.ack', alert.id)).toMatchObject({
      user: 'otto',
      detail: { rule: 'link-down', comment: 'looking' },
    });
    expect((await api(hub, 'DELETE', path, undefined, operator)).status).toBe(200);
    expect(await last('alert.unack', alert.id)).toMatchObject({ user: 'otto' });
    agent.close();
  });

  it('a password change is recorded for the user who made it', async () => {
    const r = await api(
      hub,
      'POST',
      '/api/auth/password',
      { current: 'vera-password-123', password: 'vera-password-456' },
      viewer,
    );
    expect(r.status).toBe(204);
    expect(await last('password.change', 'vera')).toMatchObject({ user: 'vera', role: 'viewer', detail: {} });
    viewer = await login(hub.url, 'vera', 'vera-password-456');
  });

  it('only admins read the trail; viewers and operators are refused the admin API', async () => {
    for (const cookie of [viewer, operator]) {
      expect((await api(hub, 'GET', '/api/audit', undefined, cookie)).status).toBe(403);
      expect((await api(hub, 'GET', '/api/agent-tokens', undefined, cookie)).status).toBe(403);
      expect((await api(hub, 'POST', '/api/agent-tokens', { name: 'x' }, cookie)).status).toBe(403);
      expect((await api(hub, 'GET', '/api/users', undefined, cookie)).status).toBe(403);
      expect(
        (
          await api(
            hub,
            'POST',
            '/api/users',
            { name: 'y', password: 'y-password-123', role: 'admin' },
            cookie,
          )
        ).status,
      ).toBe(403);
      expect((await api(hub, 'DELETE', '/api/users/admin', undefined, cookie)).status).toBe(403);
    }
    // Viewers read rules but cannot change them.
    expect((await api(hub, 'GET', '/api/rules', undefined, viewer)).status).toBe(200);
    expect((await api(hub, 'POST', '/api/rules', { ...RULE, id: 'v' }, viewer)).status).toBe(403);
    expect((await api(hub, 'GET', '/api/audit', undefined, '')).status).toBe(401);
    // Refused calls leave no entry.
    expect((await audit()).some((e) => e.user === 'vera' && e.action !== 'password.change')).toBe(false);
  });

  it('pages newest first with a cursor; limits are bounded', async () => {
    const all = await audit();
    expect(all.length).toBeGreaterThan(10);
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => b - a));
    const seen: number[] = [];
    let cursor: number | undefined;
    for (;;) {
      const p = await api<Page>(hub, 'GET', `/api/audit?limit=4${cursor ? `&before=${cursor}` : ''}`);
      expect(p.status).toBe(200);
      expect(p.body.entries.length).toBeLessThanOrEqual(4);
      seen.push(...p.body.entries.map((e) => e.id));
      if (p.body.next === undefined) break;
      expect(p.body.entries.length).toBe(4);
      cursor = p.body.next;
    }
    expect(seen).toEqual(all.map((e) => e.id));
    for (const q of ['limit=0', 'limit=501', 'limit=x', 'before=-1']) {
      expect((await api(hub, 'GET', `/api/audit?${q}`)).status, q).toBe(400);
    }
  });
});

describe('audit retention', () => {
  let hub: TestHub | undefined;
  afterEach(async () => {
    await hub?.close();
    hub = undefined;
  });

  it('keeps at most maxRows, newest first, with bounded deletes', async () => {
    hub = await startHub({ audit: { maxRows: 100, retentionDays: 30 } });
    const a = hub.app.audit;
    for (let i = 0; i < 250; i++)
      a.record({ user: 'bot', role: 'admin', action: 'test.fill', target: `t${i}` });
    a.prune();
    expect(a.count()).toBe(100);
    const page = a.list(500);
    expect(page.entries[0]!.target).toBe('t249');
    expect(page.entries.at(-1)!.target).toBe('t150');
    expect(page.next).toBeUndefined();
    // Records prune by themselves every few hundred rows, without a timer.
    for (let i = 0; i < 600; i++) a.record({ user: 'bot', role: 'admin', action: 'test.fill' });
    expect(a.count()).toBeLessThanOrEqual(100 + 256);
  });

  it('drops entries older than retentionDays when the clock passes them', async () => {
    hub = await startHub({ audit: { maxRows: 1000, retentionDays: 2 } });
    const a = hub.app.audit;
    a.record({ user: 'bot', role: 'admin', action: 'test.old' });
    hub.clock.t += 86_400_000;
    a.record({ user: 'bot', role: 'admin', action: 'test.middle' });
    expect(a.prune()).toBe(0);
    hub.clock.t += 1.5 * 86_400_000;
    expect(a.prune()).toBeGreaterThanOrEqual(1);
    const actions = a.list(100).entries.map((e) => e.action);
    expect(actions).toContain('test.middle');
    expect(actions).not.toContain('test.old');
  });

  it('clips oversized fields to the table limits', async () => {
    hub = await startHub();
    const a = hub.app.audit;
    a.record({
      user: 'u'.repeat(200),
      role: 'admin',
      action: 'a'.repeat(200),
      target: 't'.repeat(1000),
      detail: { big: 'x'.repeat(100_000) },
    });
    const e = a.list(1).entries[0]!;
    expect(e.user.length).toBe(64);
    expect(e.action.length).toBe(64);
    expect(e.target.length).toBe(256);
    expect(JSON.stringify(e.detail).length).toBeLessThanOrEqual(4096);
    expect(e.detail).toHaveProperty('truncated');
  });
});

describe('first-admin setup is recorded', () => {
  it('names the new admin', async () => {
    const dir = tempDir();
    const app = await buildApp({
      config: { dataDir: dir, port: 0, host: '127.0.0.1', logLevel: 'silent' },
      next: false,
      timers: false,
      logger: pino({ level: 'silent' }),
    });
    try {
      await app.listen(0, '127.0.0.1');
      const res = await fetch(`${app.url()}/api/auth/setup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: app.setupToken, name: 'root', password: 'root-password-123' }),
      });
      expect(res.status).toBe(200);
      expect(app.audit.list(10).entries).toMatchObject([
        { user: 'root', role: 'admin', action: 'setup.admin', target: 'root' },
      ]);
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
