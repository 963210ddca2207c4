import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Alert } from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tooling/test-support/wait.js';
import type { WebhookPayloadV4 } from '../src/server/notifier.js';
import { type LinkSpec, sample, startHub, TestAgent, type TestHub, tempDir } from './helpers.js';

async function webhookServer() {
  const got: WebhookPayloadV4[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      got.push(JSON.parse(body) as WebhookPayloadV4);
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, got, close: () => new Promise((r) => server.close(r)) };
}

const CAP = 1 << 20;

/**
 * A two-host link n1 → n2 (`l1`: n1 reports the tx end, n2 the rx end), driven on the hub's clock: one
 * sample a second from each agent that is "alive", then one evaluation.
 */
describe('alerts an operator can act on: units, links, a full ring with no progress on both ends', () => {
  let hub: TestHub;
  let hook: Awaited<ReturnType<typeof webhookServer>>;
  let n1: TestAgent;
  let n2: TestAgent;
  let seq1 = 0;
  let seq2 = 0;
  let sent = 0;
  let delivered = 0;

  beforeAll(async () => {
    hook = await webhookServer();
    hub = await startHub({
      externalUrl: 'https://dash.example.org:8443/',
      alerts: { webhooks: [hook.url], webhookRetryBaseMs: 20 },
    });
    n1 = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await n1.hello('n1');
    n2 = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await n2.hello('n2');
  });
  afterAll(async () => {
    n1?.close();
    n2?.close();
    await hub?.close();
    await hook?.close();
  });

  /**
   * One second: the sender n1 accepts `accepted` records and holds `txOcc` unacknowledged bytes; the
   * receiver n2 (when it reports) delivers `got` records with `rxOcc` in its ring.
   */
  const second = async (o: { accepted: number; txOcc: number; got?: number; rxOcc?: number }) => {
    hub.clock.t += 1000;
    sent += o.accepted;
    const tx: LinkSpec = {
      id: 'l1',
      peer: 'n2',
      direction: 'tx',
      records: sent,
      occupancy: o.txOcc,
      capacity: CAP,
    };
    n1.send(sample(++seq1, hub.clock.t, [tx]));
    await n1.acked(seq1);
    if (o.got !== undefined) {
      // A hub may have closed the connection of the agent that went silent: it comes back as agents do.
      if (n2.ws.readyState !== 1) {
        n2 = await TestAgent.connect(hub.wsUrl, hub.agentToken);
        await n2.hello('n2');
      }
      delivered += o.got;
      const rx: LinkSpec = {
        id: 'l1',
        peer: 'n1',
        direction: 'rx',
        records: delivered,
        occupancy: o.rxOcc ?? 0,
        capacity: CAP,
        latency: [[2_000_000, 10]],
      };
      n2.send(sample(++seq2, hub.clock.t, [rx]));
      await n2.acked(seq2);
    }
    hub.app.tick();
  };
  const stuck = (): Alert[] =>
    hub.app.alerts
      .activeAlerts()
      .filter((a) => a.ruleId === 'ring-stuck')
      .sort((a, b) => a.labels.node!.localeCompare(b.labels.node!));

  it('installs RingFullNoProgress: critical, 10 s with the ring ≥ 95 % and nothing moving', () => {
    expect(hub.app.alerts.listRules().find((r) => r.id === 'ring-stuck')).toMatchObject({
      name: 'RingFullNoProgress',
      metric: 'ring_stuck',
      comparison: '>=',
      threshold: 10,
      severity: 'critical',
      enabled: true,
    });
  });

  it('a full ring that still delivers is not stuck', async () => {
    for (let i = 0; i < 30; i++) await second({ accepted: 1000, txOcc: CAP, got: 1000, rxOcc: CAP });
    expect(stuck()).toEqual([]);
  });

  it('the consumer hangs, the sender’s ring stays full: critical on both ends after 10 s', async () => {
    // n2's consumer stops (its agent still reports: its ring full, nothing delivered); n1's sender can
    // accept nothing, its mirror full of unacknowledged bytes.
    await second({ accepted: 0, txOcc: CAP, got: 0, rxOcc: CAP });
    for (let i = 0; i < 9; i++) {
      await second({ accepted: 0, txOcc: CAP, got: 0, rxOcc: CAP });
      expect(stuck()).toEqual([]);
    }
    await second({ accepted: 0, txOcc: CAP, got: 0, rxOcc: CAP });
    const a = stuck();
    expect(a.map((x) => [x.labels.node, x.labels.direction, x.state, x.severity])).toEqual([
      ['n1', 'tx', 'firing', 'critical'],
      ['n2', 'rx', 'firing', 'critical'],
    ]);
    expect(a[0]!.summary).toBe(
      'RingFullNoProgress: ring ≥ 95 % full with nothing delivered for 10 s (alert at 10 s) on link l1 n1 → n2 (tx end on n1, tcp;ofi_rxm, class tcp)',
    );
    expect(a[1]!.summary).toMatch(
      /for 10 s \(alert at 10 s\) on link l1 n1 → n2 \(rx end on n2, tcp;ofi_rxm, class tcp\)$/,
    );
    expect(a[0]!.metric).toBe('ring_stuck');
    // It keeps counting while nothing moves.
    for (let i = 0; i < 5; i++) await second({ accepted: 0, txOcc: CAP, got: 0, rxOcc: CAP });
    expect(stuck()[0]!.value).toBe(15);
  });

  it('the webhook carries the same texts in units and the link and node pages under the external URL', async () => {
    await waitFor('the RingFullNoProgress firing at the webhook', () =>
      hook.got.some((p) => p.groupLabels.alertname === 'RingFullNoProgress' && p.status === 'firing'),
    );
    const p = hook.got.find((x) => x.groupLabels.alertname === 'RingFullNoProgress')!;
    const tx = p.alerts.find((x) => x.labels.node === 'n1')!;
    const rx = p.alerts.find((x) => x.labels.node === 'n2')!;
    expect(tx.annotations).toMatchObject({
      summary: expect.stringMatching(
        /^RingFullNoProgress: ring ≥ 95 % full with nothing delivered for 10 s \(alert at 10 s\) on link l1 n1 → n2 /,
      ),
      value: '10 s',
      threshold: '10 s',
      value_raw: '10',
      threshold_raw: '10',
      url: 'https://dash.example.org:8443/links/n1~l1',
      link_url: 'https://dash.example.org:8443/links/n1~l1',
      node_url: 'https://dash.example.org:8443/nodes/n1',
      peer_url: 'https://dash.example.org:8443/nodes/n2',
    });
    expect(tx.annotations.description).toMatch(
      /^CRITICAL RingFullNoProgress \(firing\)\. The ring of link l1 n1 → n2 \(tx end on n1.*\) has been full \(≥ 95 %\) with no record delivered for 10 s/,
    );
    expect(tx.annotations.description).toMatch(
      /Open the link page: https:\/\/dash\.example\.org:8443\/links\/n1~l1;/,
    );
    expect(rx.annotations.url).toBe('https://dash.example.org:8443/links/n2~l1');
    expect(rx.annotations.node_url).toBe('https://dash.example.org:8443/nodes/n2');
    expect(p.externalURL).toBe('https://dash.example.org:8443/');
  });

  it('records move again: both ends resolve', async () => {
    await second({ accepted: 500, txOcc: CAP / 2, got: 500, rxOcc: CAP / 2 });
    expect(stuck()).toEqual([]);
    const resolved = hub.app.alerts.recentResolved().filter((a) => a.ruleId === 'ring-stuck');
    expect(resolved.map((a) => a.labels.node).sort()).toEqual(['n1', 'n2']);
  });

  it('a receiver whose ring is full and delivers nothing alerts both ends too, sender’s figures or not', async () => {
    // The consumer on n2 hangs: its ring fills, nothing delivered; the sender still reports a half-full
    // mirror that does not move either (it keeps accepting nothing).
    for (let i = 0; i < 11; i++) await second({ accepted: 0, txOcc: CAP / 2, got: 0, rxOcc: CAP });
    expect(stuck().map((a) => [a.labels.node, a.state])).toEqual([
      ['n1', 'firing'],
      ['n2', 'firing'],
    ]);
    await second({ accepted: 10, txOcc: CAP / 2, got: 10, rxOcc: CAP - 1000 });
    expect(stuck()).toEqual([]);
  });

  it('a receiver that goes silent: its AgentOffline names it; the stuck ring adds no alerts of its own', async () => {
    const before = new Set(hub.app.alerts.activeAlerts().map((a) => a.id));
    // n2 is cut off: it reports nothing more; n1's sender can accept nothing, its mirror full.
    for (let i = 0; i < 15; i++) await second({ accepted: 0, txOcc: CAP });
    expect(stuck()).toEqual([]);
    const raised = hub.app.alerts.activeAlerts().filter((a) => !before.has(a.id));
    expect(raised.map((a) => `${a.state} ${a.ruleName} ${a.labels.node}`)).toEqual([
      'firing AgentOffline n2',
    ]);
    // n2 back: its AgentOffline resolves.
    await second({ accepted: 10, txOcc: CAP / 2, got: 10, rxOcc: 0 });
    expect(hub.app.alerts.activeAlerts().filter((a) => a.ruleId === 'agent-offline')).toEqual([]);
  });

  it('latency alerts read in units too (value and threshold), with the same summary everywhere', async () => {
    const lat = hub.app.alerts
      .activeAlerts()
      .concat(hub.app.alerts.recentResolved())
      .find((a) => a.ruleId.startsWith('link-latency-p99'));
    // 2 ms on TCP is healthy: no latency alert at all.
    expect(lat).toBeUndefined();
    const hooked = hook.got.flatMap((p) => p.alerts).filter((a) => a.labels.alertname === 'AgentOffline');
    for (const a of hooked) {
      expect(a.annotations.value).toMatch(/^\d+ s$/);
      expect(a.annotations.threshold).toMatch(/^\d+ s$/);
      expect(a.annotations.url).toBe(`https://dash.example.org:8443/nodes/${a.labels.node}`);
      expect(a.annotations.link_url).toBeUndefined();
    }
  });
});

describe('upgrade: RingFullNoProgress is added once', () => {
  it('to a store seeded before it, never overwriting, and not again after an operator deleted it', async () => {
    const dir = tempDir('rdmaq-upgrade-stuck-');
    const { rmSync } = await import('node:fs');
    try {
      let hub = await startHub({}, { dir });
      const db = () => hub.app.store.db;
      db().prepare("DELETE FROM alert_rules WHERE id IN ('ring-stuck', 'link-stalled')").run();
      // Seeded at version 3: LinkStalled was there already (an operator deleted it since).
      hub.app.store.setSetting('rules_seeded', '3');
      await hub.close();
      hub = await startHub({}, { dir });
      const ids = hub.app.alerts.listRules().map((r) => r.id);
      expect(ids).toContain('ring-stuck');
      expect(ids).not.toContain('link-stalled');
      // The operator deletes it; later starts leave it deleted.
      hub.app.store.destructive('DELETE FROM alert_rules WHERE id = ?').run('ring-stuck');
      await hub.close();
      hub = await startHub({}, { dir });
      expect(hub.app.alerts.listRules().map((r) => r.id)).not.toContain('ring-stuck');
      await hub.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
