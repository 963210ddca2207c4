import type { Kpi, LinkSummary, NodeSummary, OverviewSnapshot } from '@rdmaq/shared';
import { describe, expect, it } from 'vitest';
import { applyOverviewDelta, joinHistory, mergePoints, overviewFromSnapshot } from './views';

const kpi = (n: number): Kpi => ({
  nodesTotal: n,
  nodesConnected: n,
  linksTotal: 0,
  linksUp: 0,
  linksDegraded: 0,
  linksDown: 0,
  recordsPerS: 0,
  bytesPerS: 0,
  p99MaxNs: null,
  p99MedianNs: null,
  occupancyMax: 0,
  alertsFiring: 0,
  alertsPending: 0,
  samplesPerS: 0,
});

const node = (id: string, cpu = 1): NodeSummary => ({
  id,
  hostname: id,
  connected: true,
  version: '1',
  providers: [],
  lastSampleTs: 1,
  cpuPercent: cpu,
  rssBytes: 1,
  eventLoopLagMs: 0,
  uptimeS: 1,
  linkCount: 0,
  linksUp: 0,
  health: 'ok',
});

const link = (key: string): LinkSummary => {
  const [n, id] = key.split('~') as [string, string];
  return {
    key,
    id,
    node: n,
    peer: 'x',
    direction: 'rx',
    transport: 'shm',
    provider: 'shm',
    state: 'up',
    ts: 1,
    recordsPerS: 1,
    bytesPerS: 1,
    completionsPerS: 1,
    backpressurePerS: 0,
    errorsPerS: 0,
    occupancy: 0,
    occupancyBytes: 0,
    capacityBytes: 1,
    p50Ns: 1,
    p99Ns: 1,
    p999Ns: 1,
    rttP50Ns: null,
  };
};

describe('live view reducers', () => {
  it('applies an overview delta: replace, add, remove; untouched entries keep their identity', () => {
    const snap: OverviewSnapshot = {
      nodes: [node('n10'), node('n2'), node('n1')],
      links: [link('n1~a'), link('n2~a')],
      kpi: kpi(3),
      alerts: [],
    };
    const s0 = overviewFromSnapshot(snap);
    expect(s0.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n10']);
    const s1 = applyOverviewDelta(s0, {
      nodes: [node('n2', 50), node('n3')],
      links: [],
      removedNodes: ['n10'],
      removedLinks: ['n2~a'],
      kpi: kpi(3),
      alerts: [],
    });
    expect(s1.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3']);
    expect(s1.nodes[1]!.cpuPercent).toBe(50);
    expect(s1.nodes[0]).toBe(s0.nodes[0]);
    expect(s1.links.map((l) => l.key)).toEqual(['n1~a']);
    // a delta without entity changes keeps the arrays, so memoised views skip work
    const s2 = applyOverviewDelta(s1, {
      nodes: [],
      links: [],
      removedNodes: [],
      removedLinks: [],
      kpi: kpi(3),
      alerts: [],
    });
    expect(s2.nodes).toBe(s1.nodes);
    expect(s2.links).toBe(s1.links);
  });

  it('merges points by timestamp, newest wins, bounded', () => {
    const p = (ts: number, v: number) => ({ ts, v });
    const a = mergePoints([], [p(1, 1), p(2, 2)]);
    const b = mergePoints(a, [p(3, 3)]);
    expect(b.map((x) => x.ts)).toEqual([1, 2, 3]);
    const c = mergePoints(b, [p(2, 20), p(4, 4)]);
    expect(c).toEqual([p(1, 1), p(2, 20), p(3, 3), p(4, 4)]);
    const d = mergePoints(c, [p(5, 5), p(6, 6)], 3);
    expect(d.map((x) => x.ts)).toEqual([4, 5, 6]);
  });

  it('appends only the live points newer than the history', () => {
    const h = [{ ts: 10 }, { ts: 20 }];
    expect(joinHistory(h, [{ ts: 15 }, { ts: 20 }, { ts: 21 }]).map((x) => x.ts)).toEqual([10, 20, 21]);
    expect(joinHistory([], [{ ts: 1 }])).toEqual([{ ts: 1 }]);
  });
});
