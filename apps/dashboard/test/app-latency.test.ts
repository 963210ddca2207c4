/**
 * Queue-latency rules judge the agents' own links, not applications' bulk streams: an all-reduce moving MiBs
 * per step has queue latencies of its bursts, which say nothing about the fabric. Applications' links are
 * still judged by down / stalled / ring-stuck, and an operator can watch one with match { app }.
 */
import type { Alert } from '@rdmaq/shared';
import { describe, expect, it } from 'vitest';
import { api, type LinkSpec, sample, startHub, TestAgent, tempDir } from './helpers.js';

describe('latency rules and applications', () => {
  it('a slow agent link fires LinkLatencyP99High, an equally slow application link does not', async () => {
    const hub = await startHub();
    try {
      const a = await TestAgent.connect(hub.wsUrl, hub.agentToken);
      await a.hello('h1');
      const links: LinkSpec[] = [
        { id: 'probe', peer: 'h2', latency: [[60_000_000, 50]] },
        { id: 'train/ring-0->1:rx', peer: 'remote', latency: [[60_000_000, 50]] },
      ];
      for (let seq = 1; seq <= 90; seq++) {
        hub.clock.t += 1000;
        const s = sample(seq, hub.clock.t, links);
        Object.assign(s.links[1]!, { origin: 'app', app: 'train' });
        a.send(s);
        await a.acked(seq);
        hub.app.tick();
      }
      const firing = (await api<{ active: Alert[] }>(hub, 'GET', '/api/alerts')).body.active.filter(
        (x) => x.state === 'firing' && x.ruleName === 'LinkLatencyP99High',
      );
      expect(firing.map((x) => x.labels.link)).toEqual(['probe']);
      expect(firing[0]!.labels.origin).toBe('agent');
      a.close();
    } finally {
      await hub.close();
    }
  }, 60_000);

  it('a store seeded before version 6: latency rules whose match is as installed move to the agents’ links; an edited match stays', async () => {
    const dir = tempDir();
    const first = await startHub({}, { dir });
    const db = first.app.store.db;
    const put = db.prepare('UPDATE alert_rules SET json = ? WHERE id = ?');
    for (const id of ['link-latency-p99-tcp', 'link-latency-p99-rdma', 'link-latency-p99-shm']) {
      const r = JSON.parse(
        (db.prepare('SELECT json FROM alert_rules WHERE id = ?').get(id) as { json: string }).json,
      );
      r.match = { provider_class: r.match.provider_class };
      if (id.endsWith('rdma')) r.threshold = 123_000; // an operator's threshold: the match is still as installed
      if (id.endsWith('shm')) r.match.node = 'gpu-7'; // an operator's own match: left alone
      put.run(JSON.stringify(r), id);
    }
    first.app.store.setSetting('rules_seeded', '5');
    await first.close();
    const again = await startHub({}, { dir });
    try {
      const rules = again.app.alerts.listRules();
      expect(rules.find((r) => r.id === 'link-latency-p99-tcp')!.match).toEqual({
        provider_class: 'tcp',
        origin: 'agent',
      });
      expect(rules.find((r) => r.id === 'link-latency-p99-rdma')!).toMatchObject({
        threshold: 123_000,
        match: { provider_class: 'rdma', origin: 'agent' },
      });
      expect(rules.find((r) => r.id === 'link-latency-p99-shm')!.match).toEqual({
        provider_class: 'shm',
        node: 'gpu-7',
      });
    } finally {
      await again.close();
    }
  });
});
