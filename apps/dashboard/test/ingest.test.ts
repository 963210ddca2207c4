import { CloseCode } from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { waitFor } from '../../../tooling/test-support/wait.js';
import { api, hello, LiveClient, sample, startHub, TestAgent, type TestHub } from './helpers.js';

const L = [{ id: 'l0', peer: 'p', records: 10, bytes: 100 }];

describe('ingest refuses bad input with clear reasons, stores nothing, stays alive', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startHub({ ingest: { maxFrameBytes: 8192, helloTimeoutMs: 2000, maxAgents: 100 } });
  });
  afterAll(async () => {
    await hub?.close();
  });

  const storedNothing = async () => {
    const h = await (await fetch(`${hub.url}/api/health`)).json();
    expect(h).toEqual({
      status: 'ok',
      agents: expect.objectContaining({ connected: 0, stale: 0 }),
      links: { up: 0, total: 0 },
    });
    hub.app.fleet.flush(true);
    const rows = hub.app.store.db.prepare('SELECT count(*) AS n FROM rollup_1m').get() as { n: number };
    expect(rows.n).toBe(0);
  };

  it('malformed JSON → 4000 "not JSON"', async () => {
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    a.send('{"type":"hello",');
    const c = await a.closed;
    expect(c.code).toBe(CloseCode.BadFrame);
    expect(c.reason).toMatch(/not JSON/);
    expect(a.frames[0]).toMatchObject({ type: 'error', code: 'ERR_RDMAQ_BAD_FRAME' });
  });

  it('wrong schema → 4000 naming the field; nothing of the sample is stored', async () => {
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await a.hello('bad-schema');
    const s = sample(1, hub.clock.t, L) as unknown as { links: Array<{ counters: Record<string, unknown> }> };
    s.links[0]!.counters.bytes = 'lots';
    a.send(s);
    const c = await a.closed;
    expect(c.code).toBe(CloseCode.BadFrame);
    expect(c.reason).toContain('links.0.counters.bytes');
    expect(hub.app.fleet.links.size).toBe(0);
  });

  it('a sample before hello is refused; one from the future is dropped with a notice', async () => {
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    a.send(sample(1, hub.clock.t, L));
    expect((await a.closed).reason).toMatch(/before hello/);
    const b = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await b.hello('future');
    b.send(sample(1, hub.clock.t + 3600_000, L));
    const e = await b.waitFor((f) => f.type === 'error');
    expect(e.message).toMatch(/ahead of the hub clock/);
    await b.acked(1);
    expect(hub.app.fleet.links.size).toBe(0);
    b.close();
    await b.closed;
  });

  it('wrong protocol version → 4002', async () => {
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    a.send({ ...hello('v9'), v: 9 });
    const c = await a.closed;
    expect(c.code).toBe(CloseCode.ProtocolVersion);
    expect(c.reason).toMatch(/version 9/);
  });

  it('oversized frame → 1009', async () => {
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await a.hello('big');
    a.send(JSON.stringify({ ...sample(1, hub.clock.t, L), pad: 'x'.repeat(20_000) }));
    const c = await a.closed;
    expect(c.code).toBe(CloseCode.TooBig);
    expect(hub.app.ingest.refused.get(CloseCode.TooBig)).toBeGreaterThanOrEqual(1);
  });

  it('unknown or missing agent token → 4001', async () => {
    const a = await TestAgent.connect(hub.wsUrl, 'rdmaq_not-a-token');
    const c = await a.closed;
    expect(c.code).toBe(CloseCode.Unauthorized);
    expect(c.reason).toMatch(/unknown or revoked agent token/);
    const b = await TestAgent.connect(hub.wsUrl, undefined);
    expect((await b.closed).reason).toMatch(/Authorization: Bearer/);
  });

  it('wrong origin → 4004 on /ws/agent, 403 on /ws/live; no session → 401', async () => {
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken, { origin: 'http://evil.example' });
    const c = await a.closed;
    expect(c.code).toBe(CloseCode.Forbidden);
    expect(c.reason).toMatch(/origin/);
    await expect(LiveClient.connect(hub, { origin: 'http://evil.example' })).rejects.toThrow(/403/);
    await expect(LiveClient.connect(hub, { cookie: 'rdmaq_session=forged' })).rejects.toThrow(/401/);
  });

  it('after all that: nothing stored and the hub answers', async () => {
    await storedNothing();
  });

  it('a live client sending garbage is closed with a reason', async () => {
    const c = await LiveClient.connect(hub);
    const closed = new Promise<{ code: number; reason: string }>((r) =>
      c.ws.on('close', (code, reason) => r({ code, reason: String(reason) })),
    );
    c.send({ type: 'subscribe', view: 'everything' });
    const x = await closed;
    expect(x.code).toBe(4000);
    expect(x.reason).toMatch(/view must be/);
  });

  it('replayed samples after a reconnect are merged without duplicates', async () => {
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    expect(await a.hello('replay', 'run-A')).toBe(0);
    const t0 = hub.clock.t - 60_000;
    const at = (seq: number) =>
      sample(seq, t0 + seq * 1000, [{ id: 'l0', peer: 'p', records: seq * 100, bytes: seq }]);
    for (let s = 1; s <= 10; s++) a.send(at(s));
    await a.acked(10);
    a.close();
    await a.closed;
    const b = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    expect(await b.hello('replay', 'run-A')).toBe(10);
    // The agent replays more than needed (5..10 again) then goes on.
    for (let s = 5; s <= 12; s++) b.send(at(s));
    await b.acked(12);
    const node = await api<{ ingest: { lastSeq: number; duplicatesDropped: number } }>(
      hub,
      'GET',
      '/api/nodes/replay',
    );
    expect(node.body.ingest).toMatchObject({ lastSeq: 12, duplicatesDropped: 6 });
    hub.app.fleet.flush(true);
    const r = hub.app.store.db
      .prepare("SELECT sum(samples) AS s, sum(records) AS rec FROM rollup_1m WHERE link_key = 'replay~l0'")
      .get() as { s: number; rec: number };
    expect(r.s).toBe(12);
    expect(r.rec).toBe(1100);
    // A new agent run starts from seq 1 again.
    b.close();
    await b.closed;
    const c = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    expect(await c.hello('replay', 'run-B')).toBe(0);
    c.close();
  });

  it('a second connection for the same node replaces the first (4003)', async () => {
    const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await a.hello('dup');
    const b = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await b.hello('dup');
    expect((await a.closed).code).toBe(CloseCode.Duplicate);
    b.close();
  });

  it('a revoked token disconnects its agents and no longer connects', async () => {
    const created = await api<{ id: string; token: string }>(hub, 'POST', '/api/agent-tokens', {
      name: 'short-lived',
    });
    const a = await TestAgent.connect(hub.wsUrl, created.body.token);
    await a.hello('revoked');
    expect((await api(hub, 'DELETE', `/api/agent-tokens/${created.body.id}`)).status).toBe(200);
    expect((await a.closed).code).toBe(CloseCode.Unauthorized);
    const b = await TestAgent.connect(hub.wsUrl, created.body.token);
    expect((await b.closed).code).toBe(CloseCode.Unauthorized);
  });

  it('REST refuses bad bodies, missing sessions, low roles and foreign origins', async () => {
    const bad = await fetch(`${hub.url}/api/silences`, {
      method: 'POST',
      headers: { cookie: hub.cookie, 'content-type': 'application/json' },
      body: '{oops',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('ERR_RDMAQ_BAD_REQUEST');
    expect((await fetch(`${hub.url}/api/nodes`)).status).toBe(401);
    await api(hub, 'POST', '/api/users', { name: 'vera', password: 'viewer-password-1', role: 'viewer' });
    const login = await fetch(`${hub.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'vera', password: 'viewer-password-1' }),
    });
    const setCookie = login.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    const viewer = setCookie.split(';')[0]!;
    expect((await api(hub, 'GET', '/api/nodes', undefined, viewer)).status).toBe(200);
    expect((await api(hub, 'POST', '/api/rules', {}, viewer)).status).toBe(403);
    const foreign = await fetch(`${hub.url}/api/silences`, {
      method: 'POST',
      headers: { cookie: hub.cookie, 'content-type': 'application/json', origin: 'http://evil.example' },
      body: JSON.stringify({ matchers: [{ name: 'node', value: 'x' }], durationS: 60 }),
    });
    expect(foreign.status).toBe(403);
    const wrong = await fetch(`${hub.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'vera', password: 'nope' }),
    });
    expect(wrong.status).toBe(401);
  });

  it('the ws upgrade on an unknown path is refused', async () => {
    const ws = new WebSocket(`${hub.wsUrl}/ws/other`);
    const status = await new Promise<number>((r) => {
      ws.on('unexpected-response', (_q, res) => r(res.statusCode ?? 0));
      ws.on('error', () => r(-1));
    });
    expect(status).toBe(404);
  });
});

describe('agents that go away', () => {
  it('their links stop counting as up at once and leave memory after the memory window', async () => {
    const hub = await startHub({
      history: { memoryS: 60, minuteRetentionDays: 7, hourRetentionDays: 90, flushIntervalMs: 1000 },
    });
    try {
      const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
      await a.hello('gone');
      a.send(sample(1, hub.clock.t, L));
      await a.acked(1);
      expect(hub.app.fleet.health().links).toEqual({ up: 1, total: 1 });
      a.close();
      await a.closed;
      await waitFor(
        'the hub to see the agent gone',
        () => hub.app.fleet.nodes.get('gone')?.connected === false,
      );
      expect(hub.app.fleet.health().links).toEqual({ up: 0, total: 1 });
      hub.clock.t += 5 * 60_000;
      hub.app.fleet.flush();
      expect(hub.app.fleet.health().links).toEqual({ up: 0, total: 0 });
      expect(hub.app.fleet.nodes.get('gone')?.connected).toBe(false);
    } finally {
      await hub.close();
    }
  });
});
