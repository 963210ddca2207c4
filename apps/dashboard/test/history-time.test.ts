import type { HistoryPoint, HostPoint } from '@rdmaq/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, sample, startHub, TestAgent, type TestHub } from './helpers.js';

/**
 * History timestamps are ms since the epoch on the hub's clock, whatever the bucket width: the node page's
 * host charts once ran ahead of the clock (bucket second × step × 1000) and drifted further with wider
 * buckets, while link charts were right.
 */
describe('history timestamps (node and link) are on the clock, at every bucket width', () => {
  let hub: TestHub;
  let agent: TestAgent;
  let t0 = 0;
  const N = 600;

  beforeAll(async () => {
    hub = await startHub();
    agent = await TestAgent.connect(hub.wsUrl, hub.agentToken);
    await agent.hello('h1');
    // 10 minutes of 1 s samples, driven by the hub's clock.
    hub.clock.t = Math.floor(hub.clock.t / 1000) * 1000;
    t0 = hub.clock.t;
    for (let i = 1; i <= N; i++) {
      hub.clock.t = t0 + i * 1000;
      agent.send(sample(i, hub.clock.t, [{ id: 'l0', peer: 'p', records: i * 10, bytes: i * 1000 }]));
    }
    await agent.acked(N);
  });
  afterAll(async () => {
    agent?.close();
    await hub?.close();
  });

  for (const points of [600, 300, 120, 7]) {
    it(`${points} points over 10 minutes: node and link buckets start inside [from, to] and agree`, async () => {
      const from = t0;
      const to = hub.clock.t;
      const node = await api<{ points: HostPoint[]; stepMs: number }>(
        hub,
        'GET',
        `/api/history?node=h1&from=${from}&to=${to}&points=${points}`,
      );
      const link = await api<{ points: HistoryPoint[]; stepMs: number }>(
        hub,
        'GET',
        `/api/history?link=${encodeURIComponent('h1~l0')}&from=${from}&to=${to}&points=${points}`,
      );
      expect(node.status).toBe(200);
      const ts = node.body.points.map((p) => p.ts);
      expect(ts.length).toBeGreaterThan(0);
      expect(ts.length).toBeLessThanOrEqual(points + 1);
      for (const t of ts) {
        expect(t).toBeGreaterThanOrEqual(from);
        expect(t).toBeLessThanOrEqual(to);
      }
      // Ascending, one step apart: the chart's time axis is the clock.
      for (let i = 1; i < ts.length; i++) expect(ts[i]! - ts[i - 1]!).toBe(node.body.stepMs);
      // The host buckets sit where the link buckets of the same request sit.
      expect(ts).toEqual(link.body.points.map((p) => p.ts));
      expect(node.body.stepMs).toBe(link.body.stepMs);
      expect(node.body.points.every((p) => p.cpuPercent === 5)).toBe(true);
    });
  }
});
