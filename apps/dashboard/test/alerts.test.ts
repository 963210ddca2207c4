import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Alert, Silence } from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebhookPayloadV4 } from '../src/server/notifier.js';
import { api, type LinkSpec, sample, startHub, TestAgent, type TestHub, until } from './helpers.js';

/** A webhook receiver; fails the first `failFirst` requests with 503 to exercise retries. */
async function webhookServer(failFirst = 0) {
  const got: WebhookPayloadV4[] = [];
  let calls = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      calls++;
      if (calls <= failFirst) {
        res.writeHead(503).end();
        return;
      }
      got.push(JSON.parse(body) as WebhookPayloadV4);
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    calls: () => calls,
    close: () => new Promise((r) => server.close(r)),
  };
}

describe('alert rules: pending → firing → resolved, hysteresis, for, keep-firing-for, silences, webhook', () => {
  let hub: TestHub;
  let hook: Awaited<ReturnType<typeof webhookServer>>;
  let agent: TestAgent;
  let seq = 0;
  let records = 0;
  let errors = 0;

  beforeAll(async () => {
    hook = await webhookServer(1);
    hub = await startHub({ alerts: { webhooks: [hook.url], webhookRetryBaseMs: 20, webhookRetries: 5 } });
    agent = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await agent.hello('a1');
  });
  afterAll(async () => {
    agent?.close();
    await hub?.close();
    await hook?.close();
  });

  /** Advance the clock, send one sample of link l0 with these figures, evaluate. */
  const step = async (dtS: number, spec: Partial<LinkSpec> = {}, errPerS = 0) => {
    hub.clock.t += dtS * 1000;
    seq++;
    records += 1000 * dtS;
    errors += errPerS * dtS;
    agent.send(
      sample(seq, hub.clock.t, [
        { id: 'l0', peer: 'b1', records, bytes: records * 64, errors, latency: [[20_000, 100]], ...spec },
      ]),
    );
    await agent.acked(seq);
    hub.app.tick();
  };
  const alertOf = (rule: string): Alert | undefined =>
    hub.app.alerts.activeAlerts().find((a) => a.ruleId === rule);
  const resolvedOf = (rule: string) => hub.app.alerts.recentResolved().filter((a) => a.ruleId === rule);

  it('installs the five default rules', async () => {
    const r = await api<{ rules: Array<{ id: string }> }>(hub, 'GET', '/api/rules');
    expect(r.body.rules.map((x) => x.id).sort()).toEqual([
      'agent-offline',
      'error-rate',
      'link-down',
      'link-latency-p99',
      'ring-occupancy',
    ]);
  });

  it('link latency p99: for 30 s, hysteresis at 0.5 ms, keep-firing-for 60 s', async () => {
    await step(1, { latency: [[2_000_000, 100]] });
    expect(alertOf('link-latency-p99')?.state).toBe('pending');
    // Drops below before `for` elapsed: the pending alert goes away without firing.
    await step(10, { latency: [[20_000, 100]] });
    expect(alertOf('link-latency-p99')).toBeUndefined();
    await step(1, { latency: [[2_000_000, 100]] });
    await step(20, { latency: [[2_000_000, 100]] });
    expect(alertOf('link-latency-p99')?.state).toBe('pending');
    await step(11, { latency: [[2_000_000, 100]] });
    expect(alertOf('link-latency-p99')?.state).toBe('firing');
    // Between clear (0.5 ms) and threshold (1 ms): hysteresis keeps it firing.
    await step(100, { latency: [[800_000, 100]] });
    expect(alertOf('link-latency-p99')?.state).toBe('firing');
    // Below clear: keeps firing for keepFiringForS = 60 s, then resolves.
    await step(1, { latency: [[20_000, 100]] });
    await step(59, { latency: [[20_000, 100]] });
    expect(alertOf('link-latency-p99')?.state).toBe('firing');
    await step(1, { latency: [[20_000, 100]] });
    expect(alertOf('link-latency-p99')).toBeUndefined();
    expect(resolvedOf('link-latency-p99')).toHaveLength(1);
  });

  it('ring occupancy: > 0.9 for 10 s, clears below 0.7 after 30 s', async () => {
    const cap = 1 << 20;
    await step(1, { occupancy: Math.floor(cap * 0.95), capacity: cap });
    expect(alertOf('ring-occupancy')?.state).toBe('pending');
    await step(10, { occupancy: Math.floor(cap * 0.95), capacity: cap });
    expect(alertOf('ring-occupancy')?.state).toBe('firing');
    await step(60, { occupancy: Math.floor(cap * 0.8), capacity: cap });
    expect(alertOf('ring-occupancy')?.state).toBe('firing');
    await step(1, { occupancy: Math.floor(cap * 0.1), capacity: cap });
    await step(30, { occupancy: Math.floor(cap * 0.1), capacity: cap });
    expect(alertOf('ring-occupancy')).toBeUndefined();
    expect(resolvedOf('ring-occupancy')).toHaveLength(1);
  });

  it('link down: fires after 5 s, resolves when up again', async () => {
    await step(1, { state: 'down' });
    expect(alertOf('link-down')?.state).toBe('pending');
    await step(5, { state: 'down' });
    const a = alertOf('link-down')!;
    expect(a.state).toBe('firing');
    expect(a.labels).toMatchObject({
      alertname: 'LinkDown',
      node: 'a1',
      link: 'l0',
      peer: 'b1',
      severity: 'critical',
    });
    await step(1, { state: 'up' });
    expect(alertOf('link-down')).toBeUndefined();
  });

  it('error rate: > 1/s for 30 s, resolves 60 s after dropping below 0.1/s', async () => {
    await step(1, {}, 5);
    expect(alertOf('error-rate')?.state).toBe('pending');
    await step(30, {}, 5);
    expect(alertOf('error-rate')?.state).toBe('firing');
    await step(10, {}, 0.5);
    expect(alertOf('error-rate')?.state).toBe('firing');
    await step(1, {}, 0);
    await step(60, {}, 0);
    expect(alertOf('error-rate')).toBeUndefined();
  });

  it('agent offline: fires 30 s after the agent left, resolves when it is back', async () => {
    agent.close();
    await agent.closed;
    await until(() => !hub.app.fleet.nodes.get('a1')!.connected);
    hub.clock.t += 20_000;
    hub.app.tick();
    expect(alertOf('agent-offline')).toBeUndefined();
    hub.clock.t += 11_000;
    hub.app.tick();
    expect(alertOf('agent-offline')?.state).toBe('firing');
    agent = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await agent.hello('a1');
    await step(1);
    expect(alertOf('agent-offline')).toBeUndefined();
  });

  it('webhook received the Alertmanager v4 payload for firing and resolved, after a retry', async () => {
    await until(() =>
      hook.got.some((p) => p.groupLabels.alertname === 'AgentOffline' && p.status === 'resolved'),
    );
    expect(hook.calls()).toBeGreaterThan(hook.got.length); // the first POST got 503 and was retried
    const firing = hook.got.find((p) => p.status === 'firing' && p.groupLabels.alertname === 'LinkDown')!;
    expect(firing).toMatchObject({
      version: '4',
      groupKey: '{}:{alertname="LinkDown"}',
      truncatedAlerts: 0,
      receiver: expect.any(String),
      commonLabels: { alertname: 'LinkDown', node: 'a1', severity: 'critical' },
      externalURL: hub.url,
    });
    const a = firing.alerts[0]!;
    expect(a.status).toBe('firing');
    expect(a.endsAt).toBe('0001-01-01T00:00:00Z');
    expect(new Date(a.startsAt).getTime()).toBeGreaterThan(0);
    expect(a.generatorURL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/alerts\?id=/);
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(a.annotations.summary).toMatch(/LinkDown/);
    const resolved = hook.got.find((p) => p.status === 'resolved' && p.groupLabels.alertname === 'LinkDown')!;
    expect(new Date(resolved.alerts[0]!.endsAt).getTime()).toBeGreaterThan(
      new Date(resolved.alerts[0]!.startsAt).getTime(),
    );
    for (const name of [
      'LinkLatencyP99High',
      'RingOccupancyHigh',
      'LinkDown',
      'LinkErrors',
      'AgentOffline',
    ]) {
      expect(hook.got.some((p) => p.groupLabels.alertname === name && p.status === 'firing')).toBe(true);
      expect(hook.got.some((p) => p.groupLabels.alertname === name && p.status === 'resolved')).toBe(true);
    }
  });

  it('a matching silence suppresses notification until it expires; ack records who and when', async () => {
    const before = hook.got.length;
    const s = await api<Silence>(hub, 'POST', '/api/silences', {
      matchers: [
        { name: 'alertname', value: 'LinkDown' },
        { name: 'node', value: 'a.*', isRegex: true },
      ],
      durationS: 60,
      comment: 'maintenance',
    });
    expect(s.status).toBe(201);
    expect(s.body.status).toBe('active');
    await step(1, { state: 'down' });
    await step(6, { state: 'down' });
    const a = alertOf('link-down')!;
    expect(a.state).toBe('firing');
    expect(a.silencedBy).toEqual([s.body.id]);
    const ack = await api<Alert>(hub, 'POST', `/api/alerts/${a.id}/ack`, { comment: 'on it' });
    expect(ack.body.ack).toMatchObject({ by: 'admin', comment: 'on it', at: hub.clock.t });
    await new Promise((r) => setTimeout(r, 300));
    expect(hook.got.slice(before).some((p) => p.groupLabels.alertname === 'LinkDown')).toBe(false);
    // The silence ends: the still-firing alert is notified now.
    await step(60, { state: 'down' });
    expect(alertOf('link-down')!.silencedBy).toEqual([]);
    await until(() =>
      hook.got.slice(before).some((p) => p.groupLabels.alertname === 'LinkDown' && p.status === 'firing'),
    );
    const list = await api<{ silences: Silence[] }>(hub, 'GET', '/api/silences');
    expect(list.body.silences.find((x) => x.id === s.body.id)?.status).toBe('expired');
    await step(1, { state: 'up' });
    const hist = await api<{ events: Array<{ state: string; by?: string; comment?: string }> }>(
      hub,
      'GET',
      '/api/alerts/history?limit=500',
    );
    expect(hist.body.events.some((e) => e.state === 'ack' && e.by === 'admin' && e.comment === 'on it')).toBe(
      true,
    );
    expect(hist.body.events.some((e) => e.state === 'resolved')).toBe(true);
  });

  it('operators edit rules through the API; bad rules are refused', async () => {
    const rule = {
      id: 'bp',
      name: 'Backpressure',
      metric: 'backpressure_rate',
      comparison: '>',
      threshold: 10,
      clear: 5,
      forS: 0,
      keepFiringForS: 0,
      severity: 'info',
    };
    expect((await api(hub, 'POST', '/api/rules', rule)).status).toBe(201);
    expect((await api(hub, 'POST', '/api/rules', rule)).status).toBe(409);
    const bad = await api<{ error: { message: string } }>(hub, 'POST', '/api/rules', {
      ...rule,
      id: 'x',
      metric: 'nope',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/metric/);
    expect((await api(hub, 'PUT', '/api/rules/bp', { ...rule, threshold: 20 })).status).toBe(200);
    expect((await api(hub, 'DELETE', '/api/rules/bp')).status).toBe(204);
    expect((await api(hub, 'DELETE', '/api/rules/bp')).status).toBe(404);
  });
});

describe('active alerts across a hub restart', () => {
  it('keep state, ack and notification status; no duplicate notification', async () => {
    const hook = await webhookServer(0);
    const { tempDir } = await import('./helpers.js');
    const dir = tempDir('rdmaq-restart-');
    const cfg = { alerts: { webhooks: [hook.url], webhookRetryBaseMs: 20, webhookRetries: 2 } };
    let hub = await startHub(cfg, { dir });
    try {
      let agent = await TestAgent.connect(hub.wsUrl, hub.agentToken);
      await agent.hello('r1');
      for (const [seq, dt] of [
        [1, 0],
        [2, 6],
      ] as const) {
        hub.clock.t += dt * 1000;
        agent.send(sample(seq, hub.clock.t, [{ id: 'l0', peer: 'p', state: 'down' }]));
        await agent.acked(seq);
        hub.app.tick();
      }
      const firing = hub.app.alerts.firing().find((a) => a.ruleId === 'link-down')!;
      expect(firing).toBeDefined();
      await api(hub, 'POST', `/api/alerts/${firing.id}/ack`, { comment: 'known' });
      await until(() =>
        hook.got.some((p) => p.groupLabels.alertname === 'LinkDown' && p.status === 'firing'),
      );
      const sent = hook.got.length;
      agent.close();
      await hub.close();

      hub = await startHub(cfg, { dir });
      // Before the agent is back: the alert is restored, not resolved.
      hub.app.tick();
      const restored = hub.app.alerts.activeAlerts().find((a) => a.id === firing.id)!;
      expect(restored).toMatchObject({ state: 'firing', ack: { by: 'admin', comment: 'known' } });
      agent = await TestAgent.connect(hub.wsUrl, hub.agentToken);
      await agent.hello('r1');
      hub.clock.t += 1000;
      agent.send(sample(3, hub.clock.t, [{ id: 'l0', peer: 'p', state: 'down' }]));
      await agent.acked(3);
      hub.app.tick();
      expect(hub.app.alerts.firing().find((a) => a.id === firing.id)?.ack?.comment).toBe('known');
      await new Promise((r) => setTimeout(r, 200));
      expect(hook.got.length).toBe(sent);
      // Up again: resolved, and since it was notified as firing, the resolution is notified.
      hub.clock.t += 1000;
      agent.send(sample(4, hub.clock.t, [{ id: 'l0', peer: 'p', state: 'up' }]));
      await agent.acked(4);
      hub.app.tick();
      expect(hub.app.alerts.activeAlerts()).toHaveLength(0);
      await until(() =>
        hook.got.some((p) => p.groupLabels.alertname === 'LinkDown' && p.status === 'resolved'),
      );
      agent.close();
    } finally {
      await hub.close();
      await hook.close();
      const { rmSync } = await import('node:fs');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
