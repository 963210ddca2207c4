import { CloseCode } from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, login, startHub, TestAgent, type TestHub } from './helpers.js';

describe('REST: users, sessions, tokens, limits', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub({ ingest: { maxFrameBytes: 1024 * 1024, helloTimeoutMs: 300, maxAgents: 100 } });
  });
  afterAll(async () => {
    await hub?.close();
  });

  it('admins manage users; the last admin cannot be removed or demoted', async () => {
    expect(
      (await api(hub, 'POST', '/api/users', { name: 'olive', password: 'operator-pass-1', role: 'operator' }))
        .status,
    ).toBe(201);
    expect(
      (await api(hub, 'POST', '/api/users', { name: 'olive', password: 'operator-pass-1', role: 'operator' }))
        .status,
    ).toBe(409);
    expect(
      (await api(hub, 'POST', '/api/users', { name: 'x', password: 'short', role: 'viewer' })).status,
    ).toBe(400);
    expect(
      (await api(hub, 'POST', '/api/users', { name: 'x', password: 'long enough 1', role: 'root' })).status,
    ).toBe(400);
    const list = await api<{ users: Array<{ name: string; role: string }> }>(hub, 'GET', '/api/users');
    expect(list.body.users.map((u) => `${u.name}:${u.role}`)).toEqual(['admin:admin', 'olive:operator']);
    const op = await login(hub.url, 'olive', 'operator-pass-1');
    expect((await api(hub, 'GET', '/api/users', undefined, op)).status).toBe(403);
    expect((await api(hub, 'PATCH', '/api/users/admin', { role: 'viewer' })).status).toBe(409);
    expect((await api(hub, 'DELETE', '/api/users/admin')).status).toBe(409);
    expect((await api(hub, 'PATCH', '/api/users/olive', { role: 'viewer' })).status).toBe(200);
    expect((await api<{ role: string }>(hub, 'GET', '/api/auth/me', undefined, op)).body.role).toBe('viewer');
    // A password change ends the user's sessions.
    expect((await api(hub, 'PATCH', '/api/users/olive', { password: 'another-pass-2' })).status).toBe(200);
    expect((await api(hub, 'GET', '/api/auth/me', undefined, op)).status).toBe(401);
    expect((await api(hub, 'DELETE', '/api/users/olive')).status).toBe(204);
    expect((await api(hub, 'DELETE', '/api/users/olive')).status).toBe(404);
  });

  it('logout ends the session; a user changes their own password', async () => {
    await api(hub, 'POST', '/api/users', { name: 'paula', password: 'paula-pass-123', role: 'viewer' });
    const c = await login(hub.url, 'paula', 'paula-pass-123');
    expect(
      (await api(hub, 'POST', '/api/auth/password', { current: 'wrong', password: 'paula-pass-456' }, c))
        .status,
    ).toBe(403);
    expect(
      (
        await api(
          hub,
          'POST',
          '/api/auth/password',
          { current: 'paula-pass-123', password: 'paula-pass-456' },
          c,
        )
      ).status,
    ).toBe(204);
    // The change ended the sessions of that user, this one included.
    expect((await api(hub, 'GET', '/api/auth/me', undefined, c)).status).toBe(401);
    const c2 = await login(hub.url, 'paula', 'paula-pass-456');
    const out = await fetch(`${hub.url}/api/auth/logout`, { method: 'POST', headers: { cookie: c2 } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/Max-Age=0/);
    expect((await api(hub, 'GET', '/api/auth/me', undefined, c2)).status).toBe(401);
  });

  it('lists agent tokens without the secret, with last use', async () => {
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await a.hello('tok-user');
    a.close();
    const r = await api<{ tokens: Array<Record<string, unknown>> }>(hub, 'GET', '/api/agent-tokens');
    const t = r.body.tokens.find((x) => x.name === 'test')!;
    expect(t).toMatchObject({ createdBy: 'admin', revokedAt: null });
    expect(typeof t.lastUsedAt).toBe('number');
    expect(JSON.stringify(r.body)).not.toContain(hub.agentToken);
  });

  it('refuses bodies over 64 KiB, unknown endpoints and wrong methods', async () => {
    const big = await fetch(`${hub.url}/api/rules`, {
      method: 'POST',
      headers: { cookie: hub.cookie, 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(70_000) }),
    });
    expect(big.status).toBe(413);
    expect((await api(hub, 'GET', '/api/nope')).status).toBe(404);
    expect((await api(hub, 'PUT', '/api/health')).status).toBe(405);
    expect((await api(hub, 'GET', '/api/links/none~x')).status).toBe(404);
    expect((await api(hub, 'GET', '/api/history')).status).toBe(400);
    expect((await api(hub, 'GET', '/api/history?link=a~b&points=0')).status).toBe(400);
  });

  it('an agent that never says hello is closed', async () => {
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    const c = await a.closed;
    expect(c.code).toBe(CloseCode.BadFrame);
    expect(c.reason).toMatch(/no hello within 300 ms/);
  });
});
