import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Alert, AlertRule, Silence } from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import type { WebhookPayloadV4 } from '../src/server/notifier.js';
import { api, type LinkSpec, sample, startHub, TestAgent, type TestHub } from './helpers.js';

/**
 * Nothing the hub's notifier queued is still on its way: every notification was delivered (the receiver
 * has it) or given up. Alert evaluation queues synchronously, so after `tick()` this is the point where a
 * notification that should not have been sent would already have arrived.
 */
async function notifierDrained(hub: TestHub): Promise<void> {
  await waitFor('the notifier to drain', () => hub.app.notifier.stats().every((o) => o.pending === 0));
}

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

  it('installs the default rules: one latency rule per provider class, then the others', async () => {
    const r = await api<{ rules: AlertRule[] }>(hub, 'GET', '/api/rules');
    expect(r.body.rules.map((x) => x.id).sort()).toEqual([
      'agent-offline',
      'error-rate',
      'link-down',
      'link-latency-p99-other',
      'link-latency-p99-rdma',
      'link-latency-p99-shm',
      'link-latency-p99-tcp',
      'link-stalled',
      'ring-occupancy',
      'ring-stuck',
    ]);
    // The effective threshold of each class is an ordinary rule field, readable by anyone with a login.
    const byClass = Object.fromEntries(
      r.body.rules
        .filter((x) => x.metric === 'latency_p99')
        .map((x) => [x.match.provider_class, [x.threshold, x.clear, x.windowS, x.forS, x.keepFiringForS]]),
    );
    expect(byClass).toEqual({
      rdma: [500_000, 250_000, 30, 45, 30],
      tcp: [20_000_000, 10_000_000, 30, 45, 30],
      shm: [10_000_000, 5_000_000, 30, 45, 30],
      other: [20_000_000, 10_000_000, 30, 45, 30],
    });
    expect(r.body.rules.every((x) => x.metric !== 'latency_p99' || x.name === 'LinkLatencyP99High')).toBe(
      true,
    );
  });

  /** One sample a second for `n` seconds; `check` runs after each evaluation. */
  const run = async (n: number, spec: Partial<LinkSpec>, check?: () => void) => {
    for (let i = 0; i < n; i++) {
      await step(1, spec);
      check?.();
    }
  };
  const TCP = 'link-latency-p99-tcp';
  // 100 records a second; p99 is the 99th: 5 slow ones make p99 the slow value.
  const p99 = (ns: number): Partial<LinkSpec> => ({
    latency: [
      [150_000, 95],
      [ns, 5],
    ],
  });
  /** Every record slowed (a queue in the path delays them all). */
  const all = (ns: number): Partial<LinkSpec> => ({ latency: [[ns, 100]] });

  it('TCP link: p99 3 ms stays quiet; p99 60 ms fires after `for` 45 s; hysteresis; resolves after it drops', async () => {
    // A healthy TCP link (kernel stack, shared cores): p99 3 ms for a minute raises nothing.
    await run(60, p99(3_000_000), () => expect(alertOf(TCP)).toBeUndefined());
    expect(hub.app.alerts.activeAlerts()).toHaveLength(0);
    // Sick: 60 ms (a saturated tbf qdisc). The 30 s window's p99 passes 20 ms at once: pending.
    await step(1, all(60_000_000));
    expect(alertOf(TCP)?.state).toBe('pending');
    await run(44, all(60_000_000), () => expect(alertOf(TCP)?.state).toBe('pending'));
    await step(1, all(60_000_000));
    const a = alertOf(TCP)!;
    expect(a.state).toBe('firing');
    // Well within the required minute: 45 s after the first slow second reached the hub.
    expect(a.firedAt! - a.activeAt).toBe(45_000);
    expect(a.labels).toMatchObject({ alertname: 'LinkLatencyP99High', provider_class: 'tcp', link: 'l0' });
    expect(a.threshold).toBe(20_000_000);
    expect(Math.abs(a.value! - 60_000_000) / 60_000_000).toBeLessThan(0.01);
    // The summary speaks in units, with the window, the threshold and the clear level.
    expect(a.summary).toMatch(/latency_p99 over 30 s > 20 ms \(clears below 10 ms\)/);
    expect(a.summary).toMatch(/: value (59\.\d|60(\.\d)?) ms$/);
    expect(a.summary).toMatch(/tcp;ofi_rxm, class tcp/);
    // Between clear (10 ms) and threshold (20 ms): hysteresis keeps it firing.
    await run(40, all(15_000_000), () => expect(alertOf(TCP)?.state).toBe('firing'));
    // Healthy again: the window still holds 15 ms seconds for 30–35 s, then keep-firing-for 30 s.
    await run(60, p99(3_000_000), () => expect(alertOf(TCP)?.state).toBe('firing'));
    await run(6, p99(3_000_000));
    expect(alertOf(TCP)).toBeUndefined();
    expect(resolvedOf(TCP)).toHaveLength(1);
  });

  it('a short stall is not an outage: 5 s of 200 ms records go pending, never fire', async () => {
    await run(35, p99(3_000_000));
    await run(5, all(200_000_000), () => expect(alertOf(TCP)?.state).toBe('pending'));
    // Pending while the stall is in the 30 s window (up to 39 s from its start), gone before `for` (45 s).
    await run(40, p99(3_000_000), () => expect(alertOf(TCP)?.state ?? 'none').not.toBe('firing'));
    expect(alertOf(TCP)).toBeUndefined();
    expect(resolvedOf(TCP)).toHaveLength(1);
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

  it('link stalled (records wait, none move): fires after 10 s, resolves when the link moves again', async () => {
    await step(1, { state: 'stalled' });
    expect(alertOf('link-stalled')?.state).toBe('pending');
    expect(alertOf('link-down')).toBeUndefined();
    await step(10, { state: 'stalled' });
    const a = alertOf('link-stalled')!;
    expect(a.state).toBe('firing');
    expect(a.labels).toMatchObject({
      alertname: 'LinkStalled',
      node: 'a1',
      link: 'l0',
      severity: 'critical',
    });
    await step(1, { state: 'up' });
    expect(alertOf('link-stalled')).toBeUndefined();
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

  it('agent offline: fires 10 s after the agent left, resolves when it is back', async () => {
    agent.close();
    await agent.closed;
    await waitFor('the hub to see agent a1 gone', () => !hub.app.fleet.nodes.get('a1')!.connected);
    hub.clock.t += 9_000;
    hub.app.tick();
    expect(alertOf('agent-offline')).toBeUndefined();
    hub.clock.t += 2_000;
    hub.app.tick();
    expect(alertOf('agent-offline')?.state).toBe('firing');
    agent = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await agent.hello('a1');
    await step(1);
    expect(alertOf('agent-offline')).toBeUndefined();
  });

  it('webhook received the Alertmanager v4 payload for firing and resolved, after a retry', async () => {
    await waitFor('the AgentOffline resolution at the webhook', () =>
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
    await notifierDrained(hub);
    expect(hook.got.slice(before).some((p) => p.groupLabels.alertname === 'LinkDown')).toBe(false);
    // The silence ends: the still-firing alert is notified now.
    await step(60, { state: 'down' });
    expect(alertOf('link-down')!.silencedBy).toEqual([]);
    await waitFor('the LinkDown firing at the webhook once the silence ended', () =>
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

describe('latency rules per provider class', () => {
  let hub: TestHub;
  let agent: TestAgent;
  let seq = 0;

  beforeAll(async () => {
    hub = await startHub();
    agent = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await agent.hello('c1');
  });
  afterAll(async () => {
    agent?.close();
    await hub?.close();
  });

  /** One sample a second for `n` seconds of these links (100 records a second each, all at `ns`). */
  const run = async (n: number, links: Array<Partial<LinkSpec> & { id: string; ns: number }>) => {
    for (let i = 0; i < n; i++) {
      hub.clock.t += 1000;
      seq++;
      agent.send(
        sample(
          seq,
          hub.clock.t,
          links.map(({ ns, ...l }) => ({ peer: 'c2', records: seq * 100, latency: [[ns, 100]], ...l })),
        ),
      );
      await agent.acked(seq);
      hub.app.tick();
    }
  };
  const active = () =>
    Object.fromEntries(hub.app.alerts.activeAlerts().map((a) => [a.labels.link, [a.ruleId, a.state]]));

  it('the same p99 is an alert on an RDMA NIC and normal on TCP; each class has its own threshold', async () => {
    const links = [
      { id: 'verbs', provider: 'verbs;ofi_rxm', ns: 2_000_000 }, // rdma: > 500 µs
      { id: 'efa', provider: 'efa', ns: 300_000 }, // rdma, under 500 µs
      { id: 'tcp', provider: 'tcp;ofi_rxm', ns: 2_000_000 }, // tcp: > 20 ms only
      { id: 'shm-slow', transport: 'shm' as const, ns: 15_000_000 }, // shm: > 10 ms
      { id: 'shm-ok', transport: 'shm' as const, ns: 2_300_000 }, // the healthy demo's shm p99 on 2 cores
      { id: 'lnx', provider: 'lnx', ns: 5_000_000 }, // unknown provider: judged like tcp
    ];
    await run(1, links);
    expect(active()).toEqual({
      verbs: ['link-latency-p99-rdma', 'pending'],
      'shm-slow': ['link-latency-p99-shm', 'pending'],
    });
    await run(45, links);
    expect(active()).toEqual({
      verbs: ['link-latency-p99-rdma', 'firing'],
      'shm-slow': ['link-latency-p99-shm', 'firing'],
    });
    const rdma = hub.app.alerts.firing().find((a) => a.labels.link === 'verbs')!;
    expect(rdma.labels).toMatchObject({ provider: 'verbs;ofi_rxm', provider_class: 'rdma' });
    expect(rdma.threshold).toBe(500_000);
    expect(rdma.summary).toMatch(/> 500 µs \(clears below 250 µs\).*value 2(\.\d+)? ms$/);
    // Healthy again: resolved once the window is clean and keep-firing-for has passed.
    await run(
      70,
      links.map((l) => ({ ...l, ns: 100_000 })),
    );
    expect(active()).toEqual({});
  });

  it('operators change a class threshold through the rules API; bad windows are refused', async () => {
    const rules = (await api<{ rules: AlertRule[] }>(hub, 'GET', '/api/rules')).body.rules;
    const tcp = rules.find((r) => r.id === 'link-latency-p99-tcp')!;
    expect((await api(hub, 'PUT', `/api/rules/${tcp.id}`, { ...tcp, threshold: 1_000_000 })).status).toBe(
      200,
    );
    await run(2, [{ id: 'tcp', provider: 'tcp;ofi_rxm', ns: 2_000_000 }]);
    expect(active()).toEqual({ tcp: ['link-latency-p99-tcp', 'pending'] });
    expect((await api(hub, 'PUT', `/api/rules/${tcp.id}`, tcp)).status).toBe(200);
    await run(1, [{ id: 'tcp', provider: 'tcp;ofi_rxm', ns: 2_000_000 }]);
    expect(active()).toEqual({});

    const bad = async (over: Record<string, unknown>) =>
      api<{ error: { message: string } }>(hub, 'POST', '/api/rules', { ...tcp, id: 'x', ...over });
    const long = await bad({ windowS: 3600 });
    expect(long.status).toBe(400);
    expect(long.body.error.message).toMatch(/windowS 3600 exceeds the 120 s .*history\.latencyWindowS/);
    const notLatency = await bad({ metric: 'errors_rate' });
    expect(notLatency.status).toBe(400);
    expect(notLatency.body.error.message).toMatch(/windowS applies to latency metrics only/);
  });

  it("GET /api/latency hands out the window's histogram slots and their merged quantiles", async () => {
    await run(20, [{ id: 'tcp', provider: 'tcp;ofi_rxm', ns: 2_000_000 }]);
    const r = await api<{
      windowS: number;
      keptS: number;
      slotMs: number;
      links: Array<{
        key: string;
        providerClass: string;
        count: number;
        p50Ns: number | null;
        p99Ns: number | null;
        slots?: Array<{ ts: number; buckets: Array<[number, number]> }>;
      }>;
    }>(hub, 'GET', `/api/latency?windowS=10&slots=1&link=${encodeURIComponent('c1~tcp')}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ windowS: 10, keptS: 120, slotMs: 5000 });
    const [l] = r.body.links;
    expect(l).toMatchObject({ key: 'c1~tcp', providerClass: 'tcp' });
    // 10 s in 5 s slots: two or three slots, 100 records a second.
    expect(l!.slots!.length).toBeGreaterThanOrEqual(2);
    expect(l!.slots!.length).toBeLessThanOrEqual(3);
    const total = l!.slots!.reduce((t, x) => t + x.buckets.reduce((u, [, n]) => u + n, 0), 0);
    expect(l!.count).toBe(total);
    expect(total).toBeGreaterThanOrEqual(1000);
    expect(total).toBeLessThanOrEqual(1500);
    expect(Math.abs(l!.p99Ns! - 2_000_000) / 2_000_000).toBeLessThan(0.01);
    expect((await api(hub, 'GET', '/api/latency?windowS=121')).status).toBe(400);
    expect((await api(hub, 'GET', '/api/latency?link=nope~x')).status).toBe(404);
    const plain = await api<{ links: Array<{ slots?: unknown }> }>(hub, 'GET', '/api/latency');
    expect(plain.body.links.every((x) => x.slots === undefined)).toBe(true);
  });
});

describe('upgrade of a database seeded with the single latency rule', () => {
  const legacy = {
    id: 'link-latency-p99',
    name: 'LinkLatencyP99High',
    metric: 'latency_p99',
    comparison: '>',
    threshold: 1_000_000,
    clear: 500_000,
    forS: 30,
    keepFiringForS: 60,
    severity: 'warning',
    labels: {},
    enabled: true,
    match: {},
  };
  /** A data dir as the previous version left it: rules_seeded=1 and the one latency rule. */
  async function legacyDir(rule: Record<string, unknown> | null) {
    const { tempDir } = await import('./helpers.js');
    const dir = tempDir('rdmaq-upgrade-');
    const hub = await startHub({}, { dir });
    const db = hub.app.store.db;
    db.prepare("DELETE FROM alert_rules WHERE id LIKE 'link-latency-p99-%'").run();
    if (rule) {
      db.prepare('INSERT INTO alert_rules (id, json, updated_at, updated_by) VALUES (?, ?, 0, ?)').run(
        rule.id,
        JSON.stringify(rule),
        'system',
      );
    }
    hub.app.store.setSetting('rules_seeded', '1');
    await hub.close();
    return dir;
  }
  const latencyRules = async (dir: string) => {
    const hub = await startHub({}, { dir });
    try {
      return hub.app.alerts
        .listRules()
        .filter((r) => r.metric === 'latency_p99')
        .map((r) => [r.id, r.enabled, r.threshold]);
    } finally {
      await hub.close();
      const { rmSync } = await import('node:fs');
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('the untouched old rule is replaced by the per-class rules', async () => {
    expect(await latencyRules(await legacyDir(legacy))).toEqual([
      ['link-latency-p99-other', true, 20_000_000],
      ['link-latency-p99-rdma', true, 500_000],
      ['link-latency-p99-shm', true, 10_000_000],
      ['link-latency-p99-tcp', true, 20_000_000],
    ]);
  });

  it('an edited old rule stays; the per-class rules are added disabled', async () => {
    expect(await latencyRules(await legacyDir({ ...legacy, threshold: 50_000_000 }))).toEqual([
      ['link-latency-p99', true, 50_000_000],
      ['link-latency-p99-other', false, 20_000_000],
      ['link-latency-p99-rdma', false, 500_000],
      ['link-latency-p99-shm', false, 10_000_000],
      ['link-latency-p99-tcp', false, 20_000_000],
    ]);
  });

  it('an old rule an operator disabled is replaced by disabled per-class rules', async () => {
    const rules = await latencyRules(await legacyDir({ ...legacy, enabled: false }));
    expect(rules.map((r) => r[0])).not.toContain('link-latency-p99');
    expect(rules.every((r) => r[1] === false)).toBe(true);
  });
});

describe('upgrade of a database seeded before LinkStalled', () => {
  it("adds LinkStalled once, and keeps an operator's own rule of that id", async () => {
    const { tempDir } = await import('./helpers.js');
    const { rmSync } = await import('node:fs');
    const dir = tempDir('rdmaq-upgrade-stalled-');
    try {
      let hub = await startHub({}, { dir });
      hub.app.store.db.prepare("DELETE FROM alert_rules WHERE id = 'link-stalled'").run();
      hub.app.store.setSetting('rules_seeded', '2');
      await hub.close();
      hub = await startHub({}, { dir });
      const added = hub.app.alerts.listRules().find((r) => r.id === 'link-stalled');
      expect(added).toMatchObject({ name: 'LinkStalled', metric: 'link_stalled', enabled: true, forS: 10 });
      // An operator edits it; a later start must not put the default back.
      hub.app.store.db
        .prepare('UPDATE alert_rules SET json = ? WHERE id = ?')
        .run(JSON.stringify({ ...added, forS: 60 }), 'link-stalled');
      await hub.close();
      hub = await startHub({}, { dir });
      expect(hub.app.alerts.listRules().find((r) => r.id === 'link-stalled')?.forS).toBe(60);
      await hub.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
      await waitFor('the LinkDown firing at the webhook', () =>
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
      await notifierDrained(hub);
      expect(hook.got.length).toBe(sent);
      // Up again: resolved, and since it was notified as firing, the resolution is notified.
      hub.clock.t += 1000;
      agent.send(sample(4, hub.clock.t, [{ id: 'l0', peer: 'p', state: 'up' }]));
      await agent.acked(4);
      hub.app.tick();
      expect(hub.app.alerts.activeAlerts()).toHaveLength(0);
      await waitFor('the LinkDown resolution at the webhook', () =>
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
